"""The inference worker: framesets in, tracked 3D poses out (DESIGN.md §1).

:class:`InferenceWorker` is the per-frameset logic (testable without processes): drop stale
sets, map the set's views onto the rig order (absent cameras are masked out and the volume
fuses the views present), run the predictor, track and smooth, and build the ``poses``
message with per-stage timings and, on synthetic rigs, the error against the truth.
:func:`inference_child` is the supervised process around it.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from calib.camera import CameraRig
from capture.messages import FrameSet, MessageError, Poses, now_ns

log = logging.getLogger(__name__)

TruthFn = Callable[[int], tuple[np.ndarray, np.ndarray]]  # frame_index -> (ids (P,), joints_mm (P,J,3))


@dataclass
class WorkerStats:
    """Counters of one worker (reported in status messages and at exit)."""

    processed: int = 0
    stale: int = 0
    bad: int = 0
    too_few_views: int = 0
    overwritten: int = 0
    latency_ms: deque = field(default_factory=lambda: deque(maxlen=600))
    mpjpe_mm: deque = field(default_factory=lambda: deque(maxlen=600))


def mpjpe_to_truth(pred_mm: np.ndarray, truth_mm: np.ndarray) -> tuple[float | None, int]:
    """Mean per-joint error of the best one-to-one match of predictions to true people.

    Args:
        pred_mm: (P,J,3) predicted poses.
        truth_mm: (T,J,3) true poses (NaN rows allowed: absent people are skipped).
    Returns:
        (mean error in mm over matched pairs within 500 mm, or None; number of matched pairs).
    """
    from scipy.optimize import linear_sum_assignment

    truth_mm = truth_mm[np.isfinite(truth_mm).all(axis=(1, 2))] if len(truth_mm) else truth_mm
    if len(pred_mm) == 0 or len(truth_mm) == 0:
        return None, 0
    cost = np.linalg.norm(pred_mm[:, None] - truth_mm[None], axis=-1).mean(-1)  # (P,T)
    rows, cols = linear_sum_assignment(cost)
    errs = [cost[r, c] for r, c in zip(rows, cols) if cost[r, c] < 500.0]
    return (float(np.mean(errs)) if errs else None), len(errs)


class InferenceWorker:
    """Per-frameset inference, tracking and message building.

    Args:
        predictor: an :class:`engine.api.Predictor` bound to ``rig``.
        rig: cameras in the predictor's view order.
        rig_name: the stream's rig name.
        tracker: an :class:`engine.tracking.PoseTracker` or None (ids are then -1).
        truth: optional frame_index -> (ids, joints_mm) of a synthetic world, for live MPJPE.
        max_age_ms: framesets older than this on arrival are dropped (bounded latency).
        min_views: framesets with fewer present views are skipped.
    """

    def __init__(self, predictor, rig: CameraRig, rig_name: str, *, tracker=None, truth: TruthFn | None = None,
                 max_age_ms: float = 250.0, min_views: int = 2) -> None:
        self.predictor = predictor
        self.rig = rig
        self.rig_name = rig_name
        self.tracker = tracker
        self.truth = truth
        self.max_age_ms = max_age_ms
        self.min_views = min_views
        self.stats = WorkerStats()
        self._index = {name: i for i, name in enumerate(rig.names)}
        self._blank = [np.zeros((c.height, c.width, 3), np.uint8) for c in rig]
        self._seq = 0

    def _images(self, fs: FrameSet) -> tuple[list[np.ndarray], np.ndarray, list[int]]:
        images = list(self._blank)
        present = np.zeros(len(self.rig), dtype=bool)
        frame_indices = []
        for i, view in enumerate(fs.views):
            v = self._index.get(view.camera)
            if v is None:
                raise MessageError(f"frameset {fs.seq}: camera '{view.camera}' is not in rig {self.rig.names}")
            cam = self.rig[v]
            if (view.width, view.height) != (cam.width, cam.height):
                raise MessageError(f"frameset {fs.seq}: camera '{view.camera}' sends {view.width}x{view.height}, "
                                   f"its calibration is {cam.width}x{cam.height}")
            images[v] = fs.image(i)
            present[v] = True
            frame_indices.append(view.frame_index)
        return images, present, frame_indices

    def process(self, fs: FrameSet) -> Poses | None:
        """Poses message of one frameset, or None if it was dropped (stale, bad, too few views)."""
        t_arrive = now_ns()
        if (t_arrive - fs.t_ref_ns) / 1e6 > self.max_age_ms:
            self.stats.stale += 1
            return None
        try:
            images, present, frame_indices = self._images(fs)
        except MessageError as exc:
            self.stats.bad += 1
            log.warning("dropped frameset: %s", exc)
            return None
        if present.sum() < self.min_views:
            self.stats.too_few_views += 1
            return None
        t0 = time.perf_counter()
        pred = self.predictor.predict_images(images, present if not present.all() else None)
        if not all(fs.still_valid(i) for i in range(len(fs.views))):
            self.stats.overwritten += 1  # a zero-copy shm view was reused while we read it
            return None
        timings = {k: round(float(v), 3) for k, v in pred.timings_ms.items()}
        timings["inference_total"] = round((time.perf_counter() - t0) * 1e3, 3)
        poses_mm, scores = pred.poses_mm, pred.scores
        t1 = time.perf_counter()
        if self.tracker is not None:
            tracked = self.tracker.update(poses_mm, scores, fs.t_ref_ns / 1e9)
            ids, poses_mm = tracked.track_ids, tracked.poses_mm
        else:
            ids = np.full(len(poses_mm), -1, dtype=np.int64)
        timings["tracking"] = round((time.perf_counter() - t1) * 1e3, 3)
        J = pred.skeleton.num_joints
        layout = np.zeros((len(poses_mm), J, 4), dtype=np.float32)
        layout[..., :3] = poses_mm
        layout[..., 3] = np.asarray(scores, dtype=np.float32)[:, None]
        extra = {"views_present": int(present.sum()), "missing": list(fs.missing)}
        if self.truth is not None and frame_indices:
            _, truth_mm = self.truth(int(np.median(frame_indices)))
            err, matched = mpjpe_to_truth(np.asarray(poses_mm, dtype=np.float64), truth_mm)
            extra["truth_people"] = int(np.isfinite(truth_mm).all(axis=(1, 2)).sum()) if len(truth_mm) else 0
            extra["matched"] = matched
            if err is not None:
                extra["mpjpe_mm"] = round(err, 2)
                self.stats.mpjpe_mm.append(err)
        t_pub = now_ns()
        self.stats.processed += 1
        self.stats.latency_ms.append((t_pub - fs.t_ref_ns) / 1e6)
        msg = Poses(rig=self.rig_name, seq=self._seq, frameset_seq=fs.seq, t_capture_ns=fs.t_ref_ns,
                    t_publish_ns=t_pub, skeleton_name=pred.skeleton.name, joints=tuple(pred.skeleton.joints),
                    edges=tuple(tuple(e) for e in pred.skeleton.edges), poses=layout,
                    track_ids=np.asarray(ids, dtype=np.int64), timings_ms=timings, extra=extra)
        self._seq += 1
        return msg


def synthetic_truth(rig) -> TruthFn | None:
    """frame_index -> (ids, joints_mm) of the rig's synthetic world, or None if not synthetic."""
    if not all(rig.source(n).kind == "synthetic" for n in rig.names):
        return None
    from capture.synthetic.world import world_for_rig

    world = world_for_rig(rig)

    def truth(frame_index: int) -> tuple[np.ndarray, np.ndarray]:
        people = world.people(frame_index)
        keep = people.present
        return people.ids[keep], people.joints_mm[keep]

    return truth


