"""CMU Panoptic sequences: ``hdVideos/hd_00_XX.mp4`` or ``hdImgs/00_XX/00_XX_<8-digit>.jpg``.

HD cameras are genlocked, so the frame number *is* the time: frame ``n`` of every camera is
timestamped ``start_ns + n / 29.97 s`` and the views of one frame number form one frameset.
The sequence calibration is ``calibration_<sequence>.json`` in the sequence folder.
"""

from __future__ import annotations

import re
import threading
from pathlib import Path

from capture.source import Frame, Pacer, Source, SourceError

PANOPTIC_HD_FPS = 29.97


def panoptic_calibration_path(seq_dir: str | Path) -> Path:
    """``<seq_dir>/calibration_<name>.json`` (the only ``calibration_*.json`` there)."""
    seq_dir = Path(seq_dir)
    exact = seq_dir / f"calibration_{seq_dir.name}.json"
    if exact.is_file():
        return exact
    found = sorted(seq_dir.glob("calibration_*.json"))
    if len(found) != 1:
        raise SourceError(
            f"{seq_dir}: expected one calibration_*.json in the Panoptic sequence folder, "
            f"found {[p.name for p in found]}"
        )
    return found[0]


def panoptic_hd_cameras(seq_dir: str | Path) -> list[str]:
    """HD camera names available in a sequence folder (from hdImgs/ or hdVideos/)."""
    seq_dir = Path(seq_dir)
    names = {p.name for p in (seq_dir / "hdImgs").glob("00_*") if p.is_dir()}
    names |= {p.stem[3:] for p in (seq_dir / "hdVideos").glob("hd_00_*.mp4")}
    return sorted(names)


def panoptic_first_frame(seq_dir: str | Path, cameras: list[str]) -> int:
    """Smallest HD frame number present for any of ``cameras`` (0 for videos)."""
    numbers = []
    for cam in cameras:
        img_dir = Path(seq_dir) / "hdImgs" / cam
        if img_dir.is_dir():
            numbers += [int(p.stem[-8:]) for p in img_dir.glob(f"{cam}_" + "[0-9]" * 8 + ".*")]
    return min(numbers) if numbers else 0


