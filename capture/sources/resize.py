"""A source whose frames are scaled to its camera's calibration size (``--resize``)."""

from __future__ import annotations

import numpy as np

from capture.source import Frame, Source


class ResizedSource(Source):
    """Wraps ``source``; every frame of another size is resized to ``(width, height)``.

    For media whose frames differ from the calibration by a few rows of encoder padding (e.g.
    1080 vs 1088 px): the stretch is below 1 %, the same as scaling the intrinsics. Frames
    already at that size pass through untouched.
    """

    def __init__(self, source: Source, width: int, height: int) -> None:
        self.source = source
        self.camera = source.camera
        self.live = source.live
        self.schedule = source.schedule
        self.size = (int(width), int(height))
        self.decodes_into_buffer = True  # the resize writes into the caller's buffer

    def open(self) -> None:
        self.source.open()

    def _fit(self, frame: Frame | None, out: np.ndarray | None) -> Frame | None:
        import cv2

        if frame is None or frame.image.shape[1::-1] == self.size:
            return frame
        if out is not None and out.shape[1::-1] == self.size:
            image = cv2.resize(frame.image, self.size, dst=out, interpolation=cv2.INTER_LINEAR)
        else:
            image = cv2.resize(frame.image, self.size, interpolation=cv2.INTER_LINEAR)
        return Frame(frame.camera, image, frame.t_ns, frame.frame_index)

    def read(self) -> Frame | None:
        return self._fit(self.source.read(), None)

    def read_into(self, out: np.ndarray) -> Frame | None:
        return self._fit(self.source.read(), out)

    def close(self) -> None:
        self.source.close()

    def detach(self) -> None:
        self.source.detach()
