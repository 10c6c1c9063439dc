"""Session format and recorder: round trips, truncated tails, recording from the stream, and a
recorder killed with SIGKILL leaves a readable session."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from calib.common.paths import REPO_ROOT
from capture.messages import FrameSet, View
from capture.recorder import Recorder
from capture.session import INDEX_NAME, SessionError, SessionReader, SessionWriter

from .conftest import green_level, pattern_image

REPO = REPO_ROOT


def _write(path, n=5, codec="png", cams=("a", "b")):
    with SessionWriter(path, cams, rig_name="toy", codec=codec) as w:
        for k in range(n):
            views = [
                (c, k, 1000 + k * 50 + i, pattern_image(k)) for i, c in enumerate(cams) if not (c == "b" and k == 2)
            ]
            w.write_set(k, 1000 + k * 50, views, missing=("b",) if k == 2 else ())


def test_session_round_trip_png_is_exact(tmp_path):
    _write(tmp_path / "s")
    with SessionReader(tmp_path / "s") as r:
        assert r.rig_name == "toy" and r.cameras == ("a", "b") and r.codec == "png" and not r.truncated
        assert [s.seq for s in r.sets] == list(range(5))
        assert r.sets[2].missing == ("b",) and [v.camera for v in r.sets[2].views] == ["a"]
        v = r.sets[3].views[1]
        assert (v.camera, v.frame_index, v.t_ns) == ("b", 3, 1151)
        np.testing.assert_array_equal(r.image(v), pattern_image(3))
        assert len(list(r.views_of("b"))) == 4
        assert r.duration_s == pytest.approx(200e-9)
    with pytest.raises(SessionError, match="already holds a session"):
        SessionWriter(tmp_path / "s", ["a"], rig_name="toy")


def test_jpeg_session_is_a_playable_mjpeg_stream(tmp_path):
    import cv2

    _write(tmp_path / "s", codec="jpeg")
    with SessionReader(tmp_path / "s") as r:
        assert [green_level(r.image(v)) for v in r.views_of("a")] == list(range(5))
    data = (tmp_path / "s" / "a.mjpeg").read_bytes()
    assert data[:2] == b"\xff\xd8" and data.count(b"\xff\xd8\xff") == 5  # 5 concatenated JPEGs
    cap = cv2.VideoCapture(str(tmp_path / "s" / "a.mjpeg"))  # FFmpeg reads it as a video
    n = 0
    while cap.read()[0]:
        n += 1
    assert n == 5


def test_reader_tolerates_truncated_tail(tmp_path):
    _write(tmp_path / "s", n=6)
    index = tmp_path / "s" / INDEX_NAME
    full = index.read_bytes()
    index.write_bytes(full[:-7])  # last record cut in the middle
    r = SessionReader(tmp_path / "s")
    assert len(r.sets) == 5 and r.truncated
    index.write_bytes(full)
    img = tmp_path / "s" / "b.pngs"
    last_b = list(SessionReader(tmp_path / "s").views_of("b"))[-1]
    img.write_bytes(img.read_bytes()[: last_b.offset + 10])  # image file cut before the index
    r = SessionReader(tmp_path / "s")
    assert len(r.sets) == 5 and r.truncated  # the record that points past the file is ignored
    with pytest.raises(SessionError, match="not a session"):
        SessionReader(tmp_path)


def test_record_frameset_from_stream_keeps_jpeg_bytes(tmp_path, image_rig):
    import cv2

    from calib.rig_config import load_rig

    rig = load_rig(image_rig)
    jpg = cv2.imencode(".jpg", pattern_image(4))[1].tobytes()
    fs = FrameSet("toy", 9, 10, 11, (View("cam0", 4, 10, 64, 48, "jpeg", len(jpg)),), (jpg,), missing=("cam1",))
    with Recorder(tmp_path / "s", rig, ["cam0", "cam1"]) as rec:
        rec.write_frameset(fs)
    r = SessionReader(tmp_path / "s")
    assert r.image_bytes(r.sets[0].views[0]) == jpg and r.sets[0].seq == 9 and r.sets[0].missing == ("cam1",)
    session_rig = load_rig(tmp_path / "s" / "rig.yaml")
    assert session_rig.names == ["cam0", "cam1"] and session_rig.source("cam0").kind == "session"
    assert session_rig.source("cam0").uri == str((tmp_path / "s").resolve())
    np.testing.assert_allclose(session_rig.cameras["cam1"].K, rig.cameras["cam1"].K)


def test_recorder_killed_with_sigkill_leaves_a_readable_session(tmp_path, image_rig):
    """`selfpose3d record` on looping image folders, killed mid-run: every indexed set reads."""
    from calib.rig_config import load_rig

    rig_text = Path(image_rig).read_text().replace("realtime: false", "realtime: false, loop: true")
    Path(image_rig).write_text(rig_text)
    out = tmp_path / "session"
    proc = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "record", str(out), "--rig", str(image_rig), "--max-speed"],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        index = out / INDEX_NAME
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and (not index.exists() or index.stat().st_size < 3000):
            time.sleep(0.05)
        assert index.exists(), proc.stderr.read().decode()[-2000:] if proc.poll() is not None else "no index"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL
    r = SessionReader(out)
    assert len(r.sets) >= 10
    assert [s.views[0].frame_index for s in r.sets] == list(range(len(r.sets)))  # --max-speed is lossless
    for s in r.sets:
        assert sorted([v.camera for v in s.views] + list(s.missing)) == ["cam0", "cam1", "cam2", "cam3"]
        for v in s.views:
            assert green_level(r.image(v)) == v.frame_index % 6  # the image the index says
    rig = load_rig(out / "rig.yaml")
    assert rig.names == ["cam0", "cam1", "cam2", "cam3"]


def test_session_source_original_or_retimed_timestamps(tmp_path):
    from capture.source import SourceError, ThreadedReader
    from capture.sources.session import SessionSource

    _write(tmp_path / "s", n=4)
    with SessionSource("b", tmp_path / "s", realtime=False) as src:
        frames = list(src.frames())
    assert [(f.frame_index, f.t_ns) for f in frames] == [(0, 1001), (1, 1051), (3, 1151)]  # b missed frame 2
    np.testing.assert_array_equal(frames[2].image, pattern_image(3))
    with SessionSource("a", tmp_path / "s", realtime=False, retime=True, start_ns=10**6, loop=True) as src:
        looped = [src.read() for _ in range(6)]
    assert [f.t_ns - 10**6 for f in looped] == [0, 50, 100, 150, 200, 250]  # period 50 ns, laps continue
    with pytest.raises(SourceError, match="not in session"):
        SessionSource("zz", tmp_path / "s").open()
    with ThreadedReader(SessionSource("a", tmp_path / "s", realtime=False)) as reader:
        end = time.monotonic() + 5
        while not reader.ended and time.monotonic() < end:
            time.sleep(0.01)
    assert reader.take().frame_index == 3 and reader.frames_read == 4


def test_garbage_index_is_a_clear_error(tmp_path):
    (tmp_path / INDEX_NAME).write_bytes(b"garbage")
    with pytest.raises(SessionError, match="missing the session header"):
        SessionReader(tmp_path)
    out = subprocess.run(
        [sys.executable, "-m", "app.cli", "replay", str(tmp_path)], cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 2 and out.stderr.startswith("error: ") and "Traceback" not in out.stderr
