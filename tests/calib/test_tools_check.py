"""Calibration check from a board seen by several cameras (synthetic corner detections)."""

from __future__ import annotations

import numpy as np
import pytest

from calib.board_render import BoardPose, look_at_rotation
from calib.boards import BoardDetection, BoardSpec
from calib.camera import CalibrationError, CameraRig
from calib.check import board_correspondences, check_rig
from calib.projection import project_points

from tests.calib.test_tools_refine import bump

SPEC = BoardSpec.parse("charuco:7x5:100:75:DICT_4X4_50")


def _board_views(rig: CameraRig, rng: np.random.Generator, frames: int = 6) -> dict:
    """Corners of a board held up in the middle of the room (facing up and a bit sideways),
    projected into every camera with 0.2 px noise."""
    out = {c.name: [] for c in rig}
    for _ in range(frames):
        normal = np.array([*rng.uniform(-0.4, 0.4, 2), -1.0])  # board z points down: face up
        R = look_at_rotation(normal, np.array([0.0, 1.0, 0.0]))
        pose = BoardPose(R, np.r_[rng.uniform(-400, 400, 2), rng.uniform(300, 900)] - R @ [350.0, 250.0, 0.0])
        pts = pose.points_w(SPEC.board_points_mm())
        for cam in rig:
            uv = project_points(pts, cam) + rng.normal(0, 0.2, (len(pts), 2))
            ids = np.arange(len(pts))
            out[cam.name].append(BoardDetection(ids, uv, (cam.width, cam.height), 0.8, "synthetic"))
    return out


def test_board_check_flags_only_the_bumped_camera(toy_rig, rng):
    views = _board_views(toy_rig, rng)
    assert check_rig(toy_rig, board_correspondences(toy_rig, views, SPEC)).bumped == []
    bumped = CameraRig(tuple(bump(c, 1.0, (20.0, 0.0, 0.0)) if c.name == "cam1" else c for c in toy_rig))
    report = check_rig(bumped, board_correspondences(bumped, views, SPEC))
    assert report.bumped == ["cam1"]
    medians = {c.name: c.median_px for c in report.cameras}
    assert medians["cam1"] > 10 * max(v for k, v in medians.items() if k != "cam1")


def test_board_check_errors_are_clear(toy_rig, rng):
    views = _board_views(toy_rig, rng, frames=1)
    with pytest.raises(CalibrationError, match="ChArUco"):
        board_correspondences(toy_rig, views, BoardSpec.parse("checkerboard:9x6:25"))
    with pytest.raises(CalibrationError, match="not found in any image"):
        board_correspondences(toy_rig, {n: [None] for n in toy_rig.names}, SPEC)
    with pytest.raises(CalibrationError, match="not in the rig"):
        board_correspondences(toy_rig, {"camX": views["cam0"]}, SPEC)


def test_weighted_triangulation(toy_rig, rng):
    from calib.check import triangulate_weighted

    X = rng.uniform(-1000, 1000, (50, 3)) + np.array([0.0, 0.0, 1000.0])
    uv = np.stack([project_points(X, c) for c in toy_rig], axis=1)  # (Q,V,2)
    w = np.ones((50, 4))
    np.testing.assert_allclose(triangulate_weighted(toy_rig, uv, w), X, atol=1e-6)
    bad = uv.copy()
    bad[:, 1] += 15.0  # one view off by 15 px
    err_equal = np.linalg.norm(triangulate_weighted(toy_rig, bad, w) - X, axis=1).mean()
    w_low = w.copy()
    w_low[:, 1] = 0.05
    err_low = np.linalg.norm(triangulate_weighted(toy_rig, bad, w_low) - X, axis=1).mean()
    assert err_low < 0.2 * err_equal
    w_one = np.zeros((50, 4))
    w_one[:, 0] = 1.0
    assert np.isnan(triangulate_weighted(toy_rig, uv, w_one)).all()