def inference_child(name: str, status_endpoint: str, *, rig_path: str, rig_overrides: tuple = (),
                    worker: dict, frames_endpoint: str, poses_endpoint: str) -> None:
    """Supervised inference process: subscribe framesets, publish poses and status."""
    import torch

    from app.config import WorkerConfig
    from app.process import ChildContext
    from calib.configkit import from_dict
    from calib.rig_config import load_rig
    from capture.bus import Publisher, Subscriber
    from capture.messages import FrameSet
    from engine.api import load_model
    from engine.tracking import PoseTracker

    cfg = from_dict(WorkerConfig, worker)
    with ChildContext(name, status_endpoint) as ctx:
        if cfg.threads > 0:
            torch.set_num_threads(cfg.threads)
        rig = load_rig(rig_path, rig_overrides)
        model = cfg.model.split(",") if "," in cfg.model else cfg.model

        def load(compile_: bool):
            return load_model(model, rig.cameras, backend=cfg.backend, device=cfg.device,
                              precision=cfg.precision, compile=compile_,
                              volume_center_mm=rig.volume.center_mm, volume_size_mm=rig.volume.size_mm)

        predictor = load(cfg.compile)
        blank = [np.zeros((c.height, c.width, 3), np.uint8) for c in rig.cameras]
        if cfg.warmup:
            try:
                predictor.runtime.warmup()  # compiles every shape (each people bucket), allocates
                predictor.predict_images(blank)
            except Exception as exc:  # noqa: BLE001 - only the optional compile path is retried
                if not cfg.compile:
                    raise
                log.warning("torch.compile failed at warm-up (%s: %s); running eager instead",
                            type(exc).__name__, str(exc)[:300])
                predictor = load(False)
                predictor.predict_images(blank)
        tracker = PoseTracker() if cfg.tracking else None
        truth = synthetic_truth(rig) if cfg.truth else None
        work = InferenceWorker(predictor, rig.cameras, rig.name, tracker=tracker, truth=truth,
                               max_age_ms=cfg.max_age_ms, min_views=cfg.min_views)
        with Subscriber(frames_endpoint, [f"frames/{rig.name}".encode()], hwm=2) as sub, \
                Publisher(poses_endpoint, hwm=4) as pub:
            ctx.report("ready")
            t_last, n_last = time.monotonic(), 0
            fps = 0.0
            while not ctx.stopping:
                msg = sub.recv_latest(timeout_ms=100)
                if isinstance(msg, FrameSet):
                    out = work.process(msg)
                    if out is not None:
                        pub.send(out)
                now = time.monotonic()
                if now - t_last >= 1.0:
                    fps = (work.stats.processed - n_last) / (now - t_last)
                    t_last, n_last = now, work.stats.processed
                lat = float(np.median(work.stats.latency_ms)) if work.stats.latency_ms else 0.0
                ctx.heartbeat(fps=fps, latency_ms=lat,
                              dropped=work.stats.stale + work.stats.overwritten + sub.stats.skipped + sub.stats.gaps
                              + pub.stats.dropped)
