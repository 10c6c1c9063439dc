"""``selfpose3d calibrate ...`` end to end through app.cli (board, intrinsics, check, refine, extrinsics)."""

from __future__ import annotations

import numpy as np
import pytest

from app.cli import main
from calib.camera import CameraRig
from calib.check import save_take
from calib.io import load_calibration
from calib.rig_config import save_rig

from tests.calib.test_tools_refine import bump, synth_take

BOARD = "charuco:9x6:40:30:DICT_5X5_100"


def test_board_pdf_and_png(tmp_path, capsys):
    assert main(["calibrate", "board", "--board", BOARD, "--out", str(tmp_path / "b.pdf")]) == 0
    assert (tmp_path / "b.pdf").read_bytes().startswith(b"%PDF")
    assert "measure a square: it must be 40 mm" in capsys.readouterr().out
    yaml_spec = tmp_path / "board.yaml"
    yaml_spec.write_text("kind: checkerboard\nsquares_x: 9\nsquares_y: 6\nsquare_mm: 25\n")
    assert main(["calibrate", "board", "--board-yaml", str(yaml_spec), "--out", str(tmp_path / "c.png")]) == 0
    assert (tmp_path / "c.png").stat().st_size > 1000


def test_bad_board_spec_is_one_clear_line(tmp_path, capsys):
    assert main(["calibrate", "board", "--board", "charuco:7x5", "--out", str(tmp_path / "b.pdf")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: board spec 'charuco:7x5'") and "Traceback" not in err


def test_intrinsics_command_writes_yaml_and_coverage(tmp_path, capsys):
    import cv2

    from calib.board_render import BoardRenderer, random_board_poses
    from calib.boards import BoardSpec
    from calib.intrinsics import load_intrinsics
    from tests.calib.test_tools_intrinsics import TRUE

    spec = BoardSpec.parse(BOARD)
    folder = tmp_path / "images" / "cam0"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(11)
    renderer = BoardRenderer(TRUE, spec)
    for i, pose in enumerate(random_board_poses(TRUE, spec, 10, rng, (450.0, 800.0))):
        cv2.imwrite(str(folder / f"{i:03d}.png"), renderer.render(pose, noise_std=2.0, rng=rng))
    out = tmp_path / "out"
    assert (
        main(["calibrate", "intrinsics", "--board", BOARD, "--images", str(tmp_path / "images"), "--out", str(out)])
        == 0
    )
    cam = load_intrinsics(out / "intrinsics.yaml")["cam0"]
    assert abs(cam.K[0, 0] / TRUE.K[0, 0] - 1) < 0.005
    assert (out / "coverage_cam0.png").is_file() and "RMS=" in (out / "report.txt").read_text()
    # an empty camera folder is a clear error naming the camera
    (tmp_path / "images" / "cam1").mkdir()
    cv2.imwrite(str(tmp_path / "images" / "cam1" / "0.png"), np.full((480, 640), 128, np.uint8))
    assert (
        main(["calibrate", "intrinsics", "--board", BOARD, "--images", str(tmp_path / "images"), "--out", str(out)])
        == 2
    )
    assert "camera 'cam1'" in capsys.readouterr().err


def test_check_and_refine_commands_on_a_take(tmp_path, toy_rig, capsys):
    bumped = CameraRig(tuple(bump(c, 2.0, (30.0, -30.0, 28.0)) if c.name == "cam2" else c for c in toy_rig))
    take = synth_take(toy_rig, bumped, np.random.default_rng(0))
    take_path = save_take(tmp_path / "take.npz", take.poses_mm, take.detections_2d, take.camera_names, take.scores)
    rig_path = save_rig(bumped, tmp_path / "rig.yaml")
    assert main(["calibrate", "check", "--rig", str(rig_path), "--take", str(take_path)]) == 3
    assert "cam2" in capsys.readouterr().out
    out = tmp_path / "refined.yaml"
    assert main(["calibrate", "refine", "--rig", str(rig_path), "--take", str(take_path), "--out", str(out)]) == 0
    refined = load_calibration(out)
    assert np.linalg.norm(refined["cam2"].center_mm - toy_rig["cam2"].center_mm) < 8.0
    assert main(["calibrate", "check", "--rig", str(out), "--take", str(take_path)]) == 0


@pytest.mark.slow
def test_extrinsics_command_dry_run_round_trip(tmp_path, capsys):
    """Render a rig's board views with `calibrate board --render-rig`, calibrate them back."""
    from tests.calib.test_tools_extrinsics import RIG

    board = "charuco:7x5:100:75:DICT_4X4_50"
    truth = save_rig(RIG, tmp_path / "truth.yaml")
    assert (
        main(
            [
                "calibrate",
                "board",
                "--board",
                board,
                "--render-rig",
                str(truth),
                "--frames",
                "12",
                "--out",
                str(tmp_path / "imgs"),
            ]
        )
        == 0
    )
    out = tmp_path / "out"
    assert (
        main(
            [
                "calibrate",
                "extrinsics",
                "--board",
                board,
                "--intrinsics",
                str(truth),
                "--images",
                str(tmp_path / "imgs"),
                "--out",
                str(out),
            ]
        )
        == 0
    )
    for name in ("rig.yaml", "calibration_panoptic.json", "calibration.toml", "report.txt"):
        assert (out / name).is_file(), name
    for path in (out / "rig.yaml", out / "calibration.toml", out / "calibration_panoptic.json"):
        rig = load_calibration(path)
        for est, true in zip(rig, RIG):
            assert np.linalg.norm(est.center_mm - true.center_mm) < 10.0, (path.name, est.name)
    assert (
        main(
            ["calibrate", "check", "--rig", str(out / "rig.yaml"), "--board", board, "--images", str(tmp_path / "imgs")]
        )
        == 0
    )
    # without --intrinsics they come from the same frames: 12 distant views do not cover the images
    capsys.readouterr()
    assert (
        main(
            [
                "calibrate",
                "extrinsics",
                "--board",
                board,
                "--images",
                str(tmp_path / "imgs"),
                "--out",
                str(tmp_path / "out2"),
            ]
        )
        == 1
    )
    assert "% of the image" in capsys.readouterr().err
