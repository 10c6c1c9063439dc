"""Replay: deterministic framesets from sessions and Panoptic trees, pacing, and the
`selfpose3d replay` command publishing to a real subscriber."""

from __future__ import annotations

import subprocess
import sys
import threading
import time

import cv2
import numpy as np
import pytest

from calib.common.paths import REPO_ROOT
from capture.bus import Publisher, Subscriber
from capture.messages import FrameSet, Status
from capture.replay import panoptic_framesets, replay, session_framesets
from capture.session import SessionReader, SessionWriter

from .conftest import green_level, pattern_image

REPO = REPO_ROOT
PERIOD_NS = 50_000_000


def _session(path, n=8, codec="jpeg"):
    with SessionWriter(path, ["a", "b"], rig_name="toy", codec=codec) as w:
        for k in range(n):
            t = 5_000_000_000 + k * PERIOD_NS
            w.write_set(100 + k, t, [("a", k, t, pattern_image(k)), ("b", k, t + 1_000_000, pattern_image(k))])
    return SessionReader(path)


def test_session_framesets_are_deterministic_and_keep_original_times(tmp_path):
    reader = _session(tmp_path / "s")
    a = list(session_framesets(reader))
    b = list(session_framesets(reader))
    assert [f.seq for f in a] == list(range(100, 108))
    for x, y in zip(a, b):
        assert x.views == y.views and x.t_ref_ns == y.t_ref_ns
        assert all(np.array_equal(x.image(i), y.image(i)) for i in range(2))
    assert a[3].views[1].t_ns == 5_000_000_000 + 3 * PERIOD_NS + 1_000_000 and a[3].skew_ms == pytest.approx(1.0)
    assert [green_level(f.image(0)) for f in a] == list(range(8))
    jpeg = list(session_framesets(reader, encoding="jpeg", cameras=["b"]))
    assert jpeg[0].cameras == ["b"] and jpeg[0].views[0].encoding == "jpeg" and jpeg[0].missing == ()
    reordered = next(iter(session_framesets(reader, cameras=["b", "z", "a"])))
    assert reordered.cameras == ["b", "a"] and reordered.missing == ("z",)
    assert (jpeg[0].views[0].width, jpeg[0].views[0].height) == (64, 48)
    assert bytes(jpeg[0].buffers[0]) == reader.image_bytes(reader.sets[0].views[1])  # passed through


def test_replay_paces_at_original_speed_or_max(tmp_path, ipc_endpoint):
    sets = list(session_framesets(_session(tmp_path / "s", n=6)))
    with Publisher(ipc_endpoint) as pub, Subscriber(ipc_endpoint) as sub:
        assert pub.wait_for_subscriber(5)
        stop = threading.Event()
        t0 = time.perf_counter()
        report = replay(iter(sets), pub, stop, speed=1.0, wait_ms=1000)
        elapsed = time.perf_counter() - t0
        assert report.sent == 6 and elapsed >= 5 * 0.05 - 0.005
        got = []
        while (m := sub.recv(300)) is not None:
            got.append(m)
        assert [m.seq for m in got] == [s.seq for s in sets]
        assert all(m.t_pub_ns > 0 and m.views == s.views for m, s in zip(got, sets))
        t0 = time.perf_counter()
        report = replay(iter(sets), pub, stop, speed=None, wait_ms=1000)
        assert report.sent == 6 and time.perf_counter() - t0 < 0.2
        t0 = time.perf_counter()
        replay(iter(sets), pub, stop, speed=4.0)  # nobody reads now: drops, never waits
        assert 0.25 / 4 - 0.005 <= time.perf_counter() - t0 < 0.25


def _panoptic_tree(root, cams=("00_03", "00_06"), numbers=range(168, 173), skip=(("00_06", 170),)):
    for cam in cams:
        d = root / "hdImgs" / cam
        d.mkdir(parents=True)
        for n in numbers:
            if (cam, n) not in skip:
                cv2.imwrite(str(d / f"{cam}_{n:08d}.jpg"), pattern_image(n - 160))


