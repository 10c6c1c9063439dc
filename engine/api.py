"""Public inference API: load a model for a rig, predict 3D poses per frame.

Example::

    from calib.camera import CameraRig
    from engine.api import load_model

    predictor = load_model("cam5_posenet.pth.tar", rig)          # official file, or ours, or "light"
    pred = predictor.predict_images(images_bgr)                    # (V,H,W,3) uint8
    pred.poses_mm   # (P,J,3) world mm, P = persons with root score > threshold
    pred.scores     # (P,)
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from calib.camera import CameraRig
from calib.common.skeleton import Skeleton, get_skeleton

log = logging.getLogger(__name__)


@dataclass
class Prediction:
    """3D poses of one frame.

    Attributes:
        poses_mm: (P,J,3) float32 world mm of the P detected persons (score > threshold),
            ordered by score descending.
        scores: (P,) root confidence of each person.
        proposals: (K,5) all root candidates: x, y, z mm, flag (0 valid / -1), score.
        candidates: (K,J,5) upstream output layout (poses of invalid candidates are zeros).
        timings_ms: wall time per stage.
        skeleton: joint names and bones of ``poses_mm``.
    """

    poses_mm: np.ndarray
    scores: np.ndarray
    proposals: np.ndarray
    candidates: np.ndarray
    timings_ms: dict[str, float]
    skeleton: Skeleton = field(default_factory=lambda: get_skeleton("panoptic15"))

    @property
    def num_people(self) -> int:
        return int(self.poses_mm.shape[0])

    def to_dict(self) -> dict:
        """JSON-ready dict."""
        return {
            "skeleton": {
                "name": self.skeleton.name,
                "joints": list(self.skeleton.joints),
                "edges": [list(e) for e in self.skeleton.edges],
            },
            "people": [
                {"score": float(s), "joints_mm": p.round(2).tolist()} for p, s in zip(self.poses_mm, self.scores)
            ],
            "proposals": self.proposals.round(3).tolist(),
            "timings_ms": {k: round(v, 3) for k, v in self.timings_ms.items()},
        }


class Predictor:
    """A loaded model bound to a rig (wraps :class:`engine.runtime.InferenceRuntime`).

    Attributes:
        runtime: the runtime (stages, projector, backend choice).
        reports: one :class:`engine.checkpoints.LoadReport` per loaded file (empty if untrained).
    """

    def __init__(self, runtime, reports: list, input_kind: str = "images", source: str = ""):
        self.runtime = runtime
        self.reports = reports
        self.skeleton = get_skeleton(runtime.config.skeleton)
        self.input_kind = input_kind  # "images" | "detections" (engine.checkpoints.model_input)
        self.source = source

    def _check_takes_images(self) -> None:
        if self.input_kind != "images":
            from engine.errors import CheckpointError

            raise CheckpointError(
                f"{self.source}: this model takes 2D detections (its image backbone is untrained), not images: "
                "run it with --engine learned (images go through the bundled 2D estimator) or call "
                "predict_detections"
            )

    @property
    def config(self):
        return self.runtime.config

    def _wrap(self, out) -> Prediction:
        cand = out.candidates.numpy()
        valid = cand[:, 0, 3] >= 0
        return Prediction(
            poses_mm=np.ascontiguousarray(cand[valid, :, :3]),
            scores=np.ascontiguousarray(cand[valid, 0, 4]),
            proposals=out.proposals.numpy(),
            candidates=cand,
            timings_ms=dict(out.timings_ms),
            skeleton=self.skeleton,
        )

    def predict_images(
        self, images: np.ndarray | Sequence[np.ndarray], views_present: Sequence[bool] | None = None
    ) -> Prediction:
        """Poses from one synchronised frameset.

        Args:
            images: (V,H,W,3) uint8 (or a list of per-camera arrays), BGR unless the predictor
                was loaded with ``bgr=False``; sizes must match the rig's cameras.
            views_present: optional (V,) flags; absent views are ignored (their pixels unused).
        """
        self._check_takes_images()
        return self._wrap(self.runtime.from_images(images, views_present))

    def start_images(self, images: np.ndarray | Sequence[np.ndarray], views_present: Sequence[bool] | None = None):
        """First half of :meth:`predict_images` (backbone, root net, proposals); the images are
        not read after it returns. Finish with :meth:`finish`, possibly on another thread, so two
        consecutive frames overlap (``predict_images == finish(start_images(...))``)."""
        self._check_takes_images()
        return self.runtime.images_root_stage(images, views_present)

    def finish(self, started) -> Prediction:
        """Second half of :meth:`predict_images`: person cubes, pose net, soft-argmax."""
        return self._wrap(self.runtime.pose_stage(started))

    def predict_heatmaps(self, heatmaps, views_present: Sequence[bool] | None = None) -> Prediction:
        """Poses from (V,J,h,w) heatmaps (numpy or torch) at the model's heatmap size."""
        import torch

        hm = (
            torch.as_tensor(np.asarray(heatmaps, dtype=np.float32))
            if not isinstance(heatmaps, torch.Tensor)
            else heatmaps
        )
        return self._wrap(self.runtime.from_heatmaps(hm, views_present))

    def predict_detections(
        self,
        poses_2d: Sequence[np.ndarray],
        views_present: Sequence[bool] | None = None,
        sigma_px: float = 3.0,
        scale_by_score: bool = True,
    ) -> Prediction:
        """Poses from 2D detections instead of images (a 2D estimator replaces the backbone).

        Args:
            poses_2d: per view a (N,J,3) array of Panoptic-15 joints: x, y in the camera's
                original pixels and a score (<= 0: absent); ungrouped per-joint candidates can be
                packed with :func:`engine.detections.candidates_to_rows`.
            views_present: optional (V,) flags (absent views are left out of the fusion).
            sigma_px, scale_by_score: see :func:`engine.detections.render_input_heatmaps`.
        """
        from engine.detections import render_input_heatmaps

        geometry = self.runtime.projector.geometry
        heatmaps = render_input_heatmaps(
            poses_2d, geometry.affine_hm.detach().cpu().numpy(), geometry.heatmap_wh, sigma_px, scale_by_score
        )
        return self.predict_heatmaps(heatmaps, views_present)


