"""Torch twin of :mod:`calib.projection`: batched over cameras, differentiable, any device.

Parity with the numpy reference and ``cv2.projectPoints`` is tested in
``tests/calib/test_projection.py``. Importing this module imports torch (only the engine and
training use it).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from calib.camera import CameraRig


@dataclass(frozen=True)
class CameraTensors:
    """Stacked camera parameters as tensors (V = cameras).

    Attributes:
        R: (V,3,3) world→camera.
        t_mm: (V,3).
        f: (V,2) fx, fy px.
        c: (V,2) cx, cy px.
        dist: (V,5) k1 k2 p1 p2 k3.
        image_size: (V,2) width, height px.
    """

    R: torch.Tensor
    t_mm: torch.Tensor
    f: torch.Tensor
    c: torch.Tensor
    dist: torch.Tensor
    image_size: torch.Tensor

    @classmethod
    def from_rig(
        cls, rig: CameraRig, device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32
    ) -> "CameraTensors":
        def t(a: np.ndarray) -> torch.Tensor:
            return torch.as_tensor(np.ascontiguousarray(a), dtype=dtype, device=device)

        K = rig.K
        return cls(
            R=t(rig.R),
            t_mm=t(rig.t_mm),
            f=t(np.stack([K[:, 0, 0], K[:, 1, 1]], -1)),
            c=t(np.stack([K[:, 0, 2], K[:, 1, 2]], -1)),
            dist=t(rig.dist),
            image_size=t(rig.image_sizes.astype(np.float64)),
        )

    def to(self, device: torch.device | str, dtype: torch.dtype | None = None) -> "CameraTensors":
        kw = {"device": device} if dtype is None else {"device": device, "dtype": dtype}
        return CameraTensors(*(getattr(self, n).to(**kw) for n in ("R", "t_mm", "f", "c", "dist", "image_size")))

    def __len__(self) -> int:
        return int(self.R.shape[0])


def world_to_camera(points_w: torch.Tensor, cams: CameraTensors) -> torch.Tensor:
    """points_w (...,N,3) mm -> (V,...,N,3) camera frame mm."""
    V = len(cams)
    flat = points_w.reshape(-1, 3)  # (M,3)
    xc = torch.einsum("vij,mj->vmi", cams.R, flat) + cams.t_mm[:, None, :]
    return xc.reshape(V, *points_w.shape)


def project_points(
    points_w: torch.Tensor, cams: CameraTensors, z_eps: float = 0.0, r2_max: float | None = None
) -> torch.Tensor:
    """Project world points into every camera, with distortion.

    Args:
        points_w: (...,3) world mm.
        cams: V cameras.
        z_eps: added to the depth before division (SelfPose3d's project layer uses 1e-5).
        r2_max: optional clamp of r² (SelfPose3d's project layer uses 1e10).
    Returns:
        (V,...,2) pixels.
    """
    xc = world_to_camera(points_w, cams)  # (V,...,3)
    z = xc[..., 2:3] + z_eps
    xy = xc[..., :2] / z
    x, y = xy[..., 0], xy[..., 1]
    r2 = x * x + y * y
    if r2_max is not None:
        r2 = r2.clamp(max=r2_max)
    shape = (len(cams),) + (1,) * (x.dim() - 1)
    k1, k2, p1, p2, k3 = (cams.dist[:, i].reshape(shape) for i in range(5))
    radial = 1.0 + k1 * r2 + k2 * r2 * r2 + k3 * r2 * r2 * r2
    tan = p1 * y + p2 * x
    xd = x * (radial + 2.0 * tan) + p2 * r2
    yd = y * (radial + 2.0 * tan) + p1 * r2
    fx, fy = cams.f[:, 0].reshape(shape), cams.f[:, 1].reshape(shape)
    cx, cy = cams.c[:, 0].reshape(shape), cams.c[:, 1].reshape(shape)
    return torch.stack([fx * xd + cx, fy * yd + cy], dim=-1)


def apply_affine(uv: torch.Tensor, affine: torch.Tensor) -> torch.Tensor:
    """Apply 2x3 affines to pixels. uv: (V,...,2); affine: (2,3) or (V,2,3)."""
    if affine.dim() == 2:
        affine = affine.expand(uv.shape[0], 2, 3)
    shape = (uv.shape[0],) + (1,) * (uv.dim() - 2) + (2, 2)
    A = affine[:, :, :2].reshape(shape)
    b = affine[:, :, 2].reshape(shape[:-2] + (2,))
    return (A @ uv.unsqueeze(-1)).squeeze(-1) + b
