"""``selfpose3d predict`` end to end on a tiny checkpoint: folder layouts (ours, Panoptic, ``synth``),
frame pairing by number, missing views, undecodable images, JSON and NPZ."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from app.cli import main
from calib.io import save_calibration
from engine.checkpoints import save_checkpoint
from engine.model import build_model

from .conftest import make_rig, tiny_config


def test_predict_writes_json_and_npz(tmp_path):
    rig = make_rig()
    calib = save_calibration(rig, tmp_path / "rig.yaml")
    ckpt = save_checkpoint(tmp_path / "tiny.pt", build_model(tiny_config()))
    rng = np.random.default_rng(0)
    multi = tmp_path / "multi"
    for cam in rig.names:
        (multi / cam).mkdir(parents=True)
        for frame in ("000001", "000002"):
            if cam == "cam3" and frame == "000002":
                continue  # a dropped view
            cv2.imwrite(str(multi / cam / f"{frame}.png"), rng.integers(0, 255, (360, 640, 3), dtype=np.uint8))
    out = tmp_path / "preds.json"
    args = [
        "predict",
        "--images",
        str(multi),
        "--calibration",
        str(calib),
        "--checkpoint",
        str(ckpt),
        "--out",
        str(out),
        "--device",
        "cpu",
    ]
    assert main(args) == 2  # frame 2 lacks cam3: refused by default
    assert not out.exists()
    rc = main(args + ["--allow-missing-views"])
    assert rc == 0
    data = json.loads(out.read_text())
    assert data["cameras"] == rig.names and [f["frame"] for f in data["frames"]] == [1, 2]
    assert data["frames"][1]["views_present"] == [True, True, True, False, True]
    assert len(data["frames"][0]["proposals"]) == tiny_config().root_net.max_people

    single = tmp_path / "single"
    single.mkdir()
    for cam in rig.names[:4]:
        cv2.imwrite(str(single / f"{cam}.jpg"), rng.integers(0, 255, (360, 640, 3), dtype=np.uint8))
    npz = tmp_path / "preds.npz"
    rc = main(
        [
            "predict",
            "--images",
            str(single),
            "--calibration",
            str(calib),
            "--cameras",
            *rig.names[:4],
            "--checkpoint",
            str(ckpt),
            "--out",
            str(npz),
            "--device",
            "cpu",
        ]
    )
    assert rc == 0
    arrays = np.load(npz)
    assert arrays["candidates"].shape == (1, tiny_config().root_net.max_people, 15, 5)
    assert list(arrays["cameras"]) == rig.names[:4]


def _synth_tree(tmp_path):
    """``selfpose3d synth`` output: OUT/synth_000/hdImgs/<cam>/<cam>_<8 digits>.jpg, 4 frames of 5 cameras."""
    out = tmp_path / "synth"
    assert main(["synth", "--seconds", "1", "--fps", "4", "--media", "images", "--out", str(out)]) == 0
    seq = out / "synth_000"
    return out, seq, seq / "calibration_synth_000.json"


def test_predict_pairs_our_panoptic_tree_by_frame_number(tmp_path, capsys):
    out, seq, calib = _synth_tree(tmp_path)
    ckpt = save_checkpoint(tmp_path / "tiny.pt", build_model(tiny_config()))
    preds = tmp_path / "preds.json"
    args = ["predict", "--calibration", str(calib), "--checkpoint", str(ckpt), "--out", str(preds), "--device", "cpu"]
    for images in (out, seq, seq / "hdImgs"):  # synth --out DIR, the sequence folder, hdImgs
        assert main(args + ["--images", str(images)]) == 0
        data = json.loads(preds.read_text())
        # 4 framesets of 5 views, not 20 one-camera "frames".
        assert [f["frame"] for f in data["frames"]] == [0, 1, 2, 3]
        assert all(f["views_present"] == [True] * 5 for f in data["frames"])
    capsys.readouterr()
    (seq / "hdImgs" / "00_12" / "00_12_00000002.jpg").unlink()
    assert main(args + ["--images", str(out)]) == 2
    err = capsys.readouterr().err
    assert "1 of 4 framesets lack a camera (frame 2: 00_12)" in err and "--allow-missing-views" in err
    assert main(args + ["--images", str(out), "--allow-missing-views"]) == 0
    data = json.loads(preds.read_text())
    assert data["frames"][2]["views_present"] == [True, True, False, True, True]


def test_predict_names_truncated_jpegs_and_fails_when_all_are_bad(tmp_path, capsys):
    out, seq, calib = _synth_tree(tmp_path)
    ckpt = save_checkpoint(tmp_path / "tiny.pt", build_model(tiny_config()))
    bad = seq / "hdImgs" / "00_06" / "00_06_00000001.jpg"
    bad.write_bytes(bad.read_bytes()[:3000])  # truncated: OpenCV alone decodes it with a warning
    preds = tmp_path / "preds.npz"
    args = [
        "predict",
        "--images",
        str(out),
        "--calibration",
        str(calib),
        "--checkpoint",
        str(ckpt),
        "--out",
        str(preds),
        "--device",
        "cpu",
    ]
    capsys.readouterr()
    assert main(args) == 0
    stdout = capsys.readouterr().out
    assert "undecodable images: 1; framesets skipped: 1 of 4" in stdout
    assert (
        f"frame 1: 00_06: {bad} is a truncated JPEG (no end-of-image marker after the last scan) (frameset skipped)"
        in stdout
    )
    assert list(np.load(preds)["frames"]) == [0, 2, 3]
    # With --allow-missing-views the frameset runs without the bad view.
    assert main(args + ["--allow-missing-views"]) == 0
    assert "(view left out)" in capsys.readouterr().out
    assert list(np.load(preds)["frames"]) == [0, 1, 2, 3]
    # Every frameset bad: exit 2 (bad input), each image named, nothing written.
    preds.unlink()
    for k in range(4):
        path = seq / "hdImgs" / "00_03" / f"00_03_{k:08d}.jpg"
        path.write_bytes(path.read_bytes()[:2000])
    assert main(args) == 2
    captured = capsys.readouterr()
    assert "undecodable images: 5; framesets skipped: 4 of 4" in captured.out
    assert "none of the 4 framesets could be used" in captured.err and not preds.exists()


@pytest.mark.data
def test_predict_real_frames_without_a_model_triangulates_the_two_people(shared_data, tmp_path):
    """No --checkpoint: real photos go through the bundled 2D estimator and triangulation."""
    import cv2

    from app.cli import main
    from calib.common.paths import CONFIGS_DIR

    videos = shared_data / "pose2sim_demos/Demo_MultiPerson/videos"
    for cam in ("cam01", "cam02", "cam03", "cam04"):
        cap = cv2.VideoCapture(str(videos / f"{cam}.mp4"))
        cap.set(cv2.CAP_PROP_POS_FRAMES, 30)
        cv2.imwrite(str(tmp_path / f"{cam}.jpg"), cap.read()[1])
        cap.release()
    out = tmp_path / "p.json"
    rc = main(
        [
            "predict",
            "--images",
            str(tmp_path),
            "--calibration",
            str(CONFIGS_DIR / "rigs" / "pose2sim_multiperson.yaml"),
            "--out",
            str(out),
        ]
    )
    assert rc == 0
    result = json.loads(out.read_text())
    assert result["route"] == "triangulate" and len(result["frames"]) == 1
    people = result["frames"][0]["people"]
    assert len(people) == 2
    heights = [np.ptp(np.asarray(p["joints_mm"])[:, 2]) for p in people]
    assert all(1100 < h < 2000 for h in heights), heights  # standing adults, in mm
