"""The inference worker: framesets in, tracked 3D poses out (DESIGN.md §1).

:class:`InferenceWorker` is the per-frameset logic (testable without processes): drop stale
sets, map the set's views onto the rig order (absent cameras are masked out and the volume
fuses the views present), run the predictor, track and smooth, and build the ``poses``
message with per-stage timings and, on synthetic rigs, the error against the truth.
:func:`inference_child` is the supervised process around it.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from calib.camera import CameraRig
from calib.common.poses import pairwise_mpjpe_mm
from capture.messages import FrameSet, MessageError, Poses, now_ns

log = logging.getLogger(__name__)

# frame_index -> (ids (P,), joints_mm (P,J,3)), or None while that frame is not reachable at a
# bounded cost (the synthetic world simulates forward a chunk per call: see synthetic_truth)
CATCH_UP_MAX_S = 600.0  # the truth thread simulates at most this much media time ahead on request
TruthFn = Callable[[int], "tuple[np.ndarray, np.ndarray] | None"]


@dataclass
class WorkerStats:
    """Counters of one worker (reported in status messages and at exit)."""

    processed: int = 0
    stale: int = 0
    bad: int = 0
    too_few_views: int = 0
    overwritten: int = 0
    truth_pending: int = 0  # poses sent without truth: the world had not been simulated that far yet
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
    cost = pairwise_mpjpe_mm(pred_mm, truth_mm)  # (P,T)
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

    def __init__(
        self,
        predictor,
        rig: CameraRig,
        rig_name: str,
        *,
        tracker=None,
        truth: TruthFn | None = None,
        max_age_ms: float = 250.0,
        min_views: int = 2,
    ) -> None:
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
        if truth is not None:
            import scipy.optimize  # noqa: F401 - imported now rather than on the first frame (~0.3 s)

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
                raise MessageError(
                    f"frameset {fs.seq}: camera '{view.camera}' sends {view.width}x{view.height}, "
                    f"its calibration is {cam.width}x{cam.height}"
                )
            images[v] = fs.image(i)
            present[v] = True
            frame_indices.append(view.frame_index)
        return images, present, frame_indices

    def begin(self, fs: FrameSet) -> "StartedFrame | None":
        """First half of :meth:`process`: checks and the predictor's root stage (the frameset's
        buffers are not read after it returns). None if the set was dropped (stale, bad, too few
        views, or a zero-copy buffer reused while it was read)."""
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
        started = self.predictor.start_images(images, present if not present.all() else None)
        if not all(fs.still_valid(i) for i in range(len(fs.views))):
            self.stats.overwritten += 1  # a zero-copy shm view was reused while we read it
            return None
        return StartedFrame(
            fs.seq,
            fs.t_ref_ns,
            tuple(fs.missing),
            present,
            frame_indices,
            started,
            (time.perf_counter() - t0) * 1e3,
            (t_arrive - fs.t_ref_ns) / 1e6,
            now_ns(),
        )

    def complete(self, frame: "StartedFrame") -> Poses:
        """Second half of :meth:`process`: pose stage, tracking and the ``poses`` message."""
        t0 = time.perf_counter()
        handoff_ms = (now_ns() - frame.t_begun_ns) / 1e6
        pred = self.predictor.finish(frame.started)
        timings = {k: round(float(v), 3) for k, v in pred.timings_ms.items()}
        timings["frame_age"] = round(frame.age_ms, 3)  # capture timestamp -> taken by the worker
        timings["handoff_wait"] = round(handoff_ms, 3)  # root stage done -> pose stage started
        timings["inference_total"] = round(frame.begin_ms + (time.perf_counter() - t0) * 1e3, 3)
        poses_mm, scores = pred.poses_mm, pred.scores
        t1 = time.perf_counter()
        if self.tracker is not None:
            tracked = self.tracker.update(poses_mm, scores, frame.t_ref_ns / 1e9)
            ids, poses_mm = tracked.track_ids, tracked.poses_mm
        else:
            ids = np.full(len(poses_mm), -1, dtype=np.int64)
        timings["tracking"] = round((time.perf_counter() - t1) * 1e3, 3)
        J = pred.skeleton.num_joints
        layout = np.zeros((len(poses_mm), J, 4), dtype=np.float32)
        layout[..., :3] = poses_mm
        layout[..., 3] = np.asarray(scores, dtype=np.float32)[:, None]
        present = frame.present
        extra = {"views_present": int(present.sum()), "missing": list(frame.missing)}
        if self.truth is not None and frame.frame_indices:
            got = self.truth(int(np.median(frame.frame_indices)))
        else:
            got = None
        if got is None:
            if self.truth is not None:
                self.stats.truth_pending += 1
        else:
            truth_mm = got[1]
            err, matched = mpjpe_to_truth(np.asarray(poses_mm, dtype=np.float64), truth_mm)
            extra["truth_people"] = int(np.isfinite(truth_mm).all(axis=(1, 2)).sum()) if len(truth_mm) else 0
            extra["matched"] = matched
            if err is not None:
                extra["mpjpe_mm"] = round(err, 2)
                self.stats.mpjpe_mm.append(err)
        t_pub = now_ns()
        self.stats.processed += 1
        self.stats.latency_ms.append((t_pub - frame.t_ref_ns) / 1e6)
        msg = Poses(
            rig=self.rig_name,
            seq=self._seq,
            frameset_seq=frame.seq,
            t_capture_ns=frame.t_ref_ns,
            t_publish_ns=t_pub,
            skeleton_name=pred.skeleton.name,
            joints=tuple(pred.skeleton.joints),
            edges=tuple(tuple(e) for e in pred.skeleton.edges),
            poses=layout,
            track_ids=np.asarray(ids, dtype=np.int64),
            timings_ms=timings,
            extra=extra,
        )
        self._seq += 1
        return msg

    def process(self, fs: FrameSet) -> Poses | None:
        """Poses message of one frameset, or None if it was dropped (stale, bad, too few views)."""
        frame = self.begin(fs)
        return None if frame is None else self.complete(frame)


@dataclass
class StartedFrame:
    """A frameset between :meth:`InferenceWorker.begin` and :meth:`InferenceWorker.complete`."""

    seq: int
    t_ref_ns: int
    missing: tuple
    present: np.ndarray  # (V,) bool in rig order
    frame_indices: list
    started: object  # the predictor's root-stage output
    begin_ms: float  # compute time of the first half
    age_ms: float  # capture timestamp -> taken by the worker
    t_begun_ns: int  # when the first half ended


class PosePipeline:
    """Runs :meth:`InferenceWorker.complete` (and the publish) on a second thread, so the root
    stage of frame t+1 overlaps the pose stage of frame t (both stages use one core each on a
    2-core CPU; the handoff holds one frame, so latency stays bounded).

    Args:
        worker: the per-frameset logic.
        publish: called with each ``poses`` message, on the pipeline thread only.
    """

    def __init__(self, worker: InferenceWorker, publish: Callable[[Poses], None]) -> None:
        self.worker = worker
        self.publish = publish
        self._queue: "queue.Queue[StartedFrame | None]" = queue.Queue(maxsize=1)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="pose-stage", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            frame = self._queue.get()
            if frame is None:
                return
            try:
                self.publish(self.worker.complete(frame))
            except BaseException as exc:  # noqa: BLE001 - re-raised on the caller's thread
                self._error = exc
                return

    def check(self) -> None:
        """Re-raise a failure of the pose-stage thread on the calling thread."""
        if self._error is not None:
            raise RuntimeError(f"pose stage failed: {type(self._error).__name__}: {self._error}") from self._error

    def submit(self, frame: StartedFrame, should_stop: Callable[[], bool] = lambda: False) -> None:
        """Hand one started frame over; waits while the previous one is still in the pose stage."""
        while True:
            self.check()
            try:
                self._queue.put(frame, timeout=0.1)
                return
            except queue.Full:
                if should_stop():
                    return

    def close(self, timeout_s: float = 10.0) -> None:
        """Finish the frame in flight and stop the thread; re-raises its failure."""
        deadline = time.monotonic() + timeout_s
        while self._thread.is_alive() and time.monotonic() < deadline:
            try:
                self._queue.put(None, timeout=0.1)
                break
            except queue.Full:
                continue
        self._thread.join(max(0.0, deadline - time.monotonic()))
        self.check()


def lower_thread_priority(nice: int) -> bool:
    """Raise the calling thread's nice value by ``nice`` (Linux: per thread); False where unsupported.

    In the pipelined worker the main thread runs the root stage of the *newer* frame; lowering it
    lets the pose stage of the older frame, which is further along, finish first when the CPU is
    short (oldest work first lowers the latency tail; measured in README "Measured here").
    """
    try:
        tid = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, tid, min(19, os.getpriority(os.PRIO_PROCESS, tid) + int(nice)))
        return True
    except (AttributeError, OSError) as exc:  # not Linux, or not permitted
        log.info("could not lower the root-stage thread priority: %s", exc)
        return False


def synthetic_truth(rig) -> TruthFn | None:
    """frame_index -> (ids, joints_mm) of the rig's synthetic world, or None if not synthetic."""
    from app.route import is_synthetic
    from capture.synthetic.world import world_for_rig

    if not is_synthetic(rig):
        return None

    world = world_for_rig(rig)
    lock = threading.Lock()
    wanted = [0]  # newest frame the worker asked about, for the catch-up thread
    wake = threading.Event()

    def catch_up() -> None:
        """Simulates towards the stream's frame one chunk per lock hold, so a worker that starts
        long after the capture gets its truth within seconds; bounded to CATCH_UP_MAX_S of media
        ahead of the simulation (a frame number far beyond that is not worth minutes of CPU)."""
        while True:
            wake.wait()
            wake.clear()
            target_s = world.timestamp_s(wanted[0])
            if target_s - world.motion.simulated_s > CATCH_UP_MAX_S:
                continue
            done = False
            while not done:
                with lock:
                    done = world.motion.advance(target_s, 1)

    threading.Thread(target=catch_up, name="truth-catch-up", daemon=True).start()

    def truth(frame_index: int) -> tuple[np.ndarray, np.ndarray] | None:
        # bounded cost per frameset whatever frame number it carries: at most one simulation chunk
        # (~40 ms) here; a stream far ahead of the simulation is reached by the catch-up thread
        # while this returns None (a frame_index of 1e9 once cost minutes)
        if not lock.acquire(blocking=False):
            return None  # the catch-up thread is simulating
        try:
            people = world.people_if_cheap(frame_index, max_new_chunks=1)
        finally:
            lock.release()
        if people is None:
            wanted[0] = max(0, int(frame_index))
            wake.set()
            return None
        keep = people.present
        return people.ids[keep], people.joints_mm[keep]

    return truth


