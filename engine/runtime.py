"""Per-frame inference: images or heatmaps of one synchronised frameset -> 3D poses.

``InferenceRuntime`` binds a model to a camera rig and a backend. Per frame it runs
preprocess -> backbone (all present views in one batch) -> root-volume projection (cached
sampling grid, one ``grid_sample``) -> root V2V -> NMS/top-K -> person cubes (all proposals in one
sampling call) -> pose V2V (all persons in one batch) -> soft-argmax. Missing views are left out
of the view average.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from calib.camera import CalibrationError, CameraRig
from engine.config import with_refine_radius
from engine.device import Resolved, resolve
from engine.model import SelfPose3dModel
from engine.posenet import soft_argmax
from engine.preprocess import Preprocessor
from engine.project import VolumeProjector, ViewGeometry
from engine.refine import LocalRefiner
from engine.rootnet import extract_proposals

log = logging.getLogger(__name__)

DEFAULT_CACHE_DIR = Path.home() / ".cache" / "selfpose3d-live" / "engines"


PEOPLE_BUCKETS = (1, 2, 3, 4, 6)  # compiled pose-net batch sizes below max_people (3: the embedded default)


@dataclass
class FrameOutput:
    """Raw result of one frame (tensors on CPU).

    Attributes:
        candidates: (K,J,5) upstream layout: x, y, z mm, flag (0 valid / -1), root score;
            poses of invalid candidates are zeros.
        proposals: (K,5) x, y, z mm, flag, score, sorted by score.
        heatmaps: (V,J,h,w) backbone output (zeros for missing views).
        root_cube: (X,Y,Z) root scores.
        timings_ms: wall time per stage.
    """

    candidates: torch.Tensor
    proposals: torch.Tensor
    heatmaps: torch.Tensor
    root_cube: torch.Tensor
    timings_ms: dict[str, float] = field(default_factory=dict)


@dataclass
class RootStageOutput:
    """One frame after the root stage (backbone, root volume, proposals): the pose stage's input.

    Attributes:
        heatmaps: (V,J,h,w) backbone output (zeros for missing views).
        present: (V,) bool views present, or None for all.
        proposals: (K,5) x, y, z mm, flag (0 valid / -1), score, sorted by score.
        root_cube: (X,Y,Z) root scores.
        timer: stage timings so far.
    """

    heatmaps: torch.Tensor
    present: torch.Tensor | None
    proposals: torch.Tensor
    root_cube: torch.Tensor
    timer: "_Timer"


class _Timer:
    def __init__(self, device: torch.device):
        self.sync = device.type == "cuda"
        self.device = device
        self.times: dict[str, float] = {}
        self._t = time.perf_counter()

    def restart(self) -> None:
        """Start the next lap now (time spent waiting between pipeline stages is not a stage's)."""
        self._t = time.perf_counter()

    def lap(self, name: str) -> None:
        if self.sync:
            torch.cuda.synchronize(self.device)
        now = time.perf_counter()
        self.times[name] = self.times.get(name, 0.0) + (now - self._t) * 1e3
        self._t = now


class InferenceRuntime:
    """A model bound to a rig and a backend.

    Args:
        model: weights (:class:`engine.model.SelfPose3dModel`).
        rig: cameras in view order.
        backend: ``auto`` | ``eager`` | ``tensorrt``.
        device: ``auto`` | ``cpu`` | ``cuda:N``.
        precision: ``auto`` | ``fp32`` | ``bf16`` | ``fp16``; bf16 is mixed (fp32 islands,
            :mod:`engine.precision`); ``auto`` is bf16 only on a CPU with native bf16 and a model
            whose release-time check passed (``model.bf16_check``, set by the checkpoint loader), else fp32.
        compile: eager only: ``torch.compile`` each stage.
        channels_last: eager only: channels-last memory (always on for bf16).
        space_size_mm, space_center_mm: room volume (default: the model config's).
        pad_people: run the pose net on ``max_people`` cubes every frame (static shapes);
            default True for TensorRT, False for eager (only valid proposals are run; with
            ``compile`` the person count is padded up to one of :data:`PEOPLE_BUCKETS`, so a
            varying number of people never triggers a recompilation mid-stream).
        cache_dir: TensorRT engine cache.
        bgr: images are BGR (OpenCV order) rather than RGB.
        refine_radius_mm: local refinement of the joints (:mod:`engine.refine`): None = the model
            config's ``pose_net.refine``, 0 = off, > 0 = on with this radius (the config's step, beta).
    """

    def __init__(
        self,
        model: SelfPose3dModel,
        rig: CameraRig,
        *,
        backend: str = "auto",
        device: str = "auto",
        precision: str = "auto",
        compile: bool = False,
        channels_last: bool = True,
        space_size_mm: Sequence[float] | None = None,
        space_center_mm: Sequence[float] | None = None,
        pad_people: bool | None = None,
        cache_dir: str | Path | None = None,
        bgr: bool = True,
        refine_radius_mm: float | None = None,
    ):
        self.resolved: Resolved = resolve(backend, device, precision, getattr(model, "bf16_check", None))
        precision = self.resolved.precision
        cfg = model.config
        self.config = cfg
        self.rig = rig
        self.device = self.resolved.device
        self.num_views = len(rig)
        self.max_people = cfg.root_net.max_people
        self.pad_people = (self.resolved.backend == "tensorrt") if pad_people is None else bool(pad_people)
        self.compiled = bool(compile) and self.resolved.backend != "tensorrt"
        self.space_size_mm = tuple(space_size_mm or cfg.space_size_mm)
        self.space_center_mm = tuple(space_center_mm or cfg.space_center_mm)
        b = cfg.backbone
        self.preprocessor = Preprocessor(rig, b.image_size, self.device, bgr=bgr)
        geometry = ViewGeometry.from_rig(rig, b.image_size, b.heatmap_size, self.device)
        self.projector = VolumeProjector(
            geometry,
            self.space_size_mm,
            self.space_center_mm,
            cfg.root_net.bins,
            cfg.pose_net.cube_size_mm,
            cfg.pose_net.bins,
            compile=self.compiled,
        )
        refine = with_refine_radius(cfg, refine_radius_mm).pose_net.refine
        self.refiner = (
            LocalRefiner(geometry, refine.radius_mm, refine.step_mm, refine.beta) if refine.radius_mm > 0 else None
        )
        model = model.eval()
        self.model = model
        W, H = b.image_size
        J = cfg.num_joints
        shapes = {
            "backbone": (self.num_views, 3, H, W),
            "root_net": (1, 1, *cfg.root_net.bins),
            "pose_net": (self.max_people, J, *cfg.pose_net.bins),
        }
        modules = {"backbone": model.backbone, "root_net": model.root_net, "pose_net": model.pose_net}
        if self.resolved.backend == "tensorrt":
            from engine.backends.tensorrt import TensorRTStage
            from engine.checkpoints import weights_hash

            cache = Path(cache_dir) if cache_dir else DEFAULT_CACHE_DIR
            self.stages = {
                n: TensorRTStage(m, n, shapes[n], self.device, precision, weights_hash(m), cache)
                for n, m in modules.items()
            }
        else:
            from engine.backends.eager import EagerStage

            cl = channels_last or precision != "fp32"
            self.stages = {
                n: EagerStage(m, len(shapes[n]), self.device, self.resolved.dtype, cl, compile, stage=n)
                for n, m in modules.items()
            }
        self._root_buf = torch.zeros(shapes["root_net"], dtype=torch.float32, device=self.device)
        self._pose_buf = torch.zeros(shapes["pose_net"], dtype=torch.float32, device=self.device)
        self._heatmap_shape = (self.num_views, J, b.heatmap_size[1], b.heatmap_size[0])
        log.info("runtime: %s on %s, %s (%s)", self.resolved.backend, self.device, precision, self.resolved.reason)

    # -- helpers -------------------------------------------------------------------------------
    def people_slots(self, people: int) -> int:
        """Cubes the pose net runs for ``people`` proposals (padding keeps compiled shapes few)."""
        if self.pad_people:
            return self.max_people
        if not self.compiled:
            return people
        return next((b for b in PEOPLE_BUCKETS if people <= b <= self.max_people), self.max_people)

    def warmup(self) -> None:
        """Run every stage on every input shape it will see, so compilation and allocation happen
        before the first frame rather than as multi-second stalls mid-stream."""
        with torch.inference_mode():
            W, H = self.config.backbone.image_size
            self.stages["backbone"](torch.zeros((self.num_views, 3, H, W), device=self.device))
            self.stages["root_net"](self._root_buf)
            for slots in sorted({self.people_slots(p) for p in range(1, self.max_people + 1)}):
                self.stages["pose_net"](self._pose_buf[:slots])
            center = torch.tensor([self.space_center_mm], dtype=torch.float32, device=self.device)
            for people in (1, 2):  # the compiled projection: P=1 and P>1 (dynamic) are separate graphs
                self.projector.cube_sampling(center.repeat(people, 1))  # contiguous, like live centres

    def _views_mask(self, views_present: Sequence[bool] | np.ndarray | torch.Tensor | None) -> torch.Tensor | None:
        if views_present is None:
            return None
        mask = torch.as_tensor(np.asarray(views_present, dtype=bool), device=self.device)
        if mask.shape != (self.num_views,):
            raise CalibrationError(
                f"views_present has {tuple(mask.shape)} entries for {self.num_views} cameras {self.rig.names}"
            )
        return mask

    # -- stages --------------------------------------------------------------------------------
    def heatmaps(self, images: torch.Tensor, views_present: torch.Tensor | None = None) -> torch.Tensor:
        """(V,3,H,W) normalised images -> (V,J,h,w) heatmaps (missing views: zeros, not computed on eager)."""
        if views_present is None or self.resolved.backend == "tensorrt":
            hm = self.stages["backbone"](images)
            if views_present is not None:
                hm = hm * views_present.reshape(-1, 1, 1, 1).to(hm.dtype)
            return hm
        hm = torch.zeros(self._heatmap_shape, dtype=torch.float32, device=self.device)
        idx = torch.nonzero(views_present).flatten()
        if idx.numel():
            hm[idx] = self.stages["backbone"](images[idx])
        return hm

    @torch.inference_mode()
    def root_stage(self, heatmaps: torch.Tensor, views_present=None, timer: _Timer | None = None) -> RootStageOutput:
        """Root volume, root net and proposals of one frame's heatmaps (V,J,h,w)."""
        timer = timer or _Timer(self.device)
        cfg = self.config
        heatmaps = heatmaps.to(self.device, torch.float32)
        if tuple(heatmaps.shape) != self._heatmap_shape:
            raise ValueError(f"heatmaps must be {self._heatmap_shape} (V,J,h,w), got {tuple(heatmaps.shape)}")
        present = self._views_mask(views_present) if not isinstance(views_present, torch.Tensor) else views_present
        root_hm = heatmaps[:, cfg.root_joint : cfg.root_joint + 1]
        volume = self.projector.root_volume(root_hm, present, out=self._root_buf)
        timer.lap("root_projection")
        root_cube = self.stages["root_net"](volume)  # (1,X,Y,Z)
        timer.lap("root_net")
        proposals = extract_proposals(
            root_cube,
            self.space_size_mm,
            self.space_center_mm,
            self.max_people,
            cfg.root_net.threshold,
            cfg.root_net.nms_kernel,
        )[0]  # (K,5)
        timer.lap("proposals")
        return RootStageOutput(heatmaps, present, proposals, root_cube[0], timer)

    @torch.inference_mode()
    def pose_stage(self, root: RootStageOutput) -> FrameOutput:
        """Person cubes, pose net and soft-argmax of the valid proposals of one frame.

        Separate from :meth:`root_stage` so a live worker can run the two stages of consecutive
        frames on two threads (each stage's buffers are only touched by its own stage).
        """
        cfg = self.config
        timer = root.timer
        timer.restart()
        proposals, heatmaps, present = root.proposals, root.heatmaps, root.present
        valid = torch.nonzero(proposals[:, 3] >= 0).flatten()
        K, J = self.max_people, cfg.num_joints
        candidates = torch.zeros((K, J, 5), dtype=torch.float32, device=self.device)
        candidates[:, :, 3:5] = proposals[:, None, 3:5]
        P = int(valid.numel())
        if P:
            centers = proposals[valid, :3]  # (P,3)
            slots = self.people_slots(P)
            if slots > P:
                self._pose_buf[P:slots].zero_()
            self.projector.person_cubes(heatmaps, centers, present, out=self._pose_buf[:P])
            cubes = self._pose_buf[:slots]
            timer.lap("pose_projection")
            volumes = self.stages["pose_net"](cubes)[:P]  # (P,J,X,Y,Z)
            timer.lap("pose_net")
            joints = soft_argmax(volumes, centers, self.projector.cube_axes, cfg.pose_net.beta)  # (P,J,3)
            timer.lap("soft_argmax")
            if self.refiner is not None:
                joints = self.refiner(joints, heatmaps, present)
                timer.lap("refine")
            candidates[valid, :, 0:3] = joints
        return FrameOutput(candidates.cpu(), proposals.cpu(), heatmaps, root.root_cube, timer.times)

    def from_heatmaps(self, heatmaps: torch.Tensor, views_present=None, timer: _Timer | None = None) -> FrameOutput:
        """Run the 3D part on one frame's heatmaps (V,J,h,w)."""
        return self.pose_stage(self.root_stage(heatmaps, views_present, timer))

    @torch.inference_mode()
    def images_root_stage(self, images: Sequence[np.ndarray] | np.ndarray, views_present=None) -> RootStageOutput:
        """Preprocess, backbone and root stage of (V,H0,W0,3) uint8 images (BGR unless ``bgr=False``).

        The images are no longer read once this returns (a zero-copy frame buffer may be reused)."""
        timer = _Timer(self.device)
        present = self._views_mask(views_present)
        x = self.preprocessor(images)
        timer.lap("preprocess")
        heatmaps = self.heatmaps(x, present)
        timer.lap("backbone")
        return self.root_stage(heatmaps, present, timer)

    def from_images(self, images: Sequence[np.ndarray] | np.ndarray, views_present=None) -> FrameOutput:
        """Run the whole frame on (V,H0,W0,3) uint8 images (BGR unless ``bgr=False``)."""
        return self.pose_stage(self.images_root_stage(images, views_present))
