"""Video files: paced at their frame rate (or as fast as possible), optionally looping."""

from __future__ import annotations

import threading
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
    """

    decodes_into_buffer = True

    def __init__(self, camera: str, path: str | Path, *, fps: float | None = None, loop: bool = False,
                 realtime: bool = True, start_ns: int | None = None, stop: threading.Event | None = None) -> None:
        self.camera = camera
        self.path = Path(path)
        self.fps = fps
        self.loop = loop
        self.realtime = realtime
        self.start_ns = start_ns
        self._stop = stop
        self._cap = None
        self._pacer: Pacer | None = None
        self._k = 0

    def open(self) -> None:
        import cv2

        self.close()
        if not self.path.is_file():
            raise SourceError(f"camera '{self.camera}': video file {self.path} not found (check source.uri)")
        cap = cv2.VideoCapture(str(self.path))
        if not cap.isOpened():
            cap.release()
            raise SourceError(f"camera '{self.camera}': OpenCV cannot decode {self.path} (unsupported codec?)")
        self._cap = cap
        fps = self.fps or cap.get(cv2.CAP_PROP_FPS) or 30.0
        if self._pacer is None:  # a reopen keeps the timeline
            self._pacer = Pacer(fps, realtime=self.realtime, start_ns=self.start_ns, stop=self._stop)

    def read(self) -> Frame | None:
        return self.read_into(None)

    def read_into(self, out: np.ndarray | None) -> Frame | None:
        """Next frame, decoded into ``out`` when its shape matches the video's."""
        if self._cap is None:
            raise SourceError(f"camera '{self.camera}': read before open")
        ok, image = self._decode(out)
        if not ok and self.loop and self._k > 0:
            self.open()
            ok, image = self._decode(out)
        if not ok:
            return None
        t_ns = self._pacer.wait(self._k)
        self._k += 1
        return Frame(self.camera, image, t_ns, self._k - 1)

    def _decode(self, out: np.ndarray | None):
        return self._cap.read() if out is None else self._cap.read(out)

    def close(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None