def inference_child(
    name: str,
    status_endpoint: str,
    *,
    rig_path: str,
    rig_overrides: tuple = (),
    worker: dict,
    frames_endpoint: str,
    poses_endpoint: str,
) -> None:
    """Supervised inference process: subscribe framesets, publish poses and status."""
    import torch

    from app.config import WorkerConfig
    from app.process import ChildContext
    from calib.configkit import from_dict
    from calib.rig_config import load_rig
    from capture.bus import Publisher, Subscriber
    from capture.messages import FrameSet
    from app.route import Route, build_worker_predictor
    from engine.tracking import PoseTracker

    cfg = from_dict(WorkerConfig, worker)
    with ChildContext(name, status_endpoint) as ctx:
        threads = cfg.threads or (1 if cfg.pipeline else 0)  # pipelined: one core per stage
        if threads > 0:
            torch.set_num_threads(threads)
        rig = load_rig(rig_path, rig_overrides)
        route = Route(cfg.engine, cfg.model, "decided by the supervisor's preflight")

        def load(compile_: bool):
            return build_worker_predictor(route, cfg, rig, compile_ and route.kind == "image")

        predictor = load(cfg.compile)
        blank = [np.zeros((c.height, c.width, 3), np.uint8) for c in rig.cameras]
        if cfg.warmup:
            try:
                predictor.runtime.warmup()  # compiles every shape (each people bucket), allocates
                predictor.predict_images(blank)
            except Exception as exc:  # noqa: BLE001 - only the optional compile path is retried
                if not cfg.compile:
                    raise
                log.warning(
                    "torch.compile failed at warm-up (%s: %s); running eager instead",
                    type(exc).__name__,
                    str(exc)[:300],
                )
                predictor = load(False)
                predictor.predict_images(blank)
        tracker = PoseTracker() if cfg.tracking else None
        truth = synthetic_truth(rig) if cfg.truth else None
        work = InferenceWorker(
            predictor,
            rig.cameras,
            rig.name,
            tracker=tracker,
            truth=truth,
            max_age_ms=cfg.max_age_ms,
            min_views=cfg.min_views,
        )
        with (
            Subscriber(frames_endpoint, [f"frames/{rig.name}".encode()], hwm=1) as sub,
            Publisher(poses_endpoint, hwm=4) as pub,
        ):
            pipeline = PosePipeline(work, pub.send) if cfg.pipeline else None
            if pipeline is not None and cfg.root_stage_nice:
                lower_thread_priority(cfg.root_stage_nice)  # this thread runs the newer frame's root stage
            ctx.report("ready")
            t_last, n_last = time.monotonic(), 0
            fps = 0.0
            try:
                while not ctx.stopping:
                    msg = sub.recv_latest(timeout_ms=100)
                    if isinstance(msg, FrameSet):
                        if pipeline is None:
                            out = work.process(msg)
                            if out is not None:
                                pub.send(out)
                        else:
                            frame = work.begin(msg)
                            if frame is not None:
                                pipeline.submit(frame, lambda: ctx.stopping)
                    if pipeline is not None:
                        pipeline.check()
                    now = time.monotonic()
                    if now - t_last >= 1.0:
                        fps = (work.stats.processed - n_last) / (now - t_last)
                        t_last, n_last = now, work.stats.processed
                    latencies = work.stats.latency_ms.copy()  # appended to by the pose-stage thread
                    lat = float(np.median(latencies)) if latencies else 0.0
                    ctx.heartbeat(
                        fps=fps,
                        latency_ms=lat,
                        dropped=work.stats.stale
                        + work.stats.overwritten
                        + sub.stats.skipped
                        + sub.stats.gaps
                        + pub.stats.dropped,
                    )
            finally:
                if pipeline is not None:
                    pipeline.close()
