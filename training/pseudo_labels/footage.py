"""Offline frames of a user's footage, whatever its layout: the input side of pseudo labels and training.

``open_footage(PATH)`` accepts
* a rig YAML whose cameras have ``file`` / ``images`` / ``panoptic`` / ``session`` sources;
* a recorded session folder (``selfpose3d record``);
* a folder of video files (one per camera, camera = file stem: Pose2Sim's ``videos/``);
* a folder of images, searched recursively (a Panoptic tree ``hdImgs/<cam>/<cam>_<frame>.jpg``, an
  image folder per camera, ...): (sequence, frame, camera) come from the path as
  :func:`training.pseudo_labels.importers.image_key` parses it.
Frames are yielded camera by camera (videos decode sequentially; skipped frames are grabbed, not
decoded). A frame that cannot be decoded is yielded with ``image=None`` so callers name and count it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from calib.intrinsics import VIDEO_EXTENSIONS
from capture.image_framesets import IMAGE_EXTS, decode_image
from training.errors import DatasetError


@dataclass
class FootageFrame:
    """One camera's image of one frame (``image`` is None when it does not decode: ``problem`` says why)."""

    sequence: str
    frame: int
    camera: str
    source: str  # file path (and frame) for messages and provenance
    image: np.ndarray | None
    problem: str | None = None


@dataclass(frozen=True)
class _Stream:
    """One camera's frames: a video file, a list of (frame, image path), or a session camera."""

    sequence: str
    camera: str
    video: Path | None = None
    images: tuple[tuple[int, Path], ...] = ()
    session: Path | None = None


class Footage:
    """The streams of a footage input; iterate with :meth:`frames`.

    Attributes:
        path: what was opened.
        streams: one per camera.
    """

    def __init__(self, path: Path, streams: list[_Stream]):
        if not streams:
            raise DatasetError(
                f"{path}: no footage found (expected a rig YAML, a session folder, a folder of "
                f"videos {VIDEO_EXTENSIONS} or of images {IMAGE_EXTS})"
            )
        self.path = path
        self.streams = streams

    @property
    def cameras(self) -> list[str]:
        return [s.camera for s in self.streams]

    def frame_count(self, stream: _Stream) -> int:
        """Frames in a stream (a video's header count; may overstate a truncated file)."""
        if stream.video is not None:
            import cv2

            cap = cv2.VideoCapture(str(stream.video))
            n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) if cap.isOpened() else 0
            cap.release()
            return n
        if stream.session is not None:
            from capture.session import SessionReader

            with SessionReader(stream.session) as reader:
                return sum(1 for _ in reader.views_of(stream.camera))
        return len(stream.images)

    def frames(
        self, every: int = 1, max_frames: int | None = None, skip: set[tuple[str, int, str]] | frozenset = frozenset()
    ) -> Iterator[FootageFrame]:
        """Frames whose frame number is a multiple of ``every``, of every camera (at most ``max_frames`` per camera); keys in
        ``skip`` (already processed) are passed over without decoding."""
        for stream in self.streams:
            yield from self._frames_of(stream, max(1, every), max_frames, skip)

    def _frames_of(self, s: _Stream, every: int, max_frames: int | None, skip) -> Iterator[FootageFrame]:
        taken = 0
        if s.video is not None:
            import cv2

            cap = cv2.VideoCapture(str(s.video))
            if not cap.isOpened():
                raise DatasetError(f"{s.video}: cannot open the video (missing, unreadable or an unsupported codec)")
            index = 0
            try:
                while max_frames is None or taken < max_frames:
                    wanted = index % every == 0 and (s.sequence, index, s.camera) not in skip
                    if not cap.grab():
                        break  # end of the video (or a truncated tail)
                    if wanted:
                        ok, img = cap.retrieve()
                        yield FootageFrame(s.sequence, index, s.camera, f"{s.video}#{index}", img if ok else None)
                    if index % every == 0:
                        taken += 1
                    index += 1
            finally:
                cap.release()
            return
        if s.session is not None:
            from capture.session import SessionError, SessionReader

            with SessionReader(s.session) as reader:
                for view in reader.views_of(s.camera):
                    if max_frames is not None and taken >= max_frames:
                        break
                    if view.frame_index % every:  # by frame number, as videos: the same frames in every view
                        continue
                    taken += 1
                    if (s.sequence, view.frame_index, s.camera) in skip:
                        continue
                    try:
                        img = reader.image(view)
                    except SessionError:
                        img = None
                    yield FootageFrame(
                        s.sequence, view.frame_index, s.camera, f"{s.session}:{s.camera}#{view.frame_index}", img
                    )
            return
        for frame, path in s.images:
            if max_frames is not None and taken >= max_frames:
                break
            if frame % every:  # by frame number (a folder may start at 1 or miss a file), as videos
                continue
            taken += 1
            if (s.sequence, frame, s.camera) not in skip:
                image, problem = decode_image(path)
                yield FootageFrame(s.sequence, frame, s.camera, str(path), image, problem)


