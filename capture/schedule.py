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
* but skipping is only worth it when the cameras can skip faster than the media plays: a video
  "grab" still decodes (H.264 1088x1920: ~12 ms against ~18 ms for a full read, on 2 shared
  cores), so four such cameras cannot even grab 60 frames/s. The sources report their time per
  frame (:meth:`ReplaySchedule.note_frame_s`); when the slowest camera needs more than a frame
  period per frame the schedule does not skip but lets the timeline slip (the replay runs slower
  than real time, :attr:`ReplaySchedule.slipped_s` says by how much): every frame decoded is then
  published instead of being decoded only to be thrown away;
* unpaced (``realtime: false``): every ``step``-th frame, none skipped for lateness;
* no camera runs more than ``max_ahead`` rounds ahead of the slowest one still running, so the
  synchroniser always finds the same index from every camera and never has to drop a frame.

Frame ``k`` is timestamped ``origin + k / fps`` with one origin for the rig (the first round, moved
by any slip), decided once per round, so the views of one set carry identical timestamps and
frame indices. A camera whose reader ends or
fails is retired: the others stop waiting for it.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
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

    def __init__(
        self,
        cameras: Sequence[str],
        fps: float,
        *,
        realtime: bool,
        step: int = 1,
        length: int | None = None,
        max_ahead: int = 2,
        stop: threading.Event | None = None,
    ) -> None:
        if step < 1 or max_ahead < 1 or (length is not None and length < 1):
            raise ValueError(
                f"ReplaySchedule: step ({step}), max_ahead ({max_ahead}) and length ({length}) must be >= 1"
            )
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
        self._decided: dict[int, tuple[int, int]] = {}  # round -> (frame index, t_ns)
        self._t_ns: dict[str, int] = {}
        self._last_index = -self.step
        self.skipped = {c: 0 for c in self.cameras}
        self.slipped_s = 0.0  # media time the timeline was moved back: the cameras could not keep up
        self._frame_s = {c: 0.0 for c in self.cameras}  # EMA of each source's seconds per frame
        self._cond = threading.Condition()
        self._origin_at: OrderedDict[int, int] = OrderedDict()  # recent round stamps -> origin then

    def note_frame_s(self, camera: str, seconds: float) -> None:
        """A source's measured cost of reading or grabbing one frame (moving average)."""
        old = self._frame_s.get(camera, 0.0)
        self._frame_s[camera] = seconds if old == 0.0 else 0.8 * old + 0.2 * seconds

    @property
    def can_skip(self) -> bool:
        """True while the slowest camera gets through a frame faster than the media plays one."""
        return max(self._frame_s.values(), default=0.0) * self.fps < 0.9

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
            got = self._decided.get(r)
            if got is None:
                self.pacer.start()  # the rig's origin: its first round
                k = self._last_index + self.step
                if self.realtime:
                    due = int((time.time_ns() - self.pacer.start_ns) * self.fps // 1_000_000_000)
                    due = due // self.step * self.step
                    if due > k and not self.can_skip:  # decode-bound: slip the timeline instead
                        slip_ns = int(round((due - k) * 1e9 / self.fps))
                        self.pacer.start_ns += slip_ns
                        self.slipped_s += slip_ns / 1e9
                    k = max(k, due) if self.can_skip else k
                self._decided[r] = (k, self.pacer.t_ns(k))  # one timestamp per round, whatever slips later
                self._origin_at[self._decided[r][1]] = self.pacer.start_ns
                while len(self._origin_at) > 64:
                    self._origin_at.popitem(last=False)
                self._last_index = k
            k, t_ns = self._decided[r]
            self._round[camera] = r + 1
            self._t_ns[camera] = t_ns
            rounds = [self._round[c] for c in self._active] or [r + 1]
            for old in [x for x in self._decided if x < min(rounds)]:
                del self._decided[old]
            self.skipped[camera] += max(0, k - current)
            self._cond.notify_all()
            return k

    def wait(self, camera: str) -> int:
        """Timestamp of the index :meth:`next_index` last gave ``camera``; sleeps until that
        instant when paced."""
        t_ns = self._t_ns[camera]
        if self.realtime:
            delay = (t_ns - time.time_ns()) / 1e9
            if delay > 0:
                self._stop.wait(delay)
        return t_ns

    def consumer_held(self, seconds: float) -> None:
        """The consumer kept the rig waiting ``seconds`` (its queue was full): move the timeline
        back by as much, so the replay slows to the consumer's pace instead of skipping frames a
        video would still have to decode (:attr:`slipped_s` counts it too)."""
        with self._cond:
            if self.realtime and self.pacer.start_ns is not None and seconds > 0:
                self.pacer.start_ns += int(seconds * 1e9)
                self.slipped_s += seconds

    def slip_since(self, t_ns: int) -> int:
        """ns the timeline moved back since the round stamped ``t_ns`` was decided (0 if unknown): the
        consumer's holds and the schedule's own decode-bound slips alike."""
        with self._cond:
            origin = self._origin_at.get(int(t_ns))
            return 0 if origin is None or self.pacer.start_ns is None else int(self.pacer.start_ns - origin)

    def retire(self, camera: str) -> None:
        """``camera`` will not ask again (its source ended or failed): nobody waits for it."""
        with self._cond:
            self._active.discard(camera)
            self._cond.notify_all()
