"""Frameset assembly from per-camera timestamped frames (pure: no I/O, no clock reads).

The caller pushes ``(camera, t_ns, payload)`` as frames arrive and calls :meth:`poll` with the
current time; the synchroniser returns the sets that are ready. A set holds at most one frame
per camera, all within ``tolerance_ms`` of the set's oldest frame. A set is emitted

* as soon as every camera has a frame in the window (complete), or
* with the absent cameras listed in ``missing`` when they can no longer contribute (each has
  a newer frame already, or ``deadline_ms`` have passed since the set's oldest frame arrived;
  arrival defaults to the capture time when both are on one clock),

so one dead camera delays the others by at most ``deadline_ms`` and never stalls them.
Duplicates (a camera's timestamp not newer than its last one), frames arriving after their
window was emitted, and overflow of the per-camera queue are dropped and counted.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any, Sequence


@dataclass(frozen=True)
class SyncedFrame:
    """One camera's frame inside a synchronised set."""

    camera: str
    t_ns: int
    payload: Any
    arrival_ns: int = 0


@dataclass(frozen=True)
class SyncedSet:
    """Frames of one instant, in rig camera order.

    Attributes:
        t_ref_ns: capture time of the oldest frame in the set.
        frames: present cameras' frames, in rig order.
        missing: absent cameras, in rig order.
        skew_ms: max - min capture time within the set.
    """

    t_ref_ns: int
    frames: tuple[SyncedFrame, ...]
    missing: tuple[str, ...]
    skew_ms: float

    @property
    def complete(self) -> bool:
        return not self.missing


@dataclass
class SyncStats:
    """Counters since construction."""

    complete: int = 0
    incomplete: int = 0
    duplicates: int = 0
    late: int = 0
    overflow: int = 0
    too_few_views: int = 0
    missing_per_camera: dict[str, int] = field(default_factory=dict)

    @property
    def dropped_frames(self) -> int:
        return self.duplicates + self.late + self.overflow


class FrameSynchronizer:
    """Assemble time-synchronised sets, one frame per camera (see module docstring).

    Args:
        cameras: camera names in rig order.
        tolerance_ms: max distance of a frame from the set's oldest frame (half a frame period
            is a good value, e.g. 16 ms at 30 fps).
        deadline_ms: how long after its oldest frame's capture time a set waits for absent
            cameras before it is emitted incomplete.
        min_views: sets with fewer present views are dropped (counted in ``too_few_views``).
        max_pending: per camera queue length; older frames are dropped beyond it.
    """

    def __init__(
        self,
        cameras: Sequence[str],
        *,
        tolerance_ms: float,
        deadline_ms: float,
        min_views: int = 1,
        max_pending: int = 16,
    ) -> None:
        if not cameras or len(set(cameras)) != len(cameras):
            raise ValueError(f"FrameSynchronizer: cameras must be unique and non-empty, got {list(cameras)}")
        if tolerance_ms <= 0 or deadline_ms < 0:
            raise ValueError("FrameSynchronizer: tolerance_ms must be > 0 and deadline_ms >= 0")
        if not 1 <= min_views <= len(cameras):
            raise ValueError(f"FrameSynchronizer: min_views must be in [1, {len(cameras)}], got {min_views}")
        self.cameras = tuple(cameras)
        self._tol_ns = int(round(tolerance_ms * 1e6))
        self._deadline_ns = int(round(deadline_ms * 1e6))
        self._min_views = min_views
        self._max_pending = max_pending
        self._pending: dict[str, deque[SyncedFrame]] = {c: deque() for c in self.cameras}
        self._last_t: dict[str, int] = {}
        self._emitted_until_ns: int | None = None
        self._retired: set[str] = set()
        self.stats = SyncStats(missing_per_camera={c: 0 for c in self.cameras})

    def push(self, camera: str, t_ns: int, payload: Any = None, arrival_ns: int | None = None) -> bool:
        """Add a frame; returns False if it was dropped (duplicate or late).

        Args:
            camera: camera name.
            t_ns: capture time (defines which frames belong together).
            payload: anything (returned in the set).
            arrival_ns: when the frame reached us on the clock passed to :meth:`poll`; the
                deadline counts from the oldest frame's arrival. None: ``t_ns`` (capture and
                host clock are the same clock).
        """
        if camera not in self._pending:
            raise KeyError(f"FrameSynchronizer: unknown camera '{camera}'; rig cameras: {list(self.cameras)}")
        last = self._last_t.get(camera)
        if last is not None and t_ns <= last:
            self.stats.duplicates += 1
            return False
        if self._emitted_until_ns is not None and t_ns <= self._emitted_until_ns:
            self.stats.late += 1
            return False
        self._last_t[camera] = t_ns
        queue = self._pending[camera]
        queue.append(SyncedFrame(camera, int(t_ns), payload, int(t_ns if arrival_ns is None else arrival_ns)))
        if len(queue) > self._max_pending:
            queue.popleft()
            self.stats.overflow += 1
        return True

    def retire(self, camera: str) -> None:
        """``camera`` will send no more frames (its source ended or failed): sets stop waiting for it."""
        self._retired.add(camera)

    def poll(self, now_ns: int) -> list[SyncedSet]:
        """Sets that are ready at time ``now_ns`` (same clock as the frames' ``t_ns``)."""
        out = []
        while True:
            result = self._try_emit(now_ns)
            if result is None:
                return out
            if result.frames:
                out.append(result)

    def flush(self) -> list[SyncedSet]:
        """Emit everything pending (end of stream), incomplete sets included."""
        return self.poll(2**63 - 1)

    @property
    def pending(self) -> int:
        return sum(len(q) for q in self._pending.values())

    def _try_emit(self, now_ns: int) -> SyncedSet | None:
        heads = [q[0] for q in self._pending.values() if q]
        if not heads:
            return None
        oldest = min(heads, key=lambda f: f.t_ns)
        t0 = oldest.t_ns
        window_end = t0 + self._tol_ns
        chosen: list[SyncedFrame] = []
        missing: list[str] = []
        waiting = False
        for cam in self.cameras:
            queue = self._pending[cam]
            if queue and queue[0].t_ns <= window_end:
                chosen.append(queue[0])
            else:
                missing.append(cam)
                # A camera whose next frame is already beyond the window cannot contribute.
                waiting |= not queue and cam not in self._retired
        if waiting and now_ns - oldest.arrival_ns < self._deadline_ns:
            return None
        for frame in chosen:
            self._pending[frame.camera].popleft()
        self._emitted_until_ns = max(f.t_ns for f in chosen)
        if len(chosen) < self._min_views:
            self.stats.too_few_views += 1
            return SyncedSet(t0, (), tuple(missing), 0.0)
        for cam in missing:
            self.stats.missing_per_camera[cam] += 1
        if missing:
            self.stats.incomplete += 1
        else:
            self.stats.complete += 1
        times = [f.t_ns for f in chosen]
        return SyncedSet(t0, tuple(chosen), tuple(missing), (max(times) - min(times)) / 1e6)
