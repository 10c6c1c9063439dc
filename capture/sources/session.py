"""A camera of a recorded session (see :mod:`capture.session`)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from capture.session import SessionReader
from capture.source import Frame, Source, SourceError


class SessionSource(Source):
    """Replays one camera of a session with its recorded timestamps.

    Args:
        camera: camera name (must be in the session).
        session_dir: the session folder.
        realtime: keep the recorded spacing between frames (False: as fast as possible).
        retime: shift timestamps so the first frame is at ``start_ns`` (needed when the frames
            meet live ones or a wall-clock deadline); False keeps the original timestamps.
        start_ns: wall time of the first frame for pacing/retiming (share it across a rig).
        loop: start again at the end (requires ``retime``: time must keep increasing).
        stop: event that interrupts pacing sleeps.
    """

    def __init__(
        self,
        camera: str,
        session_dir: str | Path,
        *,
        realtime: bool = True,
        retime: bool = False,
        start_ns: int | None = None,
        loop: bool = False,
        stop: threading.Event | None = None,
    ) -> None:
        if loop and not retime:
            raise SourceError(f"camera '{camera}': looping a session needs retime=True (timestamps must increase)")
        self.camera = camera
        self.session_dir = Path(session_dir)
        self.realtime = realtime
        self.retime = retime
        self.start_ns = start_ns
        self.loop = loop
        self._stop = stop or threading.Event()
        self._reader: SessionReader | None = None
        self._views = []
        self._pos = 0
        self._lap_ns = 0

    def open(self) -> None:
        self.close()
        self._reader = SessionReader(self.session_dir)
        if self.camera not in self._reader.cameras:
            raise SourceError(
                f"camera '{self.camera}': not in session {self.session_dir} (cameras: {list(self._reader.cameras)})"
            )
        self._views = list(self._reader.views_of(self.camera))
        if not self._views:
            raise SourceError(f"camera '{self.camera}': session {self.session_dir} holds no frames of it")
        if self.start_ns is None:
            self.start_ns = time.time_ns()
        self._t0 = self._reader.sets[0].t_ref_ns
        span = self._reader.sets[-1].t_ref_ns - self._t0
        self._period_ns = span // max(len(self._reader.sets) - 1, 1)
        self._span_ns = span + self._period_ns

    def read(self) -> Frame | None:
        if self._reader is None:
            raise SourceError(f"camera '{self.camera}': read before open")
        if self._pos >= len(self._views):
            if not self.loop:
                return None
            self._pos, self._lap_ns = 0, self._lap_ns + self._span_ns
        view = self._views[self._pos]
        self._pos += 1
        offset_ns = view.t_ns - self._t0 + self._lap_ns
        if self.realtime:
            delay = (self.start_ns + offset_ns - time.time_ns()) / 1e9
            if delay > 0:
                self._stop.wait(delay)
        t_ns = self.start_ns + offset_ns if self.retime else view.t_ns
        return Frame(self.camera, self._reader.image(view), t_ns, view.frame_index)

    def close(self) -> None:
        if self._reader is not None:
            self._reader.close()
            self._reader = None
