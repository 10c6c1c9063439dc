"""Recorded sessions: a folder that survives its writer being killed.

Layout of ``SESSION/``::

    rig.yaml            the rig (calibration inline; every source is this session)
    index.msgpack       append-only stream of msgpack maps, flushed after every frameset
    <camera>.mjpeg      per camera: concatenated JPEG images = a standard MJPEG elementary
                        stream (plays with ``ffplay -f mjpeg``), or ``<camera>.pngs`` (lossless)

``index.msgpack`` starts with one ``{"type": "session", "version", "rig", "cameras", "codec",
"created_ns"}`` record followed by one record per frameset::

    {"type": "set", "seq", "t_ref_ns", "missing": [camera...],
     "views": [{"camera", "frame_index", "t_ns", "offset", "nbytes"}...]}

``offset``/``nbytes`` locate the view's image in its camera file. An image's bytes are flushed
before the index record that points at them, so every record in the index is readable even if
the writer died mid-write; the reader ignores a truncated last record and any record that points
past the end of a camera file. The same holds when a write fails (disk full, I/O error): the
writer raises :class:`RecordingStopped`, writes nothing more, and what it wrote stays readable.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence

import msgpack
import numpy as np

from calib.common.errors import SessionError

SESSION_VERSION = 1
INDEX_NAME = "index.msgpack"
RIG_NAME = "rig.yaml"
CODECS = {"jpeg": ".mjpeg", "png": ".pngs"}


class RecordingStopped(SessionError):
    """Writing a session failed (disk full, I/O error); what was written before stays readable.

    Attributes:
        reason: short text, e.g. ``disk full``.
        sets_kept: framesets readable in the session.
    """

    def __init__(self, message: str, reason: str, sets_kept: int) -> None:
        super().__init__(message)
        self.reason = reason
        self.sets_kept = sets_kept


@dataclass(frozen=True)
class RecordedView:
    camera: str
    frame_index: int
    t_ns: int
    offset: int
    nbytes: int


@dataclass(frozen=True)
class RecordedSet:
    seq: int
    t_ref_ns: int
    views: tuple[RecordedView, ...]
    missing: tuple[str, ...]


def is_session(path: str | Path) -> bool:
    """True if ``path`` looks like a session folder."""
    return (Path(path) / INDEX_NAME).is_file()


class SessionWriter:
    """Append framesets to a new session folder.

    Args:
        path: folder to create (must not contain a session already).
        cameras: camera names in rig order.
        rig_name: the rig's name.
        codec: ``jpeg`` (default) or ``png`` (lossless, larger, slower).
        jpeg_quality: 1..100.
    """

    def __init__(
        self, path: str | Path, cameras: Sequence[str], *, rig_name: str, codec: str = "jpeg", jpeg_quality: int = 95
    ) -> None:
        if codec not in CODECS:
            raise SessionError(f"{path}: codec {codec!r} is not one of {sorted(CODECS)}")
        self.path = Path(path)
        if is_session(self.path):
            raise SessionError(f"{self.path}: already holds a session; choose a new folder")
        self.path.mkdir(parents=True, exist_ok=True)
        self.cameras = tuple(cameras)
        self.codec = codec
        self.jpeg_quality = int(jpeg_quality)
        self.sets_written = 0
        self.bytes_written = 0  # image and index bytes of this writer
        self.failure: RecordingStopped | None = None
        self._files = {c: open(self.path / f"{c}{CODECS[codec]}", "ab") for c in self.cameras}
        self._index = open(self.path / INDEX_NAME, "ab")
        try:
            self._append(
                {
                    "type": "session",
                    "version": SESSION_VERSION,
                    "rig": rig_name,
                    "cameras": list(self.cameras),
                    "codec": codec,
                    "created_ns": _now_ns(),
                }
            )
        except OSError as exc:
            self._fail(exc)

    def encode_image(self, image: np.ndarray) -> bytes:
        """Compress a BGR ``(H,W,3)`` uint8 image with the session codec."""
        import cv2

        if self.codec == "jpeg":
            ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, self.jpeg_quality])
        else:
            ok, data = cv2.imencode(".png", image, [cv2.IMWRITE_PNG_COMPRESSION, 1])
        if not ok:
            raise SessionError(f"{self.path}: cannot encode a {image.shape} image as {self.codec}")
        return data.tobytes()

    def write_set(
        self, seq: int, t_ref_ns: int, views: Sequence[tuple[str, int, int, Any]], missing: Sequence[str] = ()
    ) -> None:
        """Append one frameset.

        Args:
            seq: frameset sequence number.
            t_ref_ns: its reference capture time.
            views: ``(camera, frame_index, t_ns, image)`` where image is a BGR array or bytes
                already in the session codec (e.g. JPEG from the stream: no re-encoding).
            missing: absent cameras.

        Raises:
            RecordingStopped: a write failed (disk full...), now or before; nothing more is written.
        """
        if self.failure is not None:
            raise self.failure
        encoded = []
        for camera, frame_index, t_ns, image in views:
            if camera not in self._files:
                raise SessionError(f"{self.path}: camera '{camera}' is not in the session's cameras {self.cameras}")
            encoded.append(
                (camera, frame_index, t_ns, self.encode_image(image) if isinstance(image, np.ndarray) else bytes(image))
            )
        records = []
        try:
            for camera, frame_index, t_ns, data in encoded:
                f = self._files[camera]
                offset = f.tell()
                f.write(data)
                f.flush()  # image bytes reach the OS before the index points at them
                self.bytes_written += len(data)
                records.append(
                    {
                        "camera": camera,
                        "frame_index": int(frame_index),
                        "t_ns": int(t_ns),
                        "offset": offset,
                        "nbytes": len(data),
                    }
                )
            self._append(
                {"type": "set", "seq": int(seq), "t_ref_ns": int(t_ref_ns), "missing": list(missing), "views": records}
            )
        except OSError as exc:
            self._fail(exc)
        self.sets_written += 1

    def _fail(self, exc: OSError) -> None:
        import errno

        reason = "disk full" if exc.errno in (errno.ENOSPC, errno.EDQUOT) else f"write error ({exc.strerror or exc})"
        self.failure = RecordingStopped(
            f"{self.path}: recording stopped, {reason}: {self.sets_written} framesets kept and readable "
            "(free space or record elsewhere)",
            reason,
            self.sets_written,
        )
        raise self.failure from None

    def _append(self, record: dict) -> None:
        data = msgpack.packb(record, use_bin_type=True)
        self._index.write(data)
        self._index.flush()
        self.bytes_written += len(data)

    def close(self) -> None:
        """Flush, fsync and close every file; after a failed write the unwritten tail is dropped
        (it could only be a partial frame or record, which readers ignore anyway)."""
        for f in [*self._files.values(), self._index]:
            if f.closed:
                continue
            try:
                f.flush()
                os.fsync(f.fileno())
            except OSError:
                pass
            try:
                f.close()
            except OSError:
                pass  # a buffered tail that cannot be written: the file is closed all the same

    def __enter__(self) -> "SessionWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class SessionReader:
    """Read a session folder, tolerating a truncated tail.

    Attributes:
        path, version, rig_name, cameras, codec, created_ns: from the header record.
        sets: every complete, readable frameset record, in recording order.
        truncated: True if a partial record or out-of-file view was ignored at the end.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        index = self.path / INDEX_NAME
        if not index.is_file():
            raise SessionError(
                f"{self.path}: not a session folder (no {INDEX_NAME}); record one with `selfpose3d record`"
            )
        records, self.truncated = _read_records(index)
        if not records or not isinstance(records[0], dict) or records[0].get("type") != "session":
            raise SessionError(f"{index}: missing the session header record")
        head = records[0]
        if head.get("version") != SESSION_VERSION:
            raise SessionError(f"{index}: session version {head.get('version')!r} is not {SESSION_VERSION}")
        try:
            self.rig_name = str(head["rig"])
            self.cameras = tuple(str(c) for c in head["cameras"])
            self.codec = str(head["codec"])
            self.created_ns = int(head["created_ns"])
        except (KeyError, TypeError, ValueError):
            raise SessionError(f"{index}: malformed session header {head!r:.200}") from None
        if self.codec not in CODECS:
            raise SessionError(f"{index}: unknown codec {self.codec!r}")
        self.version = SESSION_VERSION
        sizes = {c: _size(self.path / f"{c}{CODECS[self.codec]}") for c in self.cameras}
        self.sets: list[RecordedSet] = []
        for rec in records[1:]:
            parsed = self._parse_set(rec, sizes)
            if parsed is None:
                self.truncated = True
                break
            self.sets.append(parsed)
        self._files: dict[str, Any] = {}

    @property
    def rig_path(self) -> Path:
        return self.path / RIG_NAME

    def _parse_set(self, rec: Any, sizes: dict[str, int]) -> RecordedSet | None:
        try:
            views = tuple(
                RecordedView(
                    str(v["camera"]), int(v["frame_index"]), int(v["t_ns"]), int(v["offset"]), int(v["nbytes"])
                )
                for v in rec["views"]
            )
            result = RecordedSet(int(rec["seq"]), int(rec["t_ref_ns"]), views, tuple(str(m) for m in rec["missing"]))
        except (KeyError, TypeError, ValueError):
            return None
        if rec.get("type") != "set" or any(
            v.camera not in sizes or v.offset + v.nbytes > sizes[v.camera] for v in views
        ):
            return None
        return result

    def image_bytes(self, view: RecordedView) -> bytes:
        """The stored (compressed) bytes of a view."""
        f = self._files.get(view.camera)
        if f is None:
            f = self._files[view.camera] = open(self.path / f"{view.camera}{CODECS[self.codec]}", "rb")
        f.seek(view.offset)
        data = f.read(view.nbytes)
        if len(data) != view.nbytes:
            raise SessionError(f"{self.path}: camera '{view.camera}' file ends inside a frame")
        return data

    def image(self, view: RecordedView) -> np.ndarray:
        """BGR ``(H,W,3)`` uint8 image of a view."""
        import cv2

        img = cv2.imdecode(np.frombuffer(self.image_bytes(view), np.uint8), cv2.IMREAD_COLOR)
        if img is None:
            raise SessionError(f"{self.path}: camera '{view.camera}' frame {view.frame_index} does not decode")
        return img

    def views_of(self, camera: str) -> Iterator[RecordedView]:
        """Every recorded view of one camera, in order."""
        for s in self.sets:
            for v in s.views:
                if v.camera == camera:
                    yield v

    @property
    def duration_s(self) -> float:
        if len(self.sets) < 2:
            return 0.0
        return (self.sets[-1].t_ref_ns - self.sets[0].t_ref_ns) / 1e9

    def close(self) -> None:
        for f in self._files.values():
            f.close()
        self._files.clear()

    def __enter__(self) -> "SessionReader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _read_records(index: Path) -> tuple[list[Any], bool]:
    unpacker = msgpack.Unpacker(raw=False, strict_map_key=False)
    unpacker.feed(index.read_bytes())
    records = []
    try:
        for rec in unpacker:
            records.append(rec)
    except Exception:  # garbage in the middle: keep what came before it
        return records, True
    # a partial trailing record stays in the unpacker's buffer
    truncated = unpacker.tell() < index.stat().st_size
    return records, truncated


def _size(path: Path) -> int:
    return path.stat().st_size if path.is_file() else 0


def _now_ns() -> int:
    import time

    return time.time_ns()
