"""Pair a folder of still images into synchronised framesets (one image per camera and frame).

Layouts accepted (``cameras`` are the calibration's camera names):

* **one frameset**: ``DIR/<camera>.<ext>`` per camera;
* **per-camera folders**: ``DIR/<camera>/<file>.<ext>``; the frame of a file is the number in
  its name once a leading camera name is removed (the last group of digits), so
  ``00_03/00_03_00000012.jpg`` (Panoptic, ``selfpose3d synth``), ``cam1/000012.png``
  (``selfpose3d calibrate board --render-rig``) and ``Camera1/img_000012.png`` (Shelf) all are
  frame 12 of their camera. A name without digits is its own frame key (the stem);
* **Panoptic sequence**: ``DIR/hdImgs/<camera>/...`` (a Panoptic or ``synth`` sequence folder),
  or ``DIR/<sequence>/hdImgs/<camera>/...`` with exactly one sequence (``synth --out DIR``).

A frameset lacking one or more cameras is reported by :meth:`ImagePairing.incomplete`; what to do
with it is the caller's decision (``selfpose3d predict`` refuses unless ``--allow-missing-views``).

JPEG files are checked for truncation without decoding (:func:`jpeg_truncated`): OpenCV decodes
a truncated JPEG into a half-grey image with only a libjpeg warning on stderr.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from capture.source import SourceError

IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff")
FrameKey = int | str
_LAST_DIGITS = re.compile(r"(\d+)(?!.*\d)")
_SEPARATORS = "_-. "


@dataclass(frozen=True)
class ImageFrameset:
    """One frame: the image of each camera (None where the camera has no file)."""

    frame: FrameKey
    paths: tuple[Path | None, ...]

    @property
    def complete(self) -> bool:
        return all(p is not None for p in self.paths)


@dataclass(frozen=True)
class ImagePairing:
    """Framesets of an image folder, in frame order.

    Attributes:
        root: the folder holding the camera folders (or the images, for one frameset).
        layout: ``"single"`` (``<camera>.<ext>``) or ``"per-camera"`` (``<camera>/<frame>``).
        cameras: camera names, the order of every frameset's ``paths``.
        framesets: one per frame key found for any camera.
    """

    root: Path
    layout: str
    cameras: tuple[str, ...]
    framesets: tuple[ImageFrameset, ...]

    def missing(self, frameset: ImageFrameset) -> list[str]:
        """Names of the cameras without an image in ``frameset``."""
        return [c for c, p in zip(self.cameras, frameset.paths) if p is None]

    def incomplete(self) -> list[ImageFrameset]:
        return [f for f in self.framesets if not f.complete]


def frame_key(stem: str, camera: str) -> FrameKey:
    """Frame of a file stem in a camera's folder: the last number after a leading camera name.

    ``frame_key("00_03_00000012", "00_03") == 12``; ``frame_key("img_000300", "Camera1") == 300``;
    a stem without digits (after the camera prefix) is returned as is.
    """
    rest = stem[len(camera) :].lstrip(_SEPARATORS) if stem.startswith(camera) else stem
    match = _LAST_DIGITS.search(rest)
    return int(match.group(1)) if match else stem


def _sort_key(key: FrameKey) -> tuple[int, int | str]:
    return (0, key) if isinstance(key, int) else (1, key)


def _images_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTS)


def _find_single(folder: Path, camera: str) -> Path | None:
    for p in _images_in(folder):
        if p.stem == camera:
            return p
    return None


def _resolve_root(folder: Path, cameras: Sequence[str]) -> Path:
    """The folder holding ``<camera>/`` folders or ``<camera>.<ext>`` files (Panoptic levels skipped)."""
    if (folder / "hdImgs").is_dir():
        return folder / "hdImgs"
    if any((folder / c).is_dir() for c in cameras) or any(_find_single(folder, c) for c in cameras):
        return folder
    sequences = sorted(p for p in folder.iterdir() if (p / "hdImgs").is_dir())
    if len(sequences) == 1:
        return sequences[0] / "hdImgs"
    if len(sequences) > 1:
        raise SourceError(
            f"--images {folder}: holds {len(sequences)} Panoptic sequences "
            f"{[p.name for p in sequences]}; pass one of them"
        )
    subdirs = sorted(p.name for p in folder.iterdir() if p.is_dir())
    raise SourceError(
        f"--images {folder}: no image folder or file named after the cameras {list(cameras)} "
        f"(expected <camera>.jpg, <camera>/<frame>.jpg or hdImgs/<camera>/<camera>_<frame>.jpg); "
        f"sub-folders found: {subdirs[:20]}"
    )


def pair_image_folder(folder: str | Path, cameras: Sequence[str]) -> ImagePairing:
    """Pair the images of ``folder`` into framesets for ``cameras`` (see the module docstring).

    Raises:
        SourceError: not a folder, no layout recognised, several Panoptic sequences, or two files
            of one camera with the same frame number.
    """
    folder = Path(folder)
    cameras = tuple(cameras)
    if not folder.is_dir():
        raise SourceError(f"--images {folder}: not a folder")
    root = _resolve_root(folder, cameras)
    if not any((root / c).is_dir() for c in cameras):
        paths = tuple(_find_single(root, c) for c in cameras)
        return ImagePairing(root, "single", cameras, (ImageFrameset(root.name, paths),))
    per_camera: list[dict[FrameKey, Path]] = []
    for cam in cameras:
        files: dict[FrameKey, Path] = {}
        if (root / cam).is_dir():
            for path in _images_in(root / cam):
                key = frame_key(path.stem, cam)
                if key in files:
                    raise SourceError(
                        f"--images {root / cam}: {files[key].name} and {path.name} are both frame "
                        f"{key}; keep one image per frame in a camera folder"
                    )
                files[key] = path
        per_camera.append(files)
    keys = sorted(set().union(*per_camera), key=_sort_key)
    if not keys:
        raise SourceError(f"--images {root}: the camera folders hold no {IMAGE_EXTS} images")
    framesets = tuple(ImageFrameset(k, tuple(files.get(k) for files in per_camera)) for k in keys)
    return ImagePairing(root, "per-camera", cameras, framesets)


def jpeg_truncated(data: bytes) -> bool:
    """True when JPEG bytes lack the end-of-image marker after the last start-of-scan.

    Entropy-coded data never holds an unstuffed ``FF D9``/``FF DA``, so an image whose last scan
    is not followed by ``FF D9`` was cut short (an embedded EXIF thumbnail's end marker precedes
    the main scan, and bytes appended after the end marker do not matter).
    """
    sos = data.rfind(b"\xff\xda")
    return sos < 0 or data.find(b"\xff\xd9", sos) < 0


def _problem(path: Path, data: bytes) -> str | None:
    if not data:
        return "is empty"
    suffix = path.suffix.lower()
    if suffix in (".jpg", ".jpeg") and data[:2] == b"\xff\xd8" and jpeg_truncated(data):
        return "is a truncated JPEG (no end-of-image marker after the last scan)"
    if suffix == ".png" and data[:8] == b"\x89PNG\r\n\x1a\n" and b"IEND" not in data[-12:]:
        return "is a truncated PNG (no IEND chunk at the end)"
    return None


def decode_image(path: Path) -> tuple[np.ndarray | None, str | None]:
    """(BGR uint8 (H,W,3) image, None) or (None, why it cannot be used) for one image file.

    Truncated JPEG/PNG files are refused before decoding (OpenCV would return a partly grey
    image with only a warning); anything OpenCV cannot decode is refused too.
    """
    import cv2

    try:
        data = path.read_bytes()
    except OSError as exc:
        return None, f"cannot be read ({exc.strerror or exc})"
    problem = _problem(path, data)
    if problem:
        return None, problem
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        return None, "cannot be decoded as an image"
    return image, None
