"""Lockstep replay of a rig's recorded media: every camera delivers the same frame index.

Files, image folders and Panoptic sequences have no clock of their own: frame ``k`` of every
camera belongs to instant ``k / fps``. Read by independent threads that each keep only their
newest frame, a consumer slower than the media would see each camera skip *different* frames and
get incomplete framesets. A :class:`ReplaySchedule` shared by a rig's media sources instead
decides, once per round, the frame index that every camera delivers next:

* paced (``realtime``): the index due now on the media timeline (``elapsed * fps``), at least one
  ``step`` past the previous round's; frames in between are skipped by every camera alike (a
  video grabs them without converting, an image folder does not even read them) and counted per
  camera; a consumer faster than the media waits for each frame's instant (``fps`` cap);
* unpaced (``realtime: false``): every ``step``-th frame, none skipped for lateness;
* no camera runs more than ``max_ahead`` rounds ahead of the slowest one still running, so the
  synchroniser always finds the same index from every camera and never has to drop a frame.

Frame ``k`` is timestamped ``origin + k / fps`` with one origin for the rig (the first round), so
the views of one set carry identical timestamps and frame indices. A camera whose reader ends or
fails is retired: the others stop waiting for it.
"""

from __future__ import annotations

import threading
import time
from typing import Sequence

from capture.source import Pacer


class ReplaySchedule:
    """Shared frame-index schedule of a rig's media sources (see the module docstring).

    Args:
        cameras: the cameras that follow it.
        fps: media frame rate (frames per second of the files' own timeline).
        realtime: pace at ``fps`` and skip what a slow consumer cannot take; False: every frame.
        step: frames advanced per round at least (``round(native fps / rig fps cap)``, >= 1).
        length: frames per lap when looping (the shortest camera's count), None if not looping.
        max_ahead: rounds a camera may lead the slowest running camera by.
        stop: event that interrupts waits.
    """

    def __init__(self, cameras: Sequence[str], fps: float, *, realtime: bool, step: int = 1,
                 length: int | None = None, max_ahead: int = 2, stop: threading.Event | None = None) -> None:
        if step < 1 or max_ahead < 1 or (length is not None and length < 1):
            raise ValueError(f"ReplaySchedule: step ({step}), max_ahead ({max_ahead}) and length ({length}) must be >= 1")
        self.cameras = tuple(cameras)
        self.fps = float(fps)
        self.realtime = realtime
        self.step = int(step)
        self.length = length
        self.max_ahead = int(max_ahead)
        self._stop = stop or threading.Event()
        self.pacer = Pacer(self.fps, realtime=realtime, stop=self._stop)
        self._round = {c: 0 for c in self.cameras}
        self._active = set(self.cameras)
        self._decided: dict[int, int] = {}
        self._last_index = -self.step
        self.skipped = {c: 0 for c in self.cameras}
        self._cond = threading.Condition()

    def position(self, k: int) -> int:
        """Frame of the media (0-based) that timeline index ``k`` shows (``k`` modulo the lap)."""
        return k % self.length if self.length else k

    def next_index(self, camera: str, current: int) -> int | None:
        """The timeline index ``camera`` delivers next; ``current`` is the index its source would
        read without skipping. Blocks while the camera is ``max_ahead`` rounds ahead of another;
        None when stopped. Frames skipped are added to :attr:`skipped`."""
        with self._cond:
            r = self._round[camera]
            while not self._stop.is_set():
                lagging = [self._round[c] for c in self._active if c != camera]
                if not lagging or r - min(lagging) < self.max_ahead:
                    break
                self._cond.wait(0.05)
            if self._stop.is_set():
                return None
            k = self._decided.get(r)
            if k is None:
                self.pacer.start()  # the rig's origin: its first round
                k = self._last_index + self.step
                if self.realtime:
                    due = (time.time_ns() - self.pacer.start_ns) * self.fps // 1_000_000_000
                    k = max(k, int(due) // self.step * self.step)
                self._decided[r] = k
                self._last_index = k
            self._round[camera] = r + 1
            rounds = [self._round[c] for c in self._active] or [r + 1]
            for old in [x for x in self._decided if x < min(rounds)]:
                del self._decided[old]
            self.skipped[camera] += max(0, k - current)
            self._cond.notify_all()
            return k

    def retire(self, camera: str) -> None:
        """``camera`` will not ask again (its source ended or failed): nobody waits for it."""
        with self._cond:
            self._active.discard(camera)
            self._cond.notify_all()
