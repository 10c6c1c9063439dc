"""Frame sources and the one threaded reader that runs any of them.

A :class:`Source` yields :class:`Frame` objects (one camera's BGR image, its capture time and
its frame index) from a blocking :meth:`Source.read`. Concrete sources live in
``capture/sources/``. :class:`ThreadedReader` runs a source on its own thread with the
behaviour a live rig needs, written once for all of them:

* latest frame wins (a slow consumer never makes a camera queue up; overwritten frames counted),
* the capture timestamp is taken at grab by the source,
* a failure budget: a few consecutive read errors are tolerated, more make the reader close
  the source and reopen it with exponential backoff (a camera that disappears is retried
  forever while the other cameras keep streaming; :attr:`ThreadedReader.state` says so),
* a bounded stop (``stop(timeout_s)``) and context-manager use.

Sources that replay recorded media (files, folders, Panoptic, sessions, synthetic) timestamp
frame ``k`` as ``start_ns + k / fps`` ("media time", deterministic) and, when ``realtime``,
sleep until that instant before returning it (:class:`Pacer`).
"""

from __future__ import annotations

import logging
import threading
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from calib.common.errors import SourceError  # noqa: F401  (re-exported: every source raises it from here)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Frame:
    """One camera image.

    Attributes:
        camera: camera name.
        image: (H,W,3) uint8 BGR.
        t_ns: capture time in ns (wall clock or media time, see the module docstring).
        frame_index: the source's frame counter (for Panoptic the sequence frame number).
        shm: handle (segment, slot, offset, generation) when a copy of the image also lives in a
            shared-memory ring (see capture/shm.py), else None.
    """

    camera: str
    image: np.ndarray
    t_ns: int
    frame_index: int
    shm: tuple[str, int, int, int] | None = None


class FrameRing(Protocol):
    """Per-camera frame buffers a reader fills (see :class:`capture.shm.ShmFrameRing`)."""

    def next_buffer(self) -> np.ndarray | None: ...

    def commit(self, frame: Frame, buffer: np.ndarray | None) -> Frame: ...


class Source(ABC):
    """A camera-like producer of frames.

    Subclasses implement :meth:`open`, :meth:`read` and :meth:`close`. ``read`` blocks until the
    next frame, returns None at the end of a finite stream and raises :class:`SourceError` on a
    failure that a reopen might cure.
    """

    camera: str = ""
    #: live sources (devices, network streams) are reopened after failures; media sources are not
    live: bool = False
    #: :meth:`read_into` writes the pixels into the given buffer (no copy needed after it)
    decodes_into_buffer: bool = False
    #: the rig's :class:`capture.schedule.ReplaySchedule` when replayed in lockstep, else None
    schedule = None

    @abstractmethod
    def open(self) -> None:
        """Acquire the device/file; raise :class:`SourceError` naming the fix."""

    @abstractmethod
    def read(self) -> Frame | None:
        """Next frame (blocking), or None at the end of the stream."""

    def read_into(self, out: np.ndarray) -> Frame | None:
        """Like :meth:`read`, writing the pixels into ``out`` ((H,W,3) uint8, e.g. a shared-memory
        slot) where the source can decode straight into a buffer; the frame's image is then
        ``out`` itself. A frame of another shape, or a source that cannot, returns its own image
        (the caller copies). Default: :meth:`read`."""
        return self.read()

    def close(self) -> None:  # noqa: B027  (an optional hook: most sources have nothing to release)
        """Release resources (idempotent)."""

    def detach(self) -> None:  # noqa: B027  (an optional hook)
        """Its reader is done with it for good (ended, failed or stopped): media sources in
        lockstep tell their :class:`capture.schedule.ReplaySchedule` to stop waiting for them."""

    def __enter__(self) -> "Source":
        self.open()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def frames(self):
        """Iterate frames until the end of the stream (the source must be open)."""
        while (frame := self.read()) is not None:
            yield frame


class Pacer:
    """Media-time clock: frame ``k`` is at ``start_ns + k * 1e9 / fps``.

    Args:
        fps: nominal frame rate (> 0).
        realtime: sleep until each frame's instant (True) or return at once (False).
        start_ns: time of frame 0; None means "when :meth:`start` is called".
        stop: optional event that interrupts a sleep.
    """

    def __init__(
        self, fps: float, *, realtime: bool, start_ns: int | None = None, stop: threading.Event | None = None
    ) -> None:
        if not fps > 0:
            raise ValueError(f"Pacer: fps must be > 0, got {fps}")
        self.fps = float(fps)
        self.realtime = realtime
        self.start_ns = start_ns
        self._stop = stop or threading.Event()

    def start(self) -> None:
        if self.start_ns is None:
            self.start_ns = time.time_ns()

    def t_ns(self, k: int) -> int:
        """Timestamp of frame ``k``."""
        self.start()
        return int(self.start_ns + round(k * 1e9 / self.fps))

    def wait(self, k: int) -> int:
        """Sleep (if realtime) until frame ``k``'s instant and return its timestamp."""
        t = self.t_ns(k)
        if self.realtime:
            delay = (t - time.time_ns()) / 1e9
            if delay > 0:
                self._stop.wait(delay)
        return t


