"""Record a rig's framesets to a session folder (format: :mod:`capture.session`).

Framesets come either from the rig's own sources (:class:`capture.process.LiveRig`, in this
process) or from a capture stream (:class:`capture.bus.Subscriber`). Every set is flushed as it
is written, so a recorder killed at any moment leaves a readable session.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from capture.messages import FrameSet
from capture.session import RIG_NAME, SessionWriter
from capture.sync import SyncedSet

log = logging.getLogger(__name__)


def save_session_rig(rig, cameras: Sequence[str], session_dir: str | Path) -> Path:
    """Write ``rig.yaml`` into the session: calibration inline, every source this session."""
    from calib.rig_config import SourceConfig, save_rig

    subset = rig.cameras.subset(cameras)
    return save_rig(subset, Path(session_dir) / RIG_NAME, name=rig.name, volume=rig.volume,
                    sources=[SourceConfig(kind="session", uri=".") for _ in cameras],
                    skeleton=rig.config.skeleton, synthetic=rig.config.synthetic)


class Recorder:
    """Writes framesets of one rig to a new session.

    Args:
        session_dir: new folder.
        rig: the loaded rig (``calib.rig_config.Rig``); None writes no rig.yaml.
        cameras: the recorded cameras, in rig order.
        rig_name: rig name (defaults to ``rig.name``).
        codec, jpeg_quality: see :class:`capture.session.SessionWriter`.
    """

    def __init__(self, session_dir: str | Path, rig, cameras: Sequence[str], *, rig_name: str | None = None,
                 codec: str = "jpeg", jpeg_quality: int = 95) -> None:
        name = rig_name or rig.name
        self.writer = SessionWriter(session_dir, cameras, rig_name=name, codec=codec, jpeg_quality=jpeg_quality)
        if rig is not None:
            save_session_rig(rig, cameras, session_dir)
        self._seq = 0

    @property
    def sets_written(self) -> int:
        return self.writer.sets_written

    def write_synced(self, synced: SyncedSet) -> None:
        """Write a set from :class:`capture.process.LiveRig` (payloads are source Frames); JPEG
        views are encoded in parallel."""
        images = [f.payload.image for f in synced.frames]
        if self.writer.codec == "jpeg" and len(images) > 1:
            from capture.process import encode_jpeg_views

            images = encode_jpeg_views(images, self.writer.jpeg_quality)
        views = [(f.camera, f.payload.frame_index, f.t_ns, img) for f, img in zip(synced.frames, images)]
        self.writer.write_set(self._seq, synced.t_ref_ns, views, synced.missing)
        self._seq += 1

    def write_frameset(self, fs: FrameSet) -> None:
        """Write a set received from the stream (JPEG views are stored without re-encoding)."""
        reuse = self.writer.codec == "jpeg"
        views = [(v.camera, v.frame_index, v.t_ns,
                  fs.buffers[i] if (v.encoding == "jpeg" and reuse) else fs.image(i))
                 for i, v in enumerate(fs.views)]
        self.writer.write_set(fs.seq, fs.t_ref_ns, views, fs.missing)

    def close(self) -> None:
        self.writer.close()

    def __enter__(self) -> "Recorder":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


@dataclass
class RecordReport:
    """What a recording kept and lost.

    Attributes:
        sets: framesets written.
        seconds: wall time.
        gaps: framesets lost on the stream before the recorder (sequence gaps; stream mode).
        complete, incomplete: written sets with every camera / with cameras missing.
        missing: camera -> written sets without it.
        counts: the capture's own accounting (own-sources mode: :meth:`LiveRig.counts`, i.e.
            skipped, dropped per reason); empty in stream mode (the capture's status has it).
    """

    sets: int
    seconds: float
    gaps: int = 0
    complete: int = 0
    incomplete: int = 0
    missing: dict = field(default_factory=dict)
    counts: dict = field(default_factory=dict)

    def count(self, missing: Sequence[str]) -> None:
        """Account one written set lacking ``missing``."""
        if missing:
            self.incomplete += 1
            for cam in missing:
                self.missing[cam] = self.missing.get(cam, 0) + 1
        else:
            self.complete += 1

    def summary(self) -> dict:
        """The JSON summary ``selfpose3d record`` prints."""
        out = {"sets": self.sets, "complete": self.complete, "incomplete": self.incomplete,
               "missing": self.missing, "seconds": round(self.seconds, 2), "gaps": self.gaps}
        skipped = {k.split("/", 1)[1]: v for k, v in self.counts.items() if k.startswith("skipped/")}
        dropped = {k.split("/", 1)[1]: v for k, v in self.counts.items() if k.startswith("dropped/")}
        if skipped:
            out["skipped"] = skipped
        if dropped:
            out["dropped"] = dropped
        return out


def record_live(recorder: Recorder, live, stop: threading.Event, *, max_sets: int | None = None,
                duration_s: float | None = None) -> RecordReport:
    """Record from a :class:`capture.process.LiveRig` until stop/limit/end of its sources."""
    t0 = time.monotonic()
    report = RecordReport(0, 0.0)
    live.start()
    try:
        while not stop.is_set():
            for synced in live.poll(0.01):
                recorder.write_synced(synced)
                report.count(synced.missing)
                if max_sets is not None and recorder.sets_written >= max_sets:
                    stop.set()
                    break
            if live.ended or live.wrong_size or (duration_s is not None and time.monotonic() - t0 >= duration_s):
                break
    finally:
        live.stop()
    report.sets, report.seconds, report.counts = recorder.sets_written, time.monotonic() - t0, live.counts()
    return report


def record_stream(recorder: Recorder, subscriber, stop: threading.Event, *, max_sets: int | None = None,
                  duration_s: float | None = None) -> RecordReport:
    """Record framesets arriving on a :class:`capture.bus.Subscriber` (every one, in order)."""
    t0 = time.monotonic()
    report = RecordReport(0, 0.0)
    while not stop.is_set():
        if duration_s is not None and time.monotonic() - t0 >= duration_s:
            break
        msg = subscriber.recv(100)
        if isinstance(msg, FrameSet):
            recorder.write_frameset(msg)
            report.count(msg.missing)
            if max_sets is not None and recorder.sets_written >= max_sets:
                break
    report.sets, report.seconds, report.gaps = recorder.sets_written, time.monotonic() - t0, subscriber.stats.gaps
    return report
