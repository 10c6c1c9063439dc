"""selfpose3d-live on video rigs (issue 23): sources checked before start, a short replay ends
normally with its accounting, every frameset complete."""

from __future__ import annotations

import json

import pytest

from app.cli import live_main
from tests.app.test_live_cli import _run_live
from tests.capture.test_lockstep import H, W, media_rig


def test_missing_video_and_size_mismatch_are_one_line_before_start(tmp_path, toy_rig, capsys):
    """Items 4 and 12a: no process starts; the line names the camera and the fix."""
    rig = media_rig(tmp_path, toy_rig, frames=(3,) * 4, sizes={"cam2": (W, H - 2)})
    assert live_main(["--no-viewer", "--model", "light", "--rig", str(rig), "--duration", "5"]) == 2
    err = capsys.readouterr().err
    assert (
        f"cam2: frame {W}×{H - 2} but calibration says {W}×{H}: fix the calibration's image size or pass --resize"
        in err
    )
    assert "started" not in err and "Traceback" not in err
    (tmp_path / "cam1.mp4").unlink()
    assert live_main(["--no-viewer", "--model", "light", "--rig", str(rig), "--resize", "--duration", "5"]) == 2
    err = capsys.readouterr().err
    assert "camera 'cam1': video file" in err and "cam1.mp4 not found" in err and "Traceback" not in err


@pytest.mark.slow
def test_short_replay_ends_normally_with_every_frameset_complete(tmp_path, toy_rig):
    """Item 2: a non-looping 60 fps replay that ends (here possibly during start-up) exits 0 with
    'input ended after N framesets'; item 1: N framesets published, all complete."""
    rig = media_rig(tmp_path, toy_rig, frames=(120,) * 4)
    out, _ = _run_live(
        tmp_path,
        "--model",
        "light",
        "--rig",
        str(rig),
        "--duration",
        "120",
        "--set",
        "worker.compile=false",
        "--set",
        "worker.warmup=false",
    )  # start-up: seconds, not minutes
    summary = json.loads(out.stdout.strip().splitlines()[-1])
    cap = summary["capture"]
    assert summary["ended"] == f"input ended after {cap['published']} framesets"
    assert cap["published"] >= 1 and cap["complete"] == cap["published"] and cap["incomplete"] == 0
    assert len(set(cap["skipped"].values())) == 1  # every camera skipped the same frames
    assert summary["exit_codes"]["capture"] == 0


def test_rig_check_opens_every_media_source(tmp_path, toy_rig, capsys):
    """Item 12a: `selfpose3d rig` said "check ok" for a rig whose video file did not exist."""
    from app.cli import main

    rig = media_rig(tmp_path, toy_rig, frames=(3,) * 4)
    main(["rig", str(rig)])
    out = capsys.readouterr().out
    assert f"source cam0: file {W}x{H}, 60 fps, 3 frames" in out
    (tmp_path / "cam3.mp4").unlink()
    assert main(["rig", str(rig)]) == 1
    out = capsys.readouterr().out
    assert "source cam3: camera 'cam3': video file" in out and "not found" in out
    assert "check FAILED: some sources are missing" in out and "check ok" not in out
