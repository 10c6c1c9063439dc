"""Video files: paced at their frame rate (or as fast as possible), optionally looping; in a rig,
in lockstep with the other media cameras (:class:`capture.schedule.ReplaySchedule`)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np

from capture.source import Frame, Pacer, Source, SourceError


class VideoFileSource(Source):
    """Frames of a video file, timestamped in media time (``start_ns + k / fps``).

    Args:
        camera: camera name.
        path: the video file.
        fps: frame rate (None: the file's, 30 if it has none).
        loop: restart at the end (frame indices and timestamps keep increasing).
        realtime: sleep until each frame's instant; False: as fast as possible.
        start_ns: time of frame 0 (share one across a rig so its files line up); None: at open.
        stop: event that interrupts pacing sleeps.
        schedule: the rig's shared :class:`capture.schedule.ReplaySchedule`: the frame index to
            deliver comes from it (frames in between are grabbed without conversion: skipped),
            its pacer times them and its lap length wraps them; ``fps``/``realtime``/``start_ns``
            are then the schedule's.
        decode_threads: FFmpeg decoder threads (0: OpenCV's default, one per core). A rig replays
            its cameras on parallel reader threads, so one decoder thread each does the same work
            with less CPU (1088x1920 H.264: 4.8 against 6.4 ms of CPU per frame, see
            docs/real_route.md).
    """

    decodes_into_buffer = True

    def __init__(
        self,
        camera: str,
        path: str | Path,
        *,
        fps: float | None = None,
        loop: bool = False,
        realtime: bool = True,
        start_ns: int | None = None,
        stop: threading.Event | None = None,
        schedule=None,
        decode_threads: int = 0,
    ) -> None:
        self.camera = camera
        self.decode_threads = int(decode_threads)
        self.path = Path(path)
        self.fps = fps
        self.loop = loop
        self.realtime = realtime
        self.start_ns = start_ns
        self._stop = stop
        self._cap = None
        self._pacer: Pacer | None = None if schedule is None else schedule.pacer
        self.schedule = schedule
        self._k = 0  # next timeline index
        self._pos = 0  # next frame of the file

    def open(self) -> None:
        import cv2

        self.close()
        if not self.path.is_file():
            raise SourceError(f"camera '{self.camera}': video file {self.path} not found (check source.uri)")
        params = [cv2.CAP_PROP_N_THREADS, self.decode_threads] if self.decode_threads > 0 else []
        cap = cv2.VideoCapture(str(self.path), cv2.CAP_ANY, params)
        if not cap.isOpened():
            cap.release()
            raise SourceError(f"camera '{self.camera}': OpenCV cannot decode {self.path} (unsupported codec?)")
        self._cap = cap
        self._pos = 0
        fps = self.fps or cap.get(cv2.CAP_PROP_FPS) or 30.0
        if self._pacer is None:  # a reopen keeps the timeline
            self._pacer = Pacer(fps, realtime=self.realtime, start_ns=self.start_ns, stop=self._stop)

    def read(self) -> Frame | None:
        return self.read_into(None)

    def read_into(self, out: np.ndarray | None) -> Frame | None:
        """Next frame, decoded into ``out`` when its shape matches the video's."""
        if self._cap is None:
            raise SourceError(f"camera '{self.camera}': read before open")
        if self.schedule is not None:
            return self._read_scheduled(out)
        ok, image = self._decode(out)
        if not ok and self.loop and self._k > 0:
            self.open()
            ok, image = self._decode(out)
        if not ok:
            return None
        t_ns = self._pacer.wait(self._k)
        self._k += 1
        return Frame(self.camera, image, t_ns, self._k - 1)

    def _read_scheduled(self, out: np.ndarray | None) -> Frame | None:
        k = self.schedule.next_index(self.camera, self._k)
        if k is None:
            return None
        pos = self.schedule.position(k)
        t0 = time.perf_counter()
        if pos < self._pos:  # next lap: back to the start of the file
            self.open()
        frames = max(1, pos - self._pos + 1)
        while self._pos < pos:  # skipped frames: demuxed and decoded, not converted or copied
            if not self._cap.grab():
                return None
            self._pos += 1
        ok, image = self._decode(out)
        if not ok:
            return None
        self.schedule.note_frame_s(self.camera, (time.perf_counter() - t0) / frames)
        self._k = k + 1
        return Frame(self.camera, image, self.schedule.wait(self.camera), k)

    def _decode(self, out: np.ndarray | None):
        ok, image = self._cap.read() if out is None else self._cap.read(out)
        self._pos += int(ok)
        return ok, image

    def detach(self) -> None:
        if self.schedule is not None:
            self.schedule.retire(self.camera)

    def close(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None
