"""Bounded disk use of recordings: a failed write (disk full) stops recording with a clear line
and a readable session; a size limit and the 5 % reserve stop it cleanly; a disk that cannot
take a minute of the rig is refused before recording starts."""

from __future__ import annotations

import errno
import json
import subprocess
import sys
from pathlib import Path

import pytest

from capture.recorder import DiskBudget, check_disk_space
from capture.session import RecordingStopped, SessionError, SessionReader, SessionWriter

from .conftest import green_level, pattern_image

REPO = Path(__file__).resolve().parents[2]


class _FullAfter:
    """File wrapper whose writes fail with ENOSPC once ``budget`` bytes went through."""

    def __init__(self, f, budget: list) -> None:
        self._f, self._budget = f, budget

    def write(self, data) -> int:
        n = len(data)
        if self._budget[0] < n:
            part = max(self._budget[0], 0)
            self._f.write(bytes(data[:part]))  # a partial write, as a full disk leaves it
            self._budget[0] = 0
            raise OSError(errno.ENOSPC, "No space left on device")
        self._budget[0] -= n
        return self._f.write(data)

    def __getattr__(self, name):
        return getattr(self._f, name)


def test_disk_full_mid_set_stops_with_a_readable_session(tmp_path):
    w = SessionWriter(tmp_path / "s", ("a", "b"), rig_name="toy", codec="png")
    for k in range(3):
        w.write_set(k, k, [(c, k, k, pattern_image(k)) for c in ("a", "b")])
    budget = [len(w.encode_image(pattern_image(3))) + 10]  # camera a's frame fits, b's does not
    w._files = {c: _FullAfter(f, budget) for c, f in w._files.items()}
    w._index = _FullAfter(w._index, budget)
    with pytest.raises(RecordingStopped, match="disk full: 3 framesets kept and readable") as exc:
        w.write_set(3, 3, [(c, 3, 3, pattern_image(3)) for c in ("a", "b")])
    assert exc.value.reason == "disk full" and exc.value.sets_kept == 3
    with pytest.raises(RecordingStopped):  # nothing more is written
        w.write_set(4, 4, [("a", 4, 4, pattern_image(4))])
    w.close()  # no second traceback from the buffered tail
    r = SessionReader(tmp_path / "s")
    assert [s.seq for s in r.sets] == [0, 1, 2]
    assert all(green_level(r.image(v)) == s.seq for s in r.sets for v in s.views)


def test_budget_rules():
    b = DiskBudget(limit_bytes=1e6, reserve_bytes=0.0)
    assert b.stop_reason(999_999, 1e9) == "" and "size limit" in b.stop_reason(1_000_000, 1e9)
    r = DiskBudget(limit_bytes=None, reserve_bytes=5e8)
    assert r.stop_reason(10**12, 6e8) == "" and "disk nearly full" in r.stop_reason(0, 4e8)
    with pytest.raises(SessionError, match="0 MB usable .* needs about 600 MB per minute"):
        check_disk_space("/tmp/x", 10e6, DiskBudget(limit_bytes=None, reserve_bytes=1e15))
    with pytest.raises(SessionError, match="must be > 0"):
        DiskBudget.for_path("/tmp", 0.0)


@pytest.fixture
def tiny_disk(tmp_path):
    """A 5 MB tmpfs (needs root); skipped where it cannot be mounted."""
    mnt = tmp_path / "disk"
    mnt.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=5m", "tmpfs", str(mnt)], capture_output=True).returncode:
        pytest.skip("cannot mount a tmpfs here (not root?)")
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)], check=False)


def _record(out: Path, rig: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "app.cli",
            "record",
            str(out),
            "--rig",
            str(rig),
            "--max-speed",
            "--codec",
            "jpeg",
            *extra,
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _looping(image_rig) -> Path:
    text = Path(image_rig).read_text().replace("realtime: false", "realtime: false, loop: true")
    Path(image_rig).write_text(text)
    return Path(image_rig)


def test_record_on_a_full_disk_ends_with_a_clear_line_and_a_readable_session(tiny_disk, image_rig):
    out = tiny_disk / "take"
    proc = _record(out, _looping(image_rig), "--max-gb", "1", "--seconds", "60")  # the limit is beyond the disk
    assert proc.returncode == 1, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr and "recording stopped" not in proc.stdout
    assert "record: stopped, disk full:" in proc.stderr and "(readable)" in proc.stderr
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    r = SessionReader(out)
    assert summary["stopped"] == "disk full" and len(r.sets) == summary["sets"] > 50
    for s in r.sets[-3:]:
        for v in s.views:
            assert green_level(r.image(v)) == v.frame_index % 6


def test_record_stops_cleanly_at_the_reserve_and_at_its_limit(tiny_disk, image_rig):
    rig = _looping(image_rig)
    proc = _record(tiny_disk / "reserve", rig, "--seconds", "60")  # default: keep 5 % free
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "disk nearly full" in json.loads(proc.stdout.strip().splitlines()[-1])["stopped"]
    assert len(SessionReader(tiny_disk / "reserve").sets) > 50
    limited = tiny_disk.parent / "limited"
    proc = _record(limited, rig, "--max-gb", "0.0003", "--seconds", "60")
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    assert proc.returncode == 0 and "size limit reached" in summary["stopped"]
    assert 0.3 <= summary["megabytes"] < 0.4 and len(SessionReader(limited).sets) == summary["sets"]


def test_record_refuses_a_disk_that_cannot_take_a_minute(tiny_disk, image_rig):
    (tiny_disk / "filler").write_bytes(b"\0" * (4_200_000))
    proc = _record(tiny_disk / "take", Path(image_rig))
    assert proc.returncode == 2 and "needs about" in proc.stderr and "MB per minute" in proc.stderr
    assert "Traceback" not in proc.stderr and not (tiny_disk / "take").exists()


def test_progress_reports_megabytes_and_rate(tmp_path):
    import threading

    import numpy as np

    from capture.messages import FrameSet, View
    from capture.recorder import DiskMeter, Recorder, record_stream

    class Stream:
        class stats:
            gaps = 0

        def __init__(self):
            self.seq = 0

        def recv(self, timeout_ms):
            img = pattern_image(self.seq)
            self.seq += 1
            return FrameSet(
                "toy",
                self.seq,
                self.seq,
                self.seq,
                (View("a", self.seq, self.seq, 64, 48, "bgr8", img.nbytes),),
                (img,),
            )

    lines = []
    with Recorder(tmp_path / "s", None, ["a"], rig_name="toy") as rec:
        report = record_stream(
            rec,
            Stream(),
            threading.Event(),
            max_sets=5,
            budget=DiskBudget(None, 0.0),
            on_progress=lambda *a: lines.append(DiskMeter.line(*a)),
            progress_every_s=0.0,
        )
    assert report.sets == 5 and report.bytes == rec.bytes_written > 0 and not report.stopped
    assert len(lines) == 5 and lines[-1].startswith("recorded 5 sets, ") and lines[-1].endswith("MB/s")
    assert report.summary()["megabytes"] == round(report.bytes / 1e6, 1)
    assert np.isfinite(report.summary()["mb_per_s"])
