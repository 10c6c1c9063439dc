"""Record a rig's framesets to a session folder (format: :mod:`capture.session`).

Framesets come either from the rig's own sources (:class:`capture.process.LiveRig`, in this
process) or from a capture stream (:class:`capture.bus.Subscriber`). Every set is flushed as it
is written, so a recorder killed at any moment leaves a readable session.

Disk use is bounded (:class:`DiskBudget`): a recording refuses to start when the disk cannot hold
a minute of the rig (:func:`check_disk_space`), and stops cleanly (the session stays readable)
at its size limit or when the free space falls to the reserve; a failed write (disk full) stops
it the same way, with a clear reason in :class:`RecordReport` instead of a traceback.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from capture.messages import FrameSet
from capture.session import RIG_NAME, RecordingStopped, SessionError, SessionWriter
from capture.sync import SyncedSet

log = logging.getLogger(__name__)

# stored bytes per pixel, measured on the Pose2Sim demo footage (1088x1920): JPEG q95 0.15, PNG 0.60
BYTES_PER_PIXEL = {"jpeg": 0.15, "png": 0.60}
DEFAULT_RESERVE_FRACTION = 0.05  # without an explicit limit, leave 5 % of the disk free
GB = 1e9


def estimate_bytes_per_s(rig, cameras: Sequence[str], codec: str = "jpeg", fps: float | None = None) -> float:
    """Expected session growth in bytes/s: every camera's pixels x fps x stored bytes per pixel."""
    from capture.process import rig_fps

    rate = fps or rig_fps(rig, cameras)
    return sum(rig.cameras[c].width * rig.cameras[c].height for c in cameras) * rate * BYTES_PER_PIXEL[codec]


@dataclass(frozen=True)
class DiskBudget:
    """How much a recording may write.

    Attributes:
        limit_bytes: stop once the session holds this much (None: no size limit).
        reserve_bytes: stop when the disk's free space falls below this.
    """

    limit_bytes: float | None
    reserve_bytes: float

    @classmethod
    def for_path(cls, path: str | Path, max_gb: float | None) -> "DiskBudget":
        """``max_gb`` as the limit, or by default no size limit and 5 % of the disk kept free."""
        import shutil

        if max_gb is not None:
            if max_gb <= 0:
                raise SessionError(f"--record-max-gb {max_gb}: must be > 0")
            return cls(max_gb * GB, 0.0)
        return cls(None, DEFAULT_RESERVE_FRACTION * shutil.disk_usage(_existing_parent(path)).total)

    def stop_reason(self, written_bytes: int, free_bytes: float) -> str:
        """'' while the recording may go on, else why it must stop."""
        if self.limit_bytes is not None and written_bytes >= self.limit_bytes:
            return f"size limit reached ({written_bytes / 1e6:.0f} MB)"
        if free_bytes < self.reserve_bytes:
            return f"disk nearly full (free {free_bytes / 1e6:.0f} MB < reserve {self.reserve_bytes / 1e6:.0f} MB)"
        return ""


def _existing_parent(path: str | Path) -> Path:
    p = Path(path).resolve()
    while not p.exists():
        p = p.parent
    return p


def check_disk_space(path: str | Path, bytes_per_s: float, budget: DiskBudget, what: str = "--record") -> None:
    """Refuse a recording whose disk cannot take one minute of the rig.

    Raises:
        SessionError: one line with the free space, the need and the fix.
    """
    import shutil

    where = _existing_parent(path)
    room = shutil.disk_usage(where).free - budget.reserve_bytes  # a smaller explicit limit is the user's choice
    need = 60.0 * bytes_per_s
    if room < need:
        raise SessionError(
            f"{what} {path}: {max(room, 0) / 1e6:.0f} MB usable on {where} "
            f"(keeping {budget.reserve_bytes / 1e6:.0f} MB free), the rig "
            f"needs about {need / 1e6:.0f} MB per minute ({bytes_per_s / 1e6:.1f} MB/s); free space, record "
            "elsewhere, or record fewer cameras"
        )


