"""Replay a recorded session or a CMU Panoptic sequence through the live stream.

Both are turned into the same :class:`capture.messages.FrameSet` stream a capture process
publishes, deterministically (same input, same sets, same view timestamps), then published at
the original speed (``speed=1``), a multiple of it, or as fast as possible (``speed=None``).
"""

from __future__ import annotations

import heapq
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Sequence

from capture.messages import FrameSet, View, now_ns
from capture.session import SessionReader


def session_framesets(
    reader: SessionReader, *, encoding: str = "bgr8", cameras: Sequence[str] | None = None
) -> Iterator[FrameSet]:
    """The recorded sets of a session as wire framesets (original seq and timestamps).

    Args:
        reader: the open session.
        encoding: ``bgr8`` or ``jpeg`` (JPEG sessions pass their stored bytes through untouched).
        cameras: publish these cameras in this order (absent ones listed in ``missing``);
            None: the session's cameras in recorded order.
    """
    order = {c: i for i, c in enumerate(cameras)} if cameras is not None else None
    passthrough = encoding == "jpeg" and reader.codec == "jpeg"
    for rec in reader.sets:
        views, buffers = [], []
        recorded = (
            rec.views
            if order is None
            else sorted((v for v in rec.views if v.camera in order), key=lambda v: order[v.camera])
        )
        present = {v.camera for v in recorded}
        missing = list(rec.missing) if order is None else [c for c in cameras if c not in present]
        for v in recorded:
            if passthrough:
                data = reader.image_bytes(v)
                h, w = _jpeg_size(data)
                views.append(View(v.camera, v.frame_index, v.t_ns, w, h, "jpeg", len(data)))
                buffers.append(data)
            else:
                img = reader.image(v)
                if encoding == "jpeg":
                    from capture.process import encode_jpeg

                    data = encode_jpeg(img, 90)
                    views.append(View(v.camera, v.frame_index, v.t_ns, img.shape[1], img.shape[0], "jpeg", len(data)))
                    buffers.append(data)
                else:
                    views.append(View(v.camera, v.frame_index, v.t_ns, img.shape[1], img.shape[0], "bgr8", img.nbytes))
                    buffers.append(img)
        if not views:
            continue
        times = [v.t_ns for v in views]
        yield FrameSet(
            reader.rig_name,
            rec.seq,
            rec.t_ref_ns,
            0,
            tuple(views),
            tuple(buffers),
            tuple(missing),
            (max(times) - min(times)) / 1e6,
        )


def _jpeg_size(data: bytes) -> tuple[int, int]:
    """(height, width) of a JPEG from its SOF marker, decoding only if the marker is absent."""
    i = 2
    while i + 9 < len(data):
        if data[i] != 0xFF:
            i += 1
            continue
        marker, length = data[i + 1], int.from_bytes(data[i + 2 : i + 4], "big")
        if marker in (0xC0, 0xC1, 0xC2):  # baseline, extended, progressive
            return int.from_bytes(data[i + 5 : i + 7], "big"), int.from_bytes(data[i + 7 : i + 9], "big")
        i += 2 + length
    import cv2
    import numpy as np

    img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if img is None:
        raise ValueError("stored JPEG does not decode")
    return img.shape[0], img.shape[1]


def panoptic_framesets(
    seq_dir: str | Path,
    cameras: Sequence[str],
    *,
    rig: str,
    encoding: str = "bgr8",
    first_frame: int | None = None,
    last_frame: int | None = None,
    start_ns: int = 0,
) -> Iterator[FrameSet]:
    """Framesets of a Panoptic sequence: one per HD frame number (genlocked: number = time).

    A camera without that frame number is listed in ``missing``. Views are timestamped
    ``start_ns + (number - first) / 29.97 s``.
    """
    from capture.process import encode_jpeg
    from capture.sources.panoptic import PanopticSource, panoptic_first_frame

    first = panoptic_first_frame(seq_dir, list(cameras)) if first_frame is None else first_frame
    sources = [
        PanopticSource(c, seq_dir, first_frame=first, last_frame=last_frame, realtime=False, start_ns=start_ns)
        for c in cameras
    ]
    for s in sources:
        s.open()
    try:
        heads = []
        for i, s in enumerate(sources):
            f = s.read()
            if f is not None:
                heapq.heappush(heads, (f.frame_index, i, f))
        seq = 0
        while heads:
            number = heads[0][0]
            group = {}
            while heads and heads[0][0] == number:
                _, i, f = heapq.heappop(heads)
                group[i] = f
                nxt = sources[i].read()
                if nxt is not None:
                    heapq.heappush(heads, (nxt.frame_index, i, nxt))
            views, buffers = [], []
            for i in sorted(group):
                f = group[i]
                buf = f.image if encoding == "bgr8" else encode_jpeg(f.image, 90)
                views.append(
                    View(
                        f.camera,
                        f.frame_index,
                        f.t_ns,
                        f.image.shape[1],
                        f.image.shape[0],
                        encoding,
                        len(buf) if isinstance(buf, bytes) else f.image.nbytes,
                    )
                )
                buffers.append(buf)
            missing = tuple(c for j, c in enumerate(cameras) if j not in group)
            yield FrameSet(rig, seq, min(v.t_ns for v in views), 0, tuple(views), tuple(buffers), missing, 0.0)
            seq += 1
    finally:
        for s in sources:
            s.close()


@dataclass
class ReplayReport:
    sent: int = 0
    dropped: int = 0
    seconds: float = 0.0
    lag_ms: list[float] = field(default_factory=list)


def replay(
    framesets: Iterator[FrameSet],
    publisher,
    stop: threading.Event,
    *,
    speed: float | None = 1.0,
    wait_ms: float = 0.0,
    max_sets: int | None = None,
    status_process: str | None = None,
    status_interval_s: float = 1.0,
) -> ReplayReport:
    """Publish ``framesets`` paced by their ``t_ref_ns`` (``speed`` x original; None: max speed).

    Args:
        framesets: from :func:`session_framesets` or :func:`panoptic_framesets`.
        publisher: a :class:`capture.bus.Publisher`.
        stop: ends the replay early.
        speed: playback rate relative to the recording; None publishes as fast as possible.
        wait_ms: per set, how long to wait for a slow subscriber before dropping (0: drop at once).
        max_sets: stop after this many sets.
        status_process: if given, publish a ``running`` status under this name every
            ``status_interval_s`` (rate, drops).
    """
    import dataclasses

    from capture.messages import Status

    report = ReplayReport()
    t0 = time.monotonic()
    first_t = None
    last_status, sent_at_status = t0, 0
    for fs in framesets:
        if status_process is not None and time.monotonic() - last_status >= status_interval_s:
            now = time.monotonic()
            publisher.send(
                Status(
                    status_process,
                    "running",
                    now_ns(),
                    fps=(report.sent - sent_at_status) / (now - last_status),
                    dropped=report.dropped,
                )
            )
            last_status, sent_at_status = now, report.sent
        if stop.is_set() or (max_sets is not None and report.sent + report.dropped >= max_sets):
            break
        if speed is not None:
            first_t = fs.t_ref_ns if first_t is None else first_t
            due = t0 + (fs.t_ref_ns - first_t) / 1e9 / speed
            delay = due - time.monotonic()
            if delay > 0 and stop.wait(delay):
                break
            report.lag_ms.append(max(0.0, -delay) * 1e3)
        ok = publisher.send(dataclasses.replace(fs, t_pub_ns=now_ns()), wait_ms=wait_ms)
        report.sent += int(ok)
        report.dropped += int(not ok)
    report.seconds = time.monotonic() - t0
    return report