class ThreadedReader:
    """Run a :class:`Source` on a daemon thread; keep only its newest frame.

    Args:
        source: the source (not yet opened; the reader opens it).
        failure_budget: consecutive read failures tolerated before the source is reopened.
        backoff_s: (first, max) reopen delay; it doubles after each failed attempt.
        notify: event set whenever a new frame is available (shared by a rig's readers).
        lossless: wait until the previous frame was taken instead of overwriting it (for media
            read as fast as possible, where every frame should reach the consumer).
        ring: where frames go on the reader thread before they are offered: a
            :class:`capture.shm.ShmFrameRing` (the source decodes into its next slot, or the frame
            is copied there), so each camera's write happens in parallel with the others' grabs.
    """

    def __init__(
        self,
        source: Source,
        *,
        failure_budget: int = 3,
        backoff_s: tuple[float, float] = (0.5, 8.0),
        notify: threading.Event | None = None,
        lossless: bool = False,
        ring: FrameRing | None = None,
    ) -> None:
        self.source = source
        self.camera = source.camera
        self.failure_budget = failure_budget
        self.backoff_s = backoff_s
        self.notify = notify
        self.lossless = lossless
        self.ring = ring
        self.state = "starting"
        self.error = ""
        self.frames_read = 0
        self.overwritten = 0
        self.reopens = 0
        self.read_errors = 0  # reads that raised (undecodable frame, device error): frames lost
        self._latest: Frame | None = None
        self._seq = 0
        self._taken_seq = 0
        self._lock = threading.Lock()
        self._taken = threading.Condition(self._lock)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"reader-{self.camera}", daemon=True)

    # ------------------------------------------------------------------ consumer side
    def start(self) -> "ThreadedReader":
        self._thread.start()
        return self

    def take(self) -> Frame | None:
        """The newest frame not taken before, or None."""
        with self._lock:
            if self._seq == self._taken_seq:
                return None
            self._taken_seq = self._seq
            self._taken.notify_all()
            return self._latest

    @property
    def ended(self) -> bool:
        """True once a finite source reached its end (or the reader was stopped)."""
        return not self._thread.is_alive() and self._thread.ident is not None

    def request_stop(self) -> None:
        """Ask the thread to stop without waiting (see :meth:`stop`)."""
        self._stop.set()
        with self._lock:
            self._taken.notify_all()

    def stop(self, timeout_s: float = 2.0) -> bool:
        """Ask the thread to stop and wait at most ``timeout_s``; True if it has exited."""
        self.request_stop()
        if self._thread.ident is not None:
            self._thread.join(timeout_s)
        alive = self._thread.is_alive()
        if alive:
            log.warning("reader %s did not stop within %.1f s (blocked in read); abandoning it", self.camera, timeout_s)
        return not alive

    def __enter__(self) -> "ThreadedReader":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # ------------------------------------------------------------------ thread
    def _read(self) -> Frame | None:
        if self.ring is None:
            return self.source.read()
        out = self.ring.next_buffer()
        frame = self.source.read() if out is None else self.source.read_into(out)
        return None if frame is None else self.ring.commit(frame, out)

    def _publish(self, frame: Frame) -> None:
        with self._lock:
            if self.lossless:
                while self._seq != self._taken_seq and not self._stop.is_set():
                    self._taken.wait(0.1)
                if self._seq != self._taken_seq:
                    return  # stopping: the previous frame was not taken; this one is not lost to a consumer
            if self._seq != self._taken_seq:
                self.overwritten += 1
            self._latest = frame
            self._seq += 1
            self.frames_read += 1
        if self.notify is not None:
            self.notify.set()

    def _open_with_backoff(self) -> bool:
        delay = self.backoff_s[0]
        while not self._stop.is_set():
            try:
                self.source.open()
                self.state, self.error = "ok", ""
                return True
            except Exception as exc:  # live cameras come back: retry; media that cannot open will not
                if not self.source.live and self.frames_read == 0:
                    self.error = str(exc)
                    self.state = f"error: {exc}"
                    log.error("camera %s: cannot open (%s)", self.camera, exc)
                    return False
                self.error = str(exc)
                self.state = f"retrying in {delay:.1f} s: {exc}"
                log.warning("camera %s: open failed (%s); retrying in %.1f s", self.camera, exc, delay)
                if self._stop.wait(delay):
                    break
                delay = min(2 * delay, self.backoff_s[1])
        return False

    def _run(self) -> None:
        try:
            while self._open_with_backoff():
                failures = 0
                while not self._stop.is_set():
                    try:
                        frame = self._read()
                    except Exception as exc:  # failure budget: tolerate a few, then reopen
                        failures += 1
                        self.read_errors += 1
                        self.error = str(exc)
                        if failures <= self.failure_budget:
                            self.state = f"read error {failures}/{self.failure_budget}: {exc}"
                            continue
                        self.state = f"reopening after {failures} failures: {exc}"
                        log.warning(
                            "camera %s: %d consecutive read failures (%s); reopening", self.camera, failures, exc
                        )
                        break
                    if frame is None:
                        self.state = "ended"
                        return
                    failures = 0
                    if self.state != "ok":
                        self.state = "ok"
                    self._publish(frame)
                self._close_quietly()
                if self._stop.is_set():
                    return
                self.reopens += 1
        finally:
            self._close_quietly()
            self.source.detach()
            if self._stop.is_set() and self.state != "ended" and not self.state.startswith("error"):
                self.state = "stopped"
            if self.notify is not None:
                self.notify.set()

    def _close_quietly(self) -> None:
        try:
            self.source.close()
        except Exception as exc:  # closing a broken device must not kill the thread
            log.debug("camera %s: close failed: %s", self.camera, exc)
