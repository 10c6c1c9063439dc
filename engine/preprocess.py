"""Image preprocessing (SPEC §2.1): letter-box affine to the network input, RGB, ImageNet norm."""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from calib.camera import CalibrationError, CameraRig
from engine.project import rig_input_affines

MEAN_RGB = (0.485, 0.456, 0.406)
STD_RGB = (0.229, 0.224, 0.225)


class Preprocessor:
    """Warps each camera's full image to the network input and normalises it.

    Args:
        rig: the cameras (image sizes, in view order).
        input_size: network input (w, h) px.
        device: where the normalised tensor is built.
        bgr: True when images come in OpenCV's BGR order.
    """

    def __init__(
        self, rig: CameraRig, input_size: tuple[int, int], device: torch.device | str = "cpu", bgr: bool = True
    ):
        self.rig = rig
        self.input_size = (int(input_size[0]), int(input_size[1]))
        self.affines = rig_input_affines(rig, self.input_size)  # (V,2,3)
        self.bgr = bgr
        self.device = torch.device(device)
        W, H = self.input_size
        self._warped = np.zeros((len(rig), H, W, 3), dtype=np.uint8)  # (V,H,W,3) reused buffer
        std = torch.tensor(STD_RGB, dtype=torch.float32, device=self.device)
        mean = torch.tensor(MEAN_RGB, dtype=torch.float32, device=self.device)
        order = [2, 1, 0] if bgr else [0, 1, 2]  # input channel c holds RGB channel order[c]
        self._scale = (1.0 / (255.0 * std))[order]  # (3,) per input channel, broadcast over (V,H,W,3)
        self._shift = (-mean / std)[order]
        self._to_rgb = torch.tensor(order, device=self.device)

    def warp(self, images: Sequence[np.ndarray] | np.ndarray) -> np.ndarray:
        """(V,H0,W0,3) uint8 full images (or a list with per-camera sizes) -> (V,H,W,3) uint8 warped."""
        import cv2

        if len(images) != len(self.rig):
            raise CalibrationError(f"preprocess: got {len(images)} images for {len(self.rig)} cameras {self.rig.names}")
        for v, (img, cam) in enumerate(zip(images, self.rig)):
            if img.shape[:2] != (cam.height, cam.width) or img.dtype != np.uint8 or img.ndim != 3:
                raise CalibrationError(
                    f"camera '{cam.name}': image is {img.shape} {img.dtype}, calibration says "
                    f"{cam.height}x{cam.width}x3 uint8; resize the calibration or pass the matching images"
                )
            cv2.warpAffine(
                img,
                self.affines[v],
                self.input_size,
                dst=self._warped[v],
                flags=cv2.INTER_LINEAR,
                borderMode=cv2.BORDER_CONSTANT,
                borderValue=0,
            )
        return self._warped

    def normalise(self, warped: np.ndarray) -> torch.Tensor:
        """(V,H,W,3) uint8 -> (V,3,H,W) float32 normalised RGB, channels-last memory (no extra copy)."""
        x = torch.from_numpy(warped).to(self.device)
        x = torch.addcmul(self._shift, x.float(), self._scale)  # (V,H,W,3) normalised, input order
        x = x.index_select(3, self._to_rgb) if self.bgr else x
        return x.permute(0, 3, 1, 2)  # NHWC storage = channels_last NCHW

    def __call__(self, images: Sequence[np.ndarray] | np.ndarray) -> torch.Tensor:
        return self.normalise(self.warp(images))
