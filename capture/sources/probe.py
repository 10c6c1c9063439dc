"""Check a rig's media sources before anything starts: exists, opens, frame size vs calibration.

Video files, image folders and Panoptic sequences know their frame size, rate and length before
the first frame is needed; :func:`probe_media` reads them (one decoded frame each) and
:func:`check_media_sizes` compares the size with the camera's calibration, so a wrong path or a
1080-wide video under a 1088-wide calibration is one line at start-up instead of a capture
traceback or a run whose every frameset is dropped.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from capture.source import SourceError

MEDIA_KINDS = ("file", "images", "panoptic")
#: largest relative aspect-ratio difference ``--resize`` accepts (a few encoder padding rows)
RESIZE_MAX_ASPECT_CHANGE = 0.02


@dataclass(frozen=True)
class MediaInfo:
    """What a media source holds.

    Attributes:
        width, height: frame size in px.
        fps: the media's own frame rate (None: it has none, e.g. an image folder).
        frames: number of frames (None if unknown).
    """

    width: int
    height: int
    fps: float | None
    frames: int | None


def _read_image_size(path: Path, camera: str) -> tuple[int, int]:
    import cv2

    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise SourceError(f"camera '{camera}': cannot decode {path}")
    return image.shape[1], image.shape[0]


def _probe_video(path: Path, camera: str) -> MediaInfo:
    import cv2

    if not path.is_file():
        raise SourceError(
            f"camera '{camera}': video file {path} not found (check source.uri; paths in a rig "
            "file are relative to the rig file's folder)"
        )
    cap = cv2.VideoCapture(str(path))
    try:
        if not cap.isOpened():
            raise SourceError(f"camera '{camera}': OpenCV cannot open {path} (not a video, or an unsupported codec)")
        ok, image = cap.read()
        if not ok or image is None:
            raise SourceError(
                f"camera '{camera}': OpenCV cannot decode the first frame of {path} "
                "(unsupported codec or a damaged file)"
            )
        fps = cap.get(cv2.CAP_PROP_FPS) or None
        frames = int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) or None
        return MediaInfo(image.shape[1], image.shape[0], fps, frames)
    finally:
        cap.release()


def probe_media(camera: str, kind: str, uri: str) -> MediaInfo | None:
    """Size/rate/length of a ``file``, ``images`` or ``panoptic`` source (None for other kinds).

    Raises:
        SourceError: the path does not exist, cannot be opened, or its first frame cannot be decoded.
    """
    from capture.sources.images import IMAGE_SUFFIXES

    path = Path(uri)
    if kind == "file":
        return _probe_video(path, camera)
    if kind == "images":
        if not path.is_dir():
            raise SourceError(f"camera '{camera}': image folder {path} not found (check source.uri)")
        files = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise SourceError(f"camera '{camera}': no {IMAGE_SUFFIXES} images in {path}")
        return MediaInfo(*_read_image_size(files[0], camera), None, len(files))
    if kind == "panoptic":
        img_dir = path / "hdImgs" / camera
        video = path / "hdVideos" / f"hd_{camera}.mp4"
        if img_dir.is_dir():
            pattern = re.compile(rf"^{re.escape(camera)}_(\d{{8}})\.(jpg|png)$")
            files = sorted(p for p in img_dir.iterdir() if pattern.match(p.name))
            if not files:
                raise SourceError(f"camera '{camera}': no frames {camera}_<8 digits>.jpg in {img_dir}")
            numbers = [int(p.stem[-8:]) for p in files]
            return MediaInfo(*_read_image_size(files[0], camera), None, numbers[-1] - numbers[0] + 1)
        if video.is_file():
            return _probe_video(video, camera)
        raise SourceError(f"camera '{camera}': neither {img_dir} nor {video} exists")
    return None


def size_mismatch(camera: str, info: MediaInfo, calib_wh: tuple[int, int]) -> str | None:
    """One line naming the fix when the media's frame size differs from the calibration's, else None."""
    w, h = calib_wh
    if (info.width, info.height) == (w, h):
        return None
    return (
        f"{camera}: frame {info.width}×{info.height} but calibration says {w}×{h}: fix the calibration's "
        "image size or pass --resize (scales the frames to the calibration's size)"
    )


def resize_allowed(info: MediaInfo, calib_wh: tuple[int, int]) -> bool:
    """True when stretching the frames to the calibration size changes the aspect ratio by at most
    :data:`RESIZE_MAX_ASPECT_CHANGE` (the same view, e.g. 1080 vs 1088 px of encoder padding)."""
    w, h = calib_wh
    return abs((info.width / info.height) / (w / h) - 1.0) <= RESIZE_MAX_ASPECT_CHANGE


def check_media(rig, cameras=None, *, resize: bool = False) -> dict[str, MediaInfo]:
    """Probe every media camera of ``rig`` (or of ``cameras``) and check its size.

    Args:
        rig: a loaded ``calib.rig_config.Rig``.
        cameras: subset of camera names (None: all).
        resize: frames will be scaled to the calibration size (``--resize``): a size mismatch is
            then accepted when the aspect ratio matches.
    Returns:
        camera -> :class:`MediaInfo` for the media cameras.
    Raises:
        SourceError: naming every camera that is missing, unreadable or of the wrong size.
    """
    infos, problems = {}, []
    for name in cameras or rig.names:
        cfg = rig.source(name)
        if cfg.kind not in MEDIA_KINDS:
            continue
        try:
            info = probe_media(name, cfg.kind, cfg.uri)
        except SourceError as exc:
            problems.append(str(exc))
            continue
        infos[name] = info
        cam = rig.cameras[name]
        bad = size_mismatch(name, info, (cam.width, cam.height))
        if bad and resize and not resize_allowed(info, (cam.width, cam.height)):
            problems.append(
                f"{name}: frame {info.width}×{info.height} and calibration {cam.width}×{cam.height} "
                "differ in aspect ratio: --resize would distort the view; fix the calibration"
            )
        elif bad and not resize:
            problems.append(bad)
    if problems:
        raise SourceError("; ".join(problems))
    return infos