class PanopticSource(Source):
    """One HD camera of a Panoptic sequence.

    Args:
        camera: HD camera name, e.g. ``"00_03"``.
        seq_dir: the sequence folder.
        fps: timeline rate (29.97 for HD).
        first_frame, last_frame: frame-number range (inclusive; None: to the end). Frame
            ``first_frame`` is at ``start_ns``: give every camera of a rig the same value
            (see :func:`panoptic_first_frame`).
        loop, realtime, start_ns, stop, schedule: as for
            :class:`capture.sources.video.VideoFileSource` (with a schedule, timeline index ``k``
            is frame number ``first_frame + k``; skipped images are not read).
    """

    def __init__(
        self,
        camera: str,
        seq_dir: str | Path,
        *,
        fps: float = PANOPTIC_HD_FPS,
        first_frame: int = 0,
        last_frame: int | None = None,
        loop: bool = False,
        realtime: bool = True,
        start_ns: int | None = None,
        stop: threading.Event | None = None,
        schedule=None,
    ) -> None:
        self.camera = camera
        self.schedule = schedule
        self.seq_dir = Path(seq_dir)
        self.first_frame = first_frame
        self.last_frame = last_frame
        self.loop = loop
        self._pacer = (
            Pacer(fps, realtime=realtime, start_ns=start_ns, stop=stop) if schedule is None else schedule.pacer
        )
        self._k = 0  # next timeline index (scheduled reads)
        self._images: list[tuple[int, Path]] = []
        self._cap = None
        self._pos = 0  # images: index into the list; video: next frame number
        self._laps = 0
        self._span = 0

    def open(self) -> None:
        img_dir = self.seq_dir / "hdImgs" / self.camera
        video = self.seq_dir / "hdVideos" / f"hd_{self.camera}.mp4"
        pattern = re.compile(rf"^{re.escape(self.camera)}_(\d{{8}})\.(jpg|png)$")
        if img_dir.is_dir():
            frames = sorted((int(m.group(1)), p) for p in img_dir.iterdir() if (m := pattern.match(p.name)))
            self._images = [
                (n, p) for n, p in frames if n >= self.first_frame and (self.last_frame is None or n <= self.last_frame)
            ]
            if not self._images:
                raise SourceError(
                    f"camera '{self.camera}': no frames {self.camera}_<8 digits>.jpg in {img_dir} "
                    f"within [{self.first_frame}, {self.last_frame}]"
                )
            self._span = self._images[-1][0] - self.first_frame + 1
        elif video.is_file():
            import cv2

            self._cap = cv2.VideoCapture(str(video))
            if not self._cap.isOpened():
                raise SourceError(f"camera '{self.camera}': OpenCV cannot decode {video}")
            self._cap.set(cv2.CAP_PROP_POS_FRAMES, self.first_frame)
            self._pos = self.first_frame
        else:
            raise SourceError(
                f"camera '{self.camera}': neither {img_dir} nor {video} exists; available HD "
                f"cameras: {panoptic_hd_cameras(self.seq_dir)}"
            )

    def read(self) -> Frame | None:
        if self.schedule is not None and (self._images or self._cap is not None):
            return self._read_scheduled()
        if self._images:
            return self._read_image()
        if self._cap is None:
            raise SourceError(f"camera '{self.camera}': read before open")
        return self._read_video()

    def _emit(self, image, number: int) -> Frame:
        timeline = number - self.first_frame + self._laps * self._span  # loops keep time increasing
        return Frame(self.camera, image, self._pacer.wait(timeline), number)

    def _read_image(self) -> Frame | None:
        import cv2

        if self._pos >= len(self._images):
            if not self.loop:
                return None
            self._pos, self._laps = 0, self._laps + 1
        number, path = self._images[self._pos]
        self._pos += 1
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if image is None:
            raise SourceError(f"camera '{self.camera}': cannot decode {path}")
        return self._emit(image, number)

    def _read_video(self) -> Frame | None:
        import cv2

        at_end = self.last_frame is not None and self._pos > self.last_frame
        ok, image = (False, None) if at_end else self._cap.read()
        if not ok:
            if not self.loop or self._pos == self.first_frame:
                return None
            self._span, self._laps = self._pos - self.first_frame, self._laps + 1
            self._cap.set(cv2.CAP_PROP_POS_FRAMES, self.first_frame)
            self._pos = self.first_frame
            ok, image = self._cap.read()
            if not ok:
                return None
        self._pos += 1
        return self._emit(image, self._pos - 1)

    def _read_scheduled(self) -> Frame | None:
        import bisect

        import cv2

        k = self.schedule.next_index(self.camera, self._k)
        if k is None:
            return None
        number = self.first_frame + self.schedule.position(k)
        if self.last_frame is not None and number > self.last_frame:
            return None
        if self._images:
            i = bisect.bisect_left(self._images, number, key=lambda item: item[0])
            if i >= len(self._images) or self._images[i][0] != number:
                if i >= len(self._images):
                    return None
                self._k = k + 1
                raise SourceError(f"camera '{self.camera}': frame {number} missing in {self.seq_dir / 'hdImgs'}")
            self._k = k + 1
            image = cv2.imread(str(self._images[i][1]), cv2.IMREAD_COLOR)
            if image is None:
                raise SourceError(f"camera '{self.camera}': cannot decode {self._images[i][1]}")
        else:
            if number < self._pos:
                self._cap.set(cv2.CAP_PROP_POS_FRAMES, self.first_frame)
                self._pos = self.first_frame
            while self._pos < number:
                if not self._cap.grab():
                    return None
                self._pos += 1
            ok, image = self._cap.read()
            if not ok:
                return None
            self._pos += 1
            self._k = k + 1
        return Frame(self.camera, image, self.schedule.wait(self.camera), number)

    def detach(self) -> None:
        if self.schedule is not None:
            self.schedule.retire(self.camera)

    def close(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None