def load_model(
    checkpoint_or_preset: str | Path | Sequence[str | Path],
    rig: CameraRig,
    *,
    backend: str = "auto",
    device: str = "auto",
    precision: str = "auto",
    compile: bool = False,
    volume_center_mm: Sequence[float] | None = None,
    volume_size_mm: Sequence[float] | None = None,
    config_overrides: Sequence[str] = (),
    bgr: bool = True,
    cache_dir: str | Path | None = None,
    refine_radius_mm: float | None = None,
) -> Predictor:
    """Load a model (ours, official, or an untrained preset) for a rig.

    Args:
        checkpoint_or_preset: a checkpoint file, several files loaded in order (e.g. the official
            ``backbone_epoch20.pth.tar`` + ``cam5_rootnet_epoch2.pth.tar`` + ...), or a preset name
            (``released``, ``light``: random weights, for timing and plumbing only).
        rig: cameras in view order (the images' order).
        backend: ``auto`` | ``eager`` | ``tensorrt``; device ``auto`` | ``cpu`` | ``cuda:N``;
            precision ``auto`` (bf16 only with native bf16 and a passed check) | ``fp32`` | ``bf16`` | ``fp16``; compile: torch.compile (eager).
        volume_center_mm, volume_size_mm: room volume for the root net (default: the config's).
        config_overrides: ``a.b=c`` overrides of the preset (presets only).
        bgr: images are BGR (OpenCV) rather than RGB.
        cache_dir: TensorRT engine cache directory.
        refine_radius_mm: local joint refinement (:mod:`engine.refine`): None = as the model's
            config says, 0 = off, > 0 = on with this radius.
    Raises:
        CheckpointError, BackendUnavailableError, ConfigError.
    """
    from engine.checkpoints import load_model_file, model_input
    from engine.config import load_preset, preset_names
    from engine.model import build_model
    from engine.runtime import InferenceRuntime

    src = checkpoint_or_preset
    if isinstance(src, str) and src in preset_names() and not Path(src).is_file():
        model = build_model(load_preset(src, tuple(config_overrides)))
        reports: list = []
        input_kind = "images"
        log.warning(
            "model preset '%s' loaded WITHOUT weights: predictions are meaningless "
            "(pass a checkpoint to get real poses)",
            src,
        )
    else:
        model, reports = load_model_file(src)
        input_kind = model_input(src)
    runtime = InferenceRuntime(
        model,
        rig,
        backend=backend,
        device=device,
        precision=precision,
        compile=compile,
        space_size_mm=volume_size_mm,
        space_center_mm=volume_center_mm,
        bgr=bgr,
        cache_dir=cache_dir,
        refine_radius_mm=refine_radius_mm,
    )
    return Predictor(runtime, reports, input_kind, str(src))
