"""A folder of still images (sorted by name) played as a video."""

from __future__ import annotations

import threading
from pathlib import Path

from capture.source import Frame, Pacer, Source, SourceError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff")


class ImageFolderSource(Source):
    """Images of ``folder`` in name order, frame ``k`` at ``start_ns + k / fps``.

    Args:
        camera: camera name.
        folder: directory of images (jpg/png/bmp/tif).
        fps: frame rate of the timeline.
        loop, realtime, start_ns, stop, schedule: as for
            :class:`capture.sources.video.VideoFileSource` (skipped images are not read at all).
    """

    def __init__(
        self,
        camera: str,
        folder: str | Path,
        *,
        fps: float = 30.0,
        loop: bool = False,
        realtime: bool = True,
        start_ns: int | None = None,
        stop: threading.Event | None = None,
        schedule=None,
    ) -> None:
        self.camera = camera
        self.folder = Path(folder)
        self.loop = loop
        self.schedule = schedule
        self._pacer = (
            Pacer(fps, realtime=realtime, start_ns=start_ns, stop=stop) if schedule is None else schedule.pacer
        )
        self._files: list[Path] = []
        self._k = 0

    def open(self) -> None:
        if not self.folder.is_dir():
            raise SourceError(f"camera '{self.camera}': image folder {self.folder} not found (check source.uri)")
        self._files = sorted(p for p in self.folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not self._files:
            raise SourceError(f"camera '{self.camera}': no {IMAGE_SUFFIXES} images in {self.folder}")

    def read(self) -> Frame | None:
        import cv2

        if not self._files:
            raise SourceError(f"camera '{self.camera}': read before open")
        k = self._k if self.schedule is None else self.schedule.next_index(self.camera, self._k)
        if k is None or (k >= len(self._files) and not self.loop):
            return None
        pos = k % len(self._files) if self.schedule is None else self.schedule.position(k)
        if pos >= len(self._files):
            return None
        path = self._files[pos]
        self._k = k + 1
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if image is None:
            raise SourceError(f"camera '{self.camera}': cannot decode {path}")
        t_ns = self._pacer.wait(k) if self.schedule is None else self.schedule.wait(self.camera)
        return Frame(self.camera, image, t_ns, k)

    def detach(self) -> None:
        if self.schedule is not None:
            self.schedule.retire(self.camera)
