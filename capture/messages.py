"""The wire schema of the live stream (DESIGN.md §4), pure: no sockets, no threads.

One ZeroMQ multipart message is ``[topic, header, *buffers]``:

* ``topic``: ASCII bytes, ``frames/<rig>``, ``poses/<rig>`` or ``status/<process>``;
* ``header``: a msgpack map whose ``v`` is :data:`SCHEMA_VERSION` and ``kind`` the message kind;
* ``buffers``: raw bytes, one per view (frameset) or one ``(P,J,4)`` float32 array (poses).

:func:`encode` turns a typed message into that list of frames (image arrays are passed through
without copying); :func:`decode` validates *every* field, the buffer count and each buffer's size,
and raises :class:`MessageError` naming the field on any mismatch. It never raises anything else,
whatever bytes it is given. Readers ignore header keys they do not know; a change in the meaning or
layout of a known key bumps :data:`SCHEMA_VERSION`. See docs/stream_format.md.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import time
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import msgpack
import numpy as np

from calib.common.errors import MessageError

SCHEMA_VERSION = 1
KINDS = ("frameset", "poses", "status")
TOPIC_PREFIX = {"frameset": "frames/", "poses": "poses/", "status": "status/"}
ENCODINGS = ("bgr8", "jpeg", "shm")
STATES = ("starting", "ready", "running", "stopping", "error")
MAX_HEADER_BYTES = 1 << 20
# per-kind header caps checked on the raw bytes before msgpack runs (a frameset header of 64
# views is about 20 KiB; poses may carry a larger ``extra``)
MAX_HEADER_BYTES_BY_TOPIC = {"frames/": 64 << 10, "status/": 64 << 10, "poses/": MAX_HEADER_BYTES}
MAX_FRAMES = 2 + 64  # topic, header and at most one buffer per view
MAC_BYTES = 16
_MAC_ENTRY = b"\xa3mac\xc4\x10"  # msgpack: the key "mac", then a 16-byte bin header
MAX_VIEWS = 64
MAX_PEOPLE = 256
MAX_SIDE_PX = 16384
_NAME_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.:+@")


class AuthError(MessageError):
    """A message lacks the run's MAC or carries a wrong one (not from this run's processes)."""


def now_ns() -> int:
    """Wall-clock time in ns (CLOCK_REALTIME): comparable across processes and, with NTP, hosts."""
    return time.time_ns()


# --------------------------------------------------------------------------- typed messages


@dataclass(frozen=True)
class View:
    """One camera's image in a frameset.

    Attributes:
        camera: camera name (as in the rig).
        frame_index: the source's own frame counter.
        t_ns: capture time (wall clock, ns) taken when the frame was grabbed.
        width, height: image size in px.
        encoding: ``bgr8`` (raw H*W*3 bytes, row-major), ``jpeg``, or ``shm`` (raw bgr8 pixels in
            a same-host shared-memory ring, see capture/shm.py; no buffer on the wire).
        nbytes: size of the view's buffer (for ``shm``: of the pixels, H*W*3).
        shm: for ``shm`` views the handle (segment, slot, offset, generation), else None.
    """

    camera: str
    frame_index: int
    t_ns: int
    width: int
    height: int
    encoding: str
    nbytes: int
    shm: tuple[str, int, int, int] | None = None


@dataclass(frozen=True)
class FrameSet:
    """Time-synchronised images of a rig, one per present camera.

    Attributes:
        rig: rig name (the topic is ``frames/<rig>``).
        seq: publisher sequence number (gaps mean lost sets).
        t_ref_ns: reference capture time (the oldest view's ``t_ns``).
        t_pub_ns: time the set was published.
        views: per present camera metadata, in rig order.
        buffers: per view its pixels: ``(H,W,3)`` uint8 array for bgr8, bytes-like for jpeg,
            None for shm (read with :meth:`image`).
        missing: cameras of the rig absent from this set.
        skew_ms: max - min of the views' capture times.
        source: name of the publishing process ('' if unnamed); a rig spread over several
            capture processes has one sequence per source.
    """

    rig: str
    seq: int
    t_ref_ns: int
    t_pub_ns: int
    views: tuple[View, ...]
    buffers: tuple[Any, ...]
    missing: tuple[str, ...] = ()
    skew_ms: float = 0.0
    source: str = ""

    @property
    def cameras(self) -> list[str]:
        return [v.camera for v in self.views]

    def image(self, i: int, reduce: int = 1) -> np.ndarray:
        """BGR uint8 ``(H,W,3)`` image of view ``i`` (decodes JPEG; raw views are not copied).

        Args:
            i: view index.
            reduce: 1, 2, 4 or 8: return the image at 1/reduce of its size, ``(H//r, W//r, 3)``
                (JPEG decodes that much faster; raw views are strided, not resampled).
        """
        if reduce not in (1, 2, 4, 8):
            raise ValueError(f"reduce must be 1, 2, 4 or 8, got {reduce}")
        img = self._image(i, reduce)
        return img if reduce == 1 or self.views[i].encoding == "jpeg" else img[::reduce, ::reduce]

    def _image(self, i: int, reduce: int) -> np.ndarray:
        view, buf = self.views[i], self.buffers[i]
        if view.encoding == "shm":
            from capture.shm import ShmError, read_view

            segment, slot, offset, generation = view.shm
            try:
                return read_view(segment, offset, generation, slot, (view.height, view.width, 3))
            except ShmError as exc:
                raise MessageError(f"frameset {self.seq}: view '{view.camera}': {exc}") from None
        if view.encoding == "bgr8":
            if isinstance(buf, np.ndarray):
                return buf
            return np.frombuffer(buf, dtype=np.uint8).reshape(view.height, view.width, 3)
        import cv2

        flags = {
            1: cv2.IMREAD_COLOR,
            2: cv2.IMREAD_REDUCED_COLOR_2,
            4: cv2.IMREAD_REDUCED_COLOR_4,
            8: cv2.IMREAD_REDUCED_COLOR_8,
        }[reduce]
        img = cv2.imdecode(np.frombuffer(buf, dtype=np.uint8), flags)
        expect = (-(-view.height // reduce), -(-view.width // reduce), 3)
        if img is None or img.shape != expect:
            raise MessageError(
                f"frameset {self.seq}: view '{view.camera}': JPEG does not decode to "
                f"{view.width}x{view.height} BGR (at 1/{reduce})"
            )
        return img

    def still_valid(self, i: int) -> bool:
        """For a zero-copy ``shm`` view: True if its slot was not overwritten since (others: True)."""
        view = self.views[i]
        if view.encoding != "shm":
            return True
        from capture.shm import ShmError, still_valid

        try:
            return still_valid(view.shm[0], view.shm[1], view.shm[3])
        except ShmError:
            return False


@dataclass(frozen=True)
class Poses:
    """3D poses of one frameset.

    Attributes:
        rig: rig name (topic ``poses/<rig>``).
        seq: publisher sequence number.
        frameset_seq: seq of the frameset these poses were computed from.
        t_capture_ns: the frameset's reference capture time.
        t_publish_ns: time the poses were published.
        timings_ms: per-stage timings, e.g. ``{"backbone": 12.1, "pose": 3.0}``.
        skeleton_name, joints, edges: the skeleton (viewers draw bones from it).
        poses: ``(P,J,4)`` float32: x, y, z in world mm and a score.
        track_ids: ``(P,)`` int64 stable person ids (-1 if untracked).
        extra: optional dict (truth, metrics) of plain msgpack values.
    """

    rig: str
    seq: int
    frameset_seq: int
    t_capture_ns: int
    t_publish_ns: int
    skeleton_name: str
    joints: tuple[str, ...]
    edges: tuple[tuple[int, int], ...]
    poses: np.ndarray
    track_ids: np.ndarray
    timings_ms: Mapping[str, float] = field(default_factory=dict)
    extra: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Status:
    """Health of one process.

    Attributes:
        process: process name (topic ``status/<process>``).
        state: starting | ready | running | stopping | error.
        t_ns: time of the report.
        fps: output rate over the last interval.
        latency_ms: typical added latency (process-defined, e.g. publish - capture p50).
        dropped: total dropped items since start.
        missing: cameras currently not delivering.
        error: error text ('' if none).
        cameras: per camera state text, e.g. ``{"cam0": "ok", "cam1": "retrying in 2.0 s"}``.
        counts: the process's counters since start (non-negative integers, at most 1024), e.g. the
            capture's ``published``, ``complete``, ``incomplete``, ``missing/<camera>``,
            ``skipped/<camera>``, ``dropped/<reason>``, ``input_ended`` (docs/stream_format.md).
        note: one short human line (<= 256 chars), e.g. a recorder's ``recorded 120 sets, 80 MB,
            41.0 MB/s``; optional on the wire (absent reads as '').
    """

    process: str
    state: str
    t_ns: int
    fps: float = 0.0
    latency_ms: float = 0.0
    dropped: int = 0
    missing: tuple[str, ...] = ()
    error: str = ""
    cameras: Mapping[str, str] = field(default_factory=dict)
    counts: Mapping[str, int] = field(default_factory=dict)
    note: str = ""


Message = FrameSet | Poses | Status


# --------------------------------------------------------------------------- encode


def _pack(header: dict) -> bytes:
    data = msgpack.packb(header, use_bin_type=True)
    if len(data) > MAX_HEADER_BYTES:
        raise MessageError(f"{header.get('kind')}: header is {len(data)} bytes (> {MAX_HEADER_BYTES})")
    return data


def _raw_buffer(view: View, buf: Any) -> Any:
    if view.encoding == "bgr8":
        arr = np.asarray(buf)
        if arr.dtype != np.uint8 or arr.shape != (view.height, view.width, 3):
            raise MessageError(
                f"frameset: view '{view.camera}': bgr8 image must be uint8 "
                f"({view.height},{view.width},3), got {arr.dtype} {arr.shape}"
            )
        return np.ascontiguousarray(arr)
    return buf


def _view_header(v: View, buf: Any) -> dict:
    h = {
        "camera": v.camera,
        "frame_index": int(v.frame_index),
        "t_ns": int(v.t_ns),
        "width": int(v.width),
        "height": int(v.height),
        "encoding": v.encoding,
    }
    if v.encoding == "shm":
        if v.shm is None:
            raise MessageError(f"frameset: view '{v.camera}': shm encoding needs the shm handle")
        segment, slot, offset, generation = v.shm
        h["nbytes"] = int(v.width) * int(v.height) * 3
        h["shm"] = {"segment": segment, "slot": int(slot), "offset": int(offset), "generation": int(generation)}
    else:
        h["nbytes"] = int(memoryview(_raw_buffer(v, buf)).nbytes)
    return h


def encode(msg: Message, key: bytes | None = None) -> list[Any]:
    """Frames ``[topic, header, *buffers]`` of ``msg``; image arrays are passed through uncopied.

    Args:
        msg: the message.
        key: the run's secret; when given, the header starts with ``mac`` (see :func:`sign`).

    Raises:
        MessageError: the message is inconsistent (it is validated like a received one).
    """
    if isinstance(msg, FrameSet):
        topic = TOPIC_PREFIX["frameset"] + msg.rig
        if len(msg.buffers) != len(msg.views):
            raise MessageError(f"frameset: {len(msg.views)} views but {len(msg.buffers)} buffers")
        buffers = [_raw_buffer(v, b) for v, b in zip(msg.views, msg.buffers) if v.encoding != "shm"]
        header = {
            "v": SCHEMA_VERSION,
            "kind": "frameset",
            "rig": msg.rig,
            "seq": int(msg.seq),
            "t_ref_ns": int(msg.t_ref_ns),
            "t_pub_ns": int(msg.t_pub_ns),
            "skew_ms": float(msg.skew_ms),
            "missing": list(msg.missing),
            "source": msg.source,
            "views": [_view_header(v, b) for v, b in zip(msg.views, msg.buffers)],
        }
    elif isinstance(msg, Poses):
        topic = TOPIC_PREFIX["poses"] + msg.rig
        poses = np.ascontiguousarray(msg.poses, dtype="<f4")
        if poses.ndim != 3 or poses.shape[2] != 4:
            raise MessageError(f"poses: array must be (P,J,4), got {poses.shape}")
        buffers = [poses]
        header = {
            "v": SCHEMA_VERSION,
            "kind": "poses",
            "rig": msg.rig,
            "seq": int(msg.seq),
            "frameset_seq": int(msg.frameset_seq),
            "t_capture_ns": int(msg.t_capture_ns),
            "t_publish_ns": int(msg.t_publish_ns),
            "timings_ms": {str(k): float(v) for k, v in msg.timings_ms.items()},
            "skeleton": {
                "name": msg.skeleton_name,
                "joints": list(msg.joints),
                "edges": [[int(a), int(b)] for a, b in msg.edges],
            },
            "P": int(poses.shape[0]),
            "J": int(poses.shape[1]),
            "track_ids": [int(t) for t in np.asarray(msg.track_ids).reshape(-1)],
            "extra": dict(msg.extra),
        }
    elif isinstance(msg, Status):
        topic = TOPIC_PREFIX["status"] + msg.process
        buffers = []
        header = {
            "v": SCHEMA_VERSION,
            "kind": "status",
            "process": msg.process,
            "state": msg.state,
            "t_ns": int(msg.t_ns),
            "fps": float(msg.fps),
            "latency_ms": float(msg.latency_ms),
            "dropped": int(msg.dropped),
            "missing": list(msg.missing),
            "error": msg.error,
            "cameras": {str(k): str(v) for k, v in msg.cameras.items()},
            "counts": {str(k): int(v) for k, v in msg.counts.items()},
        }
        if msg.note:
            header["note"] = msg.note
    else:
        raise MessageError(f"encode: not a message type: {type(msg).__name__}")
    if key is not None:
        header = {"mac": bytes(MAC_BYTES), **header}  # first key: its bytes sit at a fixed place
    try:
        packed = _pack(header)
    except (TypeError, ValueError, OverflowError) as exc:
        raise MessageError(f"{header['kind']}: header cannot be serialised: {exc}") from None
    topic_b = topic.encode("ascii")
    if key is not None:
        packed = sign(topic_b, packed, key)
    frames = [topic_b, packed, *buffers]
    decode(frames, key)  # the sender obeys the same contract as the receiver
    return frames


# --------------------------------------------------------------------------- authentication


def _mac_offset(header: memoryview) -> int | None:
    """Offset of the 16 MAC bytes in a packed header whose first key is ``mac``, else None."""
    if header.nbytes < 1:
        return None
    first = header[0]
    prefix = 1 if 0x80 <= first <= 0x8F else 3 if first == 0xDE else None  # fixmap / map16
    if prefix is None or bytes(header[prefix : prefix + len(_MAC_ENTRY)]) != _MAC_ENTRY:
        return None
    start = prefix + len(_MAC_ENTRY)
    return start if header.nbytes >= start + MAC_BYTES else None


def _mac(key: bytes, topic: bytes, header: memoryview, start: int) -> bytes:
    h = hmac.new(key, digestmod=hashlib.sha256)
    h.update(topic)
    h.update(b"\0")
    h.update(header[:start])
    h.update(header[start + MAC_BYTES :])
    return h.digest()[:MAC_BYTES]


def sign(topic: bytes, packed_header: bytes, key: bytes) -> bytes:
    """``packed_header`` (whose first key is ``mac``, 16 zero bytes) with its MAC filled in.

    The MAC is HMAC-SHA256 (truncated to 16 bytes) over the topic and the header bytes other than
    the MAC itself. It covers every header field (sizes, shm handles, states), not pixel bytes.
    """
    view = memoryview(packed_header)
    start = _mac_offset(view)
    if start is None:
        raise MessageError("sign: the header's first key must be 'mac' (16 bytes)")
    return packed_header[:start] + _mac(key, topic, view, start) + packed_header[start + MAC_BYTES :]


def precheck(frames: Sequence[Any], key: bytes | None = None) -> None:
    """The cheap checks, on raw bytes, that run before any msgpack decoding: frame count, header
    size cap per kind and, with ``key``, the run's MAC.

    Raises:
        MessageError: too many frames or an oversized header.
        AuthError: ``key`` given and the MAC is absent or wrong.
    """
    if not isinstance(frames, (list, tuple)) or not 2 <= len(frames) <= MAX_FRAMES:
        n = len(frames) if isinstance(frames, (list, tuple)) else "?"
        raise MessageError(f"message: expected [topic, header, *buffers] with 2..{MAX_FRAMES} frames, got {n}")
    try:
        topic = bytes(memoryview(frames[0])[:160])
        header = memoryview(frames[1])
    except TypeError:
        raise MessageError("message: frames must be bytes-like") from None
    cap = next((c for p, c in MAX_HEADER_BYTES_BY_TOPIC.items() if topic.startswith(p.encode())), MAX_HEADER_BYTES)
    if header.nbytes > cap:
        raise MessageError(f"{topic[:40]!r}: header is {header.nbytes} bytes (> {cap} for this kind)")
    if key is not None:
        start = _mac_offset(header)
        if start is None:
            raise AuthError(f"{topic[:40]!r}: message carries no MAC (not from this run)")
        if not hmac.compare_digest(
            bytes(header[start : start + MAC_BYTES]), _mac(key, bytes(memoryview(frames[0])), header, start)
        ):
            raise AuthError(f"{topic[:40]!r}: wrong MAC (not from this run)")


# --------------------------------------------------------------------------- decode helpers


def _get(h: Mapping, key: str, where: str) -> Any:
    if key not in h:
        raise MessageError(f"{where}: missing field '{key}'")
    return h[key]


def _int(h: Mapping, key: str, where: str, lo: int = 0, hi: int = 2**63 - 1) -> int:
    v = _get(h, key, where)
    if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
        raise MessageError(f"{where}.{key}: expected an integer in [{lo}, {hi}], got {v!r:.80}")
    return v


def _float(h: Mapping, key: str, where: str, lo: float = 0.0) -> float:
    v = _get(h, key, where)
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < lo:
        raise MessageError(f"{where}.{key}: expected a finite number >= {lo}, got {v!r:.80}")
    return float(v)


def _name(v: Any, where: str) -> str:
    if not isinstance(v, str) or not 0 < len(v) <= 128 or not set(v) <= _NAME_CHARS:
        raise MessageError(f"{where}: expected a name of 1-128 chars [A-Za-z0-9_-.:+@], got {v!r:.80}")
    return v


def _str(h: Mapping, key: str, where: str, max_len: int = 4096) -> str:
    v = _get(h, key, where)
    if not isinstance(v, str) or len(v) > max_len:
        raise MessageError(f"{where}.{key}: expected a string of <= {max_len} chars, got {v!r:.80}")
    return v


def _names(h: Mapping, key: str, where: str, max_len: int = MAX_VIEWS) -> tuple[str, ...]:
    v = _get(h, key, where)
    if not isinstance(v, list) or len(v) > max_len:
        raise MessageError(f"{where}.{key}: expected a list of <= {max_len} names, got {v!r:.80}")
    return tuple(_name(x, f"{where}.{key}[{i}]") for i, x in enumerate(v))


def _map(h: Mapping, key: str, where: str) -> dict:
    v = _get(h, key, where)
    if not isinstance(v, dict):
        raise MessageError(f"{where}.{key}: expected a map, got {type(v).__name__}")
    return v


def _nbytes(buf: Any) -> int:
    return memoryview(buf).nbytes


def _unpack_header(frames: Sequence[Any]) -> tuple[str, dict]:
    if not isinstance(frames, (list, tuple)) or len(frames) < 2:
        raise MessageError("message: expected [topic, header, *buffers] (at least 2 frames)")
    try:
        topic_b = bytes(frames[0])
        header_b = memoryview(frames[1])
    except TypeError:
        raise MessageError("message: frames must be bytes-like") from None
    try:
        topic = topic_b.decode("ascii")
    except UnicodeDecodeError:
        raise MessageError(f"message: topic is not ASCII: {topic_b[:40]!r}") from None
    if header_b.nbytes > MAX_HEADER_BYTES:
        raise MessageError(f"{topic}: header is {header_b.nbytes} bytes (> {MAX_HEADER_BYTES})")
    try:
        header = msgpack.unpackb(header_b, raw=False, strict_map_key=True, use_list=True)
    except Exception as exc:  # msgpack raises many types on garbage; all mean "not a header"
        raise MessageError(f"{topic}: header is not valid msgpack ({type(exc).__name__})") from None
    if not isinstance(header, dict):
        raise MessageError(f"{topic}: header must be a map, got {type(header).__name__}")
    version = header.get("v")
    if version != SCHEMA_VERSION:
        raise MessageError(
            f"{topic}: schema version {version!r} is not {SCHEMA_VERSION}; "
            "upgrade the older side so both speak the same version"
        )
    kind = header.get("kind")
    if kind not in KINDS:
        raise MessageError(f"{topic}: unknown kind {kind!r:.40}; expected one of {KINDS}")
    if not topic.startswith(TOPIC_PREFIX[kind]):
        raise MessageError(f"{topic}: a '{kind}' message must use topic '{TOPIC_PREFIX[kind]}<name>'")
    return topic, header


# --------------------------------------------------------------------------- decode


def _decode_view(v: Any, where: str) -> View:
    if not isinstance(v, dict):
        raise MessageError(f"{where}: expected a map")
    enc = _get(v, "encoding", where)
    if enc not in ENCODINGS:
        raise MessageError(f"{where}.encoding: {enc!r:.40} is not one of {ENCODINGS}")
    handle = None
    if enc == "shm":
        h = _map(v, "shm", where)
        handle = (
            _name(_get(h, "segment", f"{where}.shm"), f"{where}.shm.segment"),
            _int(h, "slot", f"{where}.shm"),
            _int(h, "offset", f"{where}.shm"),
            _int(h, "generation", f"{where}.shm"),
        )
    view = View(
        camera=_name(_get(v, "camera", where), f"{where}.camera"),
        frame_index=_int(v, "frame_index", where),
        t_ns=_int(v, "t_ns", where),
        width=_int(v, "width", where, 1, MAX_SIDE_PX),
        height=_int(v, "height", where, 1, MAX_SIDE_PX),
        encoding=enc,
        nbytes=_int(v, "nbytes", where, 1),
        shm=handle,
    )
    if enc in ("bgr8", "shm") and view.nbytes != view.width * view.height * 3:
        raise MessageError(
            f"{where}.nbytes: bgr8 {view.width}x{view.height} needs "
            f"{view.width * view.height * 3} bytes, header says {view.nbytes}"
        )
    return view


def _decode_frameset(topic: str, h: dict, bufs: Sequence[Any]) -> FrameSet:
    w = f"{topic} frameset"
    rig = _name(_get(h, "rig", w), f"{w}.rig")
    if topic != TOPIC_PREFIX["frameset"] + rig:
        raise MessageError(f"{w}: topic does not match rig '{rig}'")
    views_raw = _get(h, "views", w)
    if not isinstance(views_raw, list) or len(views_raw) > MAX_VIEWS:
        raise MessageError(f"{w}.views: expected a list of <= {MAX_VIEWS} views")
    views = tuple(_decode_view(v, f"{w}.views[{i}]") for i, v in enumerate(views_raw))
    missing = _names(h, "missing", w)
    names = [v.camera for v in views] + list(missing)
    if len(set(names)) != len(names):
        raise MessageError(f"{w}: a camera appears twice among views + missing: {names}")
    if not views and not missing:
        raise MessageError(f"{w}: no views and no missing cameras")
    inline = [i for i, v in enumerate(views) if v.encoding != "shm"]
    if len(bufs) != len(inline):
        raise MessageError(f"{w}: {len(inline)} views with inline pixels but {len(bufs)} buffers")
    arrays: list[Any] = [None] * len(views)
    for i, buf in zip(inline, bufs):
        view = views[i]
        try:
            n = _nbytes(buf)
        except TypeError:
            raise MessageError(f"{w}.views[{i}]: buffer is not bytes-like") from None
        if n != view.nbytes:
            raise MessageError(f"{w}.views[{i}] ('{view.camera}'): buffer has {n} bytes, header says {view.nbytes}")
        if view.encoding == "bgr8":
            arrays[i] = np.frombuffer(buf, dtype=np.uint8).reshape(view.height, view.width, 3)
        else:
            arrays[i] = buf
    source = h.get("source", "")
    if source != "":
        _name(source, f"{w}.source")
    return FrameSet(
        rig=rig,
        seq=_int(h, "seq", w),
        t_ref_ns=_int(h, "t_ref_ns", w),
        t_pub_ns=_int(h, "t_pub_ns", w),
        views=views,
        buffers=tuple(arrays),
        missing=missing,
        skew_ms=_float(h, "skew_ms", w),
        source=source,
    )


def _plain(value: Any, where: str, depth: int = 0) -> None:
    if depth > 8:
        raise MessageError(f"{where}: nested deeper than 8 levels")
    if isinstance(value, dict):
        for k, v in value.items():
            _plain(v, f"{where}.{k}", depth + 1)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            _plain(v, f"{where}[{i}]", depth + 1)
    elif isinstance(value, float) and not math.isfinite(value):
        pass  # NaN marks "unknown" in metrics; allowed
    elif value is not None and not isinstance(value, (bool, int, float, str, bytes)):
        raise MessageError(f"{where}: unsupported value type {type(value).__name__}")


def _decode_poses(topic: str, h: dict, bufs: Sequence[Any]) -> Poses:
    w = f"{topic} poses"
    rig = _name(_get(h, "rig", w), f"{w}.rig")
    if topic != TOPIC_PREFIX["poses"] + rig:
        raise MessageError(f"{w}: topic does not match rig '{rig}'")
    P = _int(h, "P", w, 0, MAX_PEOPLE)
    J = _int(h, "J", w, 1, 256)
    sk = _map(h, "skeleton", w)
    sk_name = _name(_get(sk, "name", f"{w}.skeleton"), f"{w}.skeleton.name")
    joints = _names(sk, "joints", f"{w}.skeleton", max_len=256)
    if len(joints) != J:
        raise MessageError(f"{w}.skeleton.joints: {len(joints)} names but J = {J}")
    edges_raw = _get(sk, "edges", f"{w}.skeleton")
    if not isinstance(edges_raw, list) or len(edges_raw) > 1024:
        raise MessageError(f"{w}.skeleton.edges: expected a list of [a, b] pairs")
    edges = []
    for i, e in enumerate(edges_raw):
        if (
            not isinstance(e, list)
            or len(e) != 2
            or not all(isinstance(x, int) and not isinstance(x, bool) and 0 <= x < J for x in e)
        ):
            raise MessageError(f"{w}.skeleton.edges[{i}]: expected [a, b] with 0 <= a, b < J={J}, got {e!r:.40}")
        edges.append((e[0], e[1]))
    ids = _get(h, "track_ids", w)
    if (
        not isinstance(ids, list)
        or len(ids) != P
        or not all(isinstance(x, int) and not isinstance(x, bool) and -1 <= x < 2**62 for x in ids)
    ):
        raise MessageError(f"{w}.track_ids: expected {P} integers >= -1")
    timings = _map(h, "timings_ms", w)
    for k in timings:
        _float(timings, k, f"{w}.timings_ms")
    extra = _map(h, "extra", w)
    _plain(extra, f"{w}.extra")
    if len(bufs) != 1:
        raise MessageError(f"{w}: expected 1 buffer (the (P,J,4) float32 array), got {len(bufs)}")
    try:
        n = _nbytes(bufs[0])
    except TypeError:
        raise MessageError(f"{w}: buffer is not bytes-like") from None
    if n != P * J * 4 * 4:
        raise MessageError(f"{w}: buffer has {n} bytes, (P={P},J={J},4) float32 needs {P * J * 16}")
    poses = np.frombuffer(bufs[0], dtype="<f4").reshape(P, J, 4)
    return Poses(
        rig=rig,
        seq=_int(h, "seq", w),
        frameset_seq=_int(h, "frameset_seq", w),
        t_capture_ns=_int(h, "t_capture_ns", w),
        t_publish_ns=_int(h, "t_publish_ns", w),
        skeleton_name=sk_name,
        joints=joints,
        edges=tuple(edges),
        poses=poses,
        track_ids=np.asarray(ids, dtype=np.int64).reshape(P),
        timings_ms=dict(timings),
        extra=extra,
    )


def _decode_status(topic: str, h: dict, bufs: Sequence[Any]) -> Status:
    w = f"{topic} status"
    process = _name(_get(h, "process", w), f"{w}.process")
    if topic != TOPIC_PREFIX["status"] + process:
        raise MessageError(f"{w}: topic does not match process '{process}'")
    state = _get(h, "state", w)
    if state not in STATES:
        raise MessageError(f"{w}.state: {state!r:.40} is not one of {STATES}")
    if bufs:
        raise MessageError(f"{w}: expected no buffers, got {len(bufs)}")
    cams = _map(h, "cameras", w)
    for k, v in cams.items():
        _name(k, f"{w}.cameras key")
        if not isinstance(v, str) or len(v) > 256:
            raise MessageError(f"{w}.cameras.{k}: expected a short string")
    counts = _map(h, "counts", w) if "counts" in h else {}  # absent in schema-1 senders of old
    if len(counts) > 1024:
        raise MessageError(f"{w}.counts: {len(counts)} entries (at most 1024)")
    for k in counts:
        if not isinstance(k, str) or not 0 < len(k) <= 80:
            raise MessageError(f"{w}.counts: key {k!r:.40} is not a short string")
        _int(counts, k, f"{w}.counts")
    return Status(
        process=process,
        state=state,
        t_ns=_int(h, "t_ns", w),
        fps=_float(h, "fps", w),
        latency_ms=_float(h, "latency_ms", w),
        dropped=_int(h, "dropped", w),
        missing=_names(h, "missing", w),
        error=_str(h, "error", w),
        cameras=dict(cams),
        counts=dict(counts),
        note=_str(h, "note", w, max_len=256) if "note" in h else "",
    )


_DECODERS = {"frameset": _decode_frameset, "poses": _decode_poses, "status": _decode_status}


def decode(frames: Sequence[Any], key: bytes | None = None) -> Message:
    """Validate and decode ``[topic, header, *buffers]``; raw image buffers are not copied.

    Args:
        frames: bytes-like frames (``bytes``, ``memoryview``, ``zmq.Frame``...).
        key: the run's secret: the header's MAC is checked (:func:`precheck`) before decoding.

    Raises:
        MessageError: anything is wrong (version, kind, a field, buffer count or size);
            :class:`AuthError` for a missing or wrong MAC.
    """
    precheck(frames, key)
    topic, header = _unpack_header(frames)
    try:
        return _DECODERS[header["kind"]](topic, header, list(frames[2:]))
    except MessageError:
        raise
    except Exception as exc:  # belt and braces: a decoder must only ever raise MessageError
        raise MessageError(f"{topic}: malformed {header['kind']} ({type(exc).__name__}: {exc})") from None


def topic_of(kind: str, name: str) -> bytes:
    """Subscription topic of a kind and rig/process name, e.g. ``b"frames/lab"``."""
    if kind not in TOPIC_PREFIX:
        raise MessageError(f"topic: unknown kind {kind!r}; expected one of {KINDS}")
    return (TOPIC_PREFIX[kind] + name).encode("ascii")