class DiskMeter:
    """Bytes written, MB/s and the budget check of one recording (free space read at most every
    ``check_every_s``; statvfs costs microseconds, so by default after every set)."""

    def __init__(self, path: str | Path, budget: DiskBudget | None, check_every_s: float = 0.0) -> None:
        self.path = _existing_parent(path)
        self.budget = budget
        self.check_every_s = check_every_s
        self._t0 = time.monotonic()
        self._last_check = -1e9
        self._rate_t, self._rate_bytes, self.mb_per_s = self._t0, 0, 0.0

    def update(self, written_bytes: int) -> str:
        """Refresh MB/s; '' while the recording may go on, else why it must stop."""
        import shutil

        now = time.monotonic()
        if now - self._rate_t >= 1.0:
            self.mb_per_s = (written_bytes - self._rate_bytes) / (now - self._rate_t) / 1e6
            self._rate_t, self._rate_bytes = now, written_bytes
        if self.budget is None or now - self._last_check < self.check_every_s:
            return ""
        self._last_check = now
        return self.budget.stop_reason(written_bytes, shutil.disk_usage(self.path).free)

    @staticmethod
    def line(sets: int, written_bytes: int, mb_per_s: float) -> str:
        return f"recorded {sets} sets, {written_bytes / 1e6:.0f} MB, {mb_per_s:.1f} MB/s"


def save_session_rig(rig, cameras: Sequence[str], session_dir: str | Path) -> Path:
    """Write ``rig.yaml`` into the session: calibration inline, every source this session."""
    from calib.rig_config import SourceConfig, save_rig

    subset = rig.cameras.subset(cameras)
    return save_rig(
        subset,
        Path(session_dir) / RIG_NAME,
        name=rig.name,
        volume=rig.volume,
        sources=[SourceConfig(kind="session", uri=".") for _ in cameras],
        skeleton=rig.config.skeleton,
        synthetic=rig.config.synthetic,
    )


class Recorder:
    """Writes framesets of one rig to a new session.

    Args:
        session_dir: new folder.
        rig: the loaded rig (``calib.rig_config.Rig``); None writes no rig.yaml.
        cameras: the recorded cameras, in rig order.
        rig_name: rig name (defaults to ``rig.name``).
        codec, jpeg_quality: see :class:`capture.session.SessionWriter`.
    """

    def __init__(
        self,
        session_dir: str | Path,
        rig,
        cameras: Sequence[str],
        *,
        rig_name: str | None = None,
        codec: str = "jpeg",
        jpeg_quality: int = 95,
    ) -> None:
        name = rig_name or rig.name
        self.writer = SessionWriter(session_dir, cameras, rig_name=name, codec=codec, jpeg_quality=jpeg_quality)
        if rig is not None:
            try:
                save_session_rig(rig, cameras, session_dir)
            except OSError as exc:
                self.writer.close()
                raise SessionError(
                    f"{session_dir}: cannot write {RIG_NAME}: {exc.strerror or exc} (free space or record elsewhere)"
                ) from None
        self._seq = 0

    @property
    def sets_written(self) -> int:
        return self.writer.sets_written

    @property
    def bytes_written(self) -> int:
        return self.writer.bytes_written

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
        views = [
            (v.camera, v.frame_index, v.t_ns, fs.buffers[i] if (v.encoding == "jpeg" and reuse) else fs.image(i))
            for i, v in enumerate(fs.views)
        ]
        self.writer.write_set(fs.seq, fs.t_ref_ns, views, fs.missing)

    def close(self) -> None:
        self.writer.close()

    def __enter__(self) -> "Recorder":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


@dataclass
class RecordReport:
    """What a recording kept, lost and wrote.

    Attributes:
        sets: framesets written (all readable).
        seconds: wall time.
        gaps: framesets lost on the stream before the recorder (sequence gaps; stream mode).
        complete, incomplete: written sets with every camera / with cameras missing.
        missing: camera -> written sets without it.
        counts: the capture's own accounting (own-sources mode: :meth:`LiveRig.counts`, i.e.
            skipped, dropped per reason); empty in stream mode (the capture's status has it).
        bytes: bytes written.
        stopped: why it stopped early ('' if it ran to its end): a size limit, a nearly full
            disk, or a failed write (``disk full``...).
        failed: True when a write failed (the recording could not keep up its job).
    """

    sets: int
    seconds: float
    gaps: int = 0
    complete: int = 0
    incomplete: int = 0
    missing: dict = field(default_factory=dict)
    counts: dict = field(default_factory=dict)
    bytes: int = 0
    stopped: str = ""
    failed: bool = False

    def count(self, missing: Sequence[str]) -> None:
        """Account one written set lacking ``missing``."""
        if missing:
            self.incomplete += 1
            for cam in missing:
                self.missing[cam] = self.missing.get(cam, 0) + 1
        else:
            self.complete += 1

    def summary(self) -> dict:
        """The JSON summary the commands print."""
        out = {
            "sets": self.sets,
            "complete": self.complete,
            "incomplete": self.incomplete,
            "missing": self.missing,
            "seconds": round(self.seconds, 2),
            "gaps": self.gaps,
            "megabytes": round(self.bytes / 1e6, 1),
            "mb_per_s": round(self.bytes / 1e6 / self.seconds, 1) if self.seconds > 0 else 0.0,
        }
        skipped = {k.split("/", 1)[1]: v for k, v in self.counts.items() if k.startswith("skipped/")}
        dropped = {k.split("/", 1)[1]: v for k, v in self.counts.items() if k.startswith("dropped/")}
        if skipped:
            out["skipped"] = skipped
        if dropped:
            out["dropped"] = dropped
        if "slipped_ms" in self.counts:
            out["slipped_s"] = self.counts["slipped_ms"] / 1000  # replay behind real time (decode-bound)
        if self.stopped:
            out["stopped"] = self.stopped
        return out