def _image_streams(folder: Path, sequence: str | None) -> list[_Stream]:
    from training.pseudo_labels.importers import image_key

    by_camera: dict[tuple[str, str], list[tuple[int, Path]]] = {}
    for path in sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_EXTS and p.is_file()):
        rel = path.relative_to(folder)
        try:
            seq, frame, cam = image_key(str(rel if len(rel.parts) > 1 else Path(folder.name) / rel), sequence)
        except DatasetError:
            continue  # an image without a frame number is not footage (e.g. a calibration photo)
        by_camera.setdefault((seq, cam), []).append((frame, path))
    return [_Stream(seq, cam, images=tuple(sorted(v))) for (seq, cam), v in sorted(by_camera.items())]


def _rig_streams(rig_path: Path) -> list[_Stream]:
    from calib.rig_config import load_rig

    rig = load_rig(rig_path)
    streams = []
    for name in rig.names:
        src = rig.source(name)
        uri = Path(src.uri)
        if src.kind == "file":
            streams.append(_Stream(rig.name, name, video=uri))
        elif src.kind == "session":
            streams.append(_Stream(rig.name, name, session=uri))
        elif src.kind in ("images", "panoptic"):
            folder = uri / "hdImgs" / name if src.kind == "panoptic" else uri
            found = [s for s in _image_streams(folder, rig.name)]
            streams.append(_Stream(rig.name, name, images=tuple(sorted(p for s in found for p in s.images))))
        else:
            raise DatasetError(
                f"{rig_path}: camera '{name}' has a '{src.kind}' source; offline footage needs "
                "file, images, panoptic or session sources (record a live rig first: selfpose3d record)"
            )
        missing = (src.kind == "file" and not uri.is_file()) or (src.kind != "file" and not uri.exists())
        if missing:
            raise DatasetError(f"{rig_path}: camera '{name}': source '{uri}' does not exist")
    return streams


def open_footage(path: str | Path, sequence: str | None = None) -> Footage:
    """Open a footage input (see the module docstring); DatasetError naming the path if it is none."""
    from capture.session import SessionReader, is_session

    path = Path(path)
    if not path.exists():
        raise DatasetError(f"{path}: no such file or folder")
    if path.is_file() and path.suffix.lower() in (".yaml", ".yml"):
        return Footage(path, _rig_streams(path))
    if path.is_dir() and is_session(path):
        with SessionReader(path) as reader:
            return Footage(path, [_Stream(sequence or reader.rig_name, c, session=path) for c in reader.cameras])
    if path.is_dir():
        videos = sorted(p for p in path.iterdir() if p.suffix.lower() in VIDEO_EXTENSIONS and p.is_file())
        if videos:
            return Footage(path, [_Stream(sequence or path.parent.name or "footage", v.stem, video=v) for v in videos])
        return Footage(path, _image_streams(path, sequence))
    raise DatasetError(f"{path}: not footage (a rig YAML, a session folder, a folder of videos or of images)")
