"""Multi-camera extrinsics from a ChArUco board rendered through a known 4-camera rig."""

from __future__ import annotations

import numpy as np
import pytest

from calib.board_render import BoardRenderer, floor_board_pose, look_at_rotation, rig_board_poses
from calib.boards import BoardSpec
from calib.camera import CalibrationError, Camera, CameraRig
from calib.extrinsics import WorldFrame, calibrate_extrinsics

SPEC = BoardSpec.parse("charuco:7x5:100:75:DICT_4X4_50")


def make_rig(n: int = 4) -> CameraRig:
    """n cameras on a 2.2 m ring, 2 m high, looking at (0, 0, 0.7 m); slightly different intrinsics."""
    cams = []
    for i, yaw in enumerate(np.deg2rad(np.arange(n) * 360.0 / n + 15.0)):
        c = np.array([2200.0 * np.cos(yaw), 2200.0 * np.sin(yaw), 2000.0])
        R = look_at_rotation(np.array([0.0, 0.0, 700.0]) - c, np.array([0.0, 0.0, 1.0])).T
        K = np.array([[700.0, 0.0, 320.0 + 5 * i], [0.0, 701.4, 240.0 - 3 * i], [0.0, 0.0, 1.0]])
        cams.append(Camera.from_center(f"cam{i}", 640, 480, K, [-0.2, 0.07, 0.001, -0.001, -0.01], R, c))
    return CameraRig(tuple(cams))


RIG = make_rig()


def _intrinsics_only(rig: CameraRig) -> list[Camera]:
    return [c.replace(R=np.eye(3), t_mm=np.zeros(3)) for c in rig]


@pytest.fixture(scope="module")
def detections():
    """23 synchronised frames: frame 0 the board on the floor at the world origin, then random poses."""
    from calib.boards import detect_board

    rng = np.random.default_rng(1)
    poses = [floor_board_pose(SPEC)] + rig_board_poses(RIG, SPEC, 22, rng, (0.0, 0.0, 900.0))
    out = {}
    for cam in RIG:
        renderer = BoardRenderer(cam, SPEC)
        out[cam.name] = [
            detect_board(renderer.render(p, noise_std=2.0, rng=rng), SPEC, source=f"{cam.name}/{i}")
            for i, p in enumerate(poses)
        ]
    return out


def _angle_deg(Ra: np.ndarray, Rb: np.ndarray) -> float:
    return float(np.rad2deg(np.arccos(np.clip((np.trace(Ra @ Rb.T) - 1) / 2, -1, 1))))


def test_recovers_the_rig_in_the_floor_board_world(detections):
    assert sum(d is not None for d in detections["cam0"]) >= 5  # the scene really is multi-view
    result = calibrate_extrinsics(_intrinsics_only(RIG), detections, SPEC, WorldFrame("board", board_frame=0))
    for est, true in zip(result.rig, RIG):
        assert _angle_deg(est.R, true.R) < 0.15, est.name
        assert np.linalg.norm(est.center_mm - true.center_mm) < 8.0, est.name
        np.testing.assert_array_equal(est.K, true.K)  # intrinsics untouched
    # relative poses (independent of the world frame) are tighter still
    for i in range(1, len(RIG)):
        rel_est = result.rig[i].R @ result.rig[0].R.T
        rel_true = RIG[i].R @ RIG[0].R.T
        assert _angle_deg(rel_est, rel_true) < 0.1
    assert max(result.per_camera_rms_px.values()) < 0.4
    assert len(result.per_pair_rms_px) >= 4 and max(r for r, _ in result.per_pair_rms_px.values()) < 0.4
    assert "per pair" in result.report()


def test_camera_world_frame_is_upright_at_that_camera(detections):
    origin = (0.0, 0.0, -2000.0)
    result = calibrate_extrinsics(
        _intrinsics_only(RIG), detections, SPEC, WorldFrame("camera", camera="cam1", origin_mm=origin)
    )
    cam1 = result.rig["cam1"]
    np.testing.assert_allclose(cam1.center_mm, [0.0, 0.0, 2000.0], atol=1e-6)
    forward_w = cam1.R.T @ np.array([0.0, 0.0, 1.0])  # optical axis in world
    assert forward_w[1] > 0.99 and abs(forward_w[0]) < 1e-6  # world y = viewing direction
    # the rig's geometry is the true one: camera distances match
    d_est = np.linalg.norm(result.rig["cam0"].center_mm - result.rig["cam2"].center_mm)
    d_true = np.linalg.norm(RIG["cam0"].center_mm - RIG["cam2"].center_mm)
    assert abs(d_est - d_true) < 8.0


def test_wall_world_is_the_floor_world_turned_upright(detections):
    from calib.extrinsics import BOARD_TO_FLOOR, BOARD_TO_WALL

    floor = calibrate_extrinsics(_intrinsics_only(RIG), detections, SPEC, WorldFrame("board", board_frame=0))
    wall = calibrate_extrinsics(_intrinsics_only(RIG), detections, SPEC, WorldFrame("wall", board_frame=0))
    turn = BOARD_TO_WALL @ BOARD_TO_FLOOR.T  # floor world -> wall world (same origin)
    for a, b in zip(floor.rig, wall.rig):
        np.testing.assert_allclose(turn @ a.center_mm, b.center_mm, atol=1e-6)
        np.testing.assert_allclose(a.R @ turn.T, b.R, atol=1e-9)
    with pytest.raises(CalibrationError, match="reference must be"):
        WorldFrame("ceiling")


def test_camera_that_never_sees_the_board_is_named(detections):
    dets = dict(detections)
    dets["cam3"] = [None] * len(dets["cam3"])
    with pytest.raises(CalibrationError, match="camera 'cam3' never sees the board"):
        calibrate_extrinsics(_intrinsics_only(RIG), dets, SPEC)


def test_camera_without_shared_frames_is_named(detections):
    dets = {n: list(v) for n, v in detections.items()}
    seen_by_others = [any(dets[o][f] is not None for o in dets if o != "cam2") for f in range(len(dets["cam2"]))]
    dets["cam2"] = [None if shared else d for d, shared in zip(dets["cam2"], seen_by_others)]
    if all(d is None for d in dets["cam2"]):  # cam2 only ever saw shared frames: keep one, hide it from others
        f = next(i for i, d in enumerate(detections["cam2"]) if d is not None)
        dets["cam2"][f] = detections["cam2"][f]
        for o in dets:
            if o != "cam2":
                dets[o][f] = None
    with pytest.raises(CalibrationError, match=r"\['cam2'\] never see the board in the same frame"):
        calibrate_extrinsics(_intrinsics_only(RIG), dets, SPEC)


def test_checkerboard_and_unsynchronised_inputs_are_rejected(detections):
    with pytest.raises(CalibrationError, match="need a ChArUco board"):
        calibrate_extrinsics(_intrinsics_only(RIG), detections, BoardSpec.parse("checkerboard:9x6:25"))
    short = dict(detections)
    short["cam1"] = short["cam1"][:-1]
    with pytest.raises(CalibrationError, match="different frame counts"):
        calibrate_extrinsics(_intrinsics_only(RIG), short, SPEC)
