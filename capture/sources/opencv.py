"""OpenCV capture devices and network streams (RTSP/HTTP): live sources, timestamped at grab."""

from __future__ import annotations

import time

import numpy as np

from capture.source import Frame, Source, SourceError


class OpenCVSource(Source):
    """A V4L2/USB camera (``target`` an int index or a device path) or an RTSP/HTTP URL.

    Args:
        camera: camera name.
        target: device index, device path or stream URL.
        fps: frame rate to request (None: the device's own).
        width, height: capture size to request (None: the device's own).
        buffer_frames: driver-side buffer; 1 keeps latency low (latest frame, not a backlog).
    """

    live = True
    decodes_into_buffer = True

    def __init__(
        self,
        camera: str,
        target: int | str,
        *,
        fps: float | None = None,
        width: int | None = None,
        height: int | None = None,
        buffer_frames: int = 1,
    ) -> None:
        self.camera = camera
        self.target = target
        self.fps = fps
        self.size = (width, height) if width else None
        self.buffer_frames = buffer_frames
        self._cap = None
        self._index = 0

    def open(self) -> None:
        import cv2

        self.close()
        cap = cv2.VideoCapture(self.target)
        if not cap.isOpened():
            cap.release()
            raise SourceError(
                f"camera '{self.camera}': cannot open {self.target!r} (check that the device "
                "is plugged in / the URL is reachable and that no other program holds it)"
            )
        cap.set(cv2.CAP_PROP_BUFFERSIZE, self.buffer_frames)
        if self.fps:
            cap.set(cv2.CAP_PROP_FPS, float(self.fps))
        if self.size:
            cap.set(cv2.CAP_PROP_FRAME_WIDTH, self.size[0])
            cap.set(cv2.CAP_PROP_FRAME_HEIGHT, self.size[1])
        self._cap = cap

    def read(self) -> Frame | None:
        return self.read_into(None)

    def read_into(self, out: np.ndarray | None) -> Frame | None:
        """Grab, timestamp, then decode (into ``out`` when its shape matches the frame's)."""
        if self._cap is None:
            raise SourceError(f"camera '{self.camera}': read before open")
        if not self._cap.grab():
            raise SourceError(f"camera '{self.camera}': grab failed on {self.target!r} (device gone?)")
        t_ns = time.time_ns()  # at grab, before the (slower) decode in retrieve
        ok, image = self._cap.retrieve() if out is None else self._cap.retrieve(out)
        if not ok or image is None:
            raise SourceError(f"camera '{self.camera}': retrieve failed on {self.target!r}")
        self._index += 1
        return Frame(self.camera, image, t_ns, self._index - 1)

    def close(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None