def test_panoptic_framesets_group_by_frame_number(tmp_path):
    seq = tmp_path / "160906_pizza1"
    _panoptic_tree(seq)
    sets = list(panoptic_framesets(seq, ["00_03", "00_06"], rig="pizza", start_ns=7))
    assert [s.seq for s in sets] == list(range(5))
    assert [s.views[0].frame_index for s in sets] == list(range(168, 173))
    assert sets[2].missing == ("00_06",) and sets[2].cameras == ["00_03"]
    assert all(s.complete if hasattr(s, "complete") else True for s in sets)
    assert [s.t_ref_ns for s in sets] == [7 + round(k * 1e9 / 29.97) for k in range(5)]
    assert all(v.t_ns == s.t_ref_ns for s in sets for v in s.views)  # genlocked: zero skew
    assert green_level(sets[4].image(1)) == 12
    again = list(panoptic_framesets(seq, ["00_03", "00_06"], rig="pizza", start_ns=7, first_frame=170, last_frame=171))
    assert [s.views[0].frame_index for s in again] == [170, 171]


def _panoptic_calibration(seq, toy_rig, names=("00_03", "00_06", "00_12")):
    from calib.camera import CameraRig
    from calib.io_panoptic import save_panoptic_calibration

    rig = CameraRig(tuple(c.replace(name=n) for c, n in zip(toy_rig, names)))
    save_panoptic_calibration(rig, seq / f"calibration_{seq.name}.json")
    return rig


def test_replay_command_publishes_a_panoptic_sequence(tmp_path, ipc_endpoint, toy_rig):
    from calib.rig_config import load_rig

    seq = tmp_path / "160906_pizza1"
    _panoptic_tree(seq, cams=("00_03", "00_06", "00_12"))
    cams = _panoptic_calibration(seq, toy_rig)
    sub = Subscriber(ipc_endpoint)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "app.cli",
            "replay",
            str(seq),
            "--endpoint",
            ipc_endpoint,
            "--max-speed",
            "--lossless",
            "--wait-subscriber",
            "20",
            "--write-rig",
            str(tmp_path / "pizza.yaml"),
        ],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        got, statuses = [], []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            m = sub.recv(200)
            if isinstance(m, FrameSet):
                got.append(m)
            elif isinstance(m, Status):
                statuses.append(m.state)
                if m.state == "stopping":
                    break
        out, err = proc.communicate(timeout=30)
    finally:
        sub.close()
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err.decode()[-2000:]
    assert [m.seq for m in got] == list(range(5)) and got[0].rig == "160906_pizza1"
    assert got[0].cameras == ["00_03", "00_06", "00_12"] and got[2].missing == ("00_06",)
    assert statuses[-1] == "stopping"
    assert b'"sent": 5' in out
    rig = load_rig(tmp_path / "pizza.yaml")  # the sequence's own calibration, as a replayable rig
    assert rig.name == "160906_pizza1" and rig.names == ["00_03", "00_06", "00_12"]
    assert rig.source("00_06").kind == "panoptic" and rig.source("00_06").uri == str(seq.resolve())
    np.testing.assert_allclose(rig.cameras["00_12"].center_mm, cams["00_12"].center_mm, atol=1e-6)


def test_replay_as_a_named_rig(tmp_path, toy_rig):
    import argparse

    from app.commands.replay import _framesets
    from calib.rig_config import SourceConfig, save_rig

    seq = tmp_path / "seq"
    _panoptic_tree(seq, cams=("00_03", "00_06", "00_12"))
    cams = _panoptic_calibration(seq, toy_rig)
    rig_path = save_rig(
        cams.subset(["00_12", "00_03"]),
        tmp_path / "lab.yaml",
        name="lab",
        sources=[SourceConfig(kind="panoptic", uri=str(seq))] * 2,
    )
    args = argparse.Namespace(
        source=str(seq), cameras=None, rig=str(rig_path), write_rig=None, first_frame=None, last_frame=None
    )
    name, sets = _framesets(args, "bgr8")
    first = next(iter(sets))
    assert name == "lab" and first.rig == "lab" and first.cameras == ["00_12", "00_03"]