def _recording(
    recorder: Recorder,
    report: RecordReport,
    budget: DiskBudget | None,
    on_progress,
    progress_every_s: float,
    max_sets: int | None,
):
    """The step both record loops take per frameset: ``step(write, missing)`` writes it (``write()``),
    counts it, meters the disk and reports progress; False when recording must stop (a failed
    write, the disk budget, or ``max_sets``), with ``report.stopped`` / ``report.failed`` set."""
    meter = DiskMeter(recorder.writer.path, budget)
    last = [time.monotonic()]

    def step(write, missing) -> bool:
        try:
            write()
        except RecordingStopped as exc:
            report.stopped, report.failed = exc.reason, True
            return False
        report.count(missing)
        report.stopped = meter.update(recorder.bytes_written)
        if on_progress is not None and time.monotonic() - last[0] >= progress_every_s:
            last[0] = time.monotonic()
            on_progress(recorder.sets_written, recorder.bytes_written, meter.mb_per_s)
        return not report.stopped and (max_sets is None or recorder.sets_written < max_sets)

    return step


def record_live(
    recorder: Recorder,
    live,
    stop: threading.Event,
    *,
    max_sets: int | None = None,
    duration_s: float | None = None,
    budget: DiskBudget | None = None,
    on_progress=None,
    progress_every_s: float = 2.0,
) -> RecordReport:
    """Record from a :class:`capture.process.LiveRig` until stop/limit/end of its sources, the
    disk budget, or a failed write. ``on_progress(sets, bytes, mb_per_s)`` is called every
    ``progress_every_s``."""
    t0 = time.monotonic()
    report = RecordReport(0, 0.0)
    step = _recording(recorder, report, budget, on_progress, progress_every_s, max_sets)
    live.start()
    try:
        while not stop.is_set() and not report.stopped:
            for synced in live.poll(0.01):
                if not step(lambda synced=synced: recorder.write_synced(synced), synced.missing):
                    stop.set()
                    break
            if live.ended or live.wrong_size or (duration_s is not None and time.monotonic() - t0 >= duration_s):
                break
    finally:
        live.stop()
    report.sets, report.seconds, report.counts = recorder.sets_written, time.monotonic() - t0, live.counts()
    report.bytes = recorder.bytes_written
    return report


def record_stream(
    recorder: Recorder,
    subscriber,
    stop: threading.Event,
    *,
    max_sets: int | None = None,
    duration_s: float | None = None,
    budget: DiskBudget | None = None,
    on_progress=None,
    progress_every_s: float = 2.0,
) -> RecordReport:
    """Record framesets arriving on a :class:`capture.bus.Subscriber` (every one, in order), until
    stop/limit, the disk budget or a failed write (see :func:`record_live`)."""
    t0 = time.monotonic()
    report = RecordReport(0, 0.0)
    step = _recording(recorder, report, budget, on_progress, progress_every_s, max_sets)
    while not stop.is_set() and not report.stopped:
        if duration_s is not None and time.monotonic() - t0 >= duration_s:
            break
        msg = subscriber.recv(100)
        if isinstance(msg, FrameSet) and not step(lambda msg=msg: recorder.write_frameset(msg), msg.missing):
            break
    report.sets, report.seconds, report.gaps = recorder.sets_written, time.monotonic() - t0, subscriber.stats.gaps
    report.bytes = recorder.bytes_written
    return report
