"""Refinement from people and the bumped-camera check, on a synthetic take through a known rig.

The take is what the live system would record: 2D detections from the *true* cameras (noisy,
shuffled per view, some joints missing) and 3D poses that the engine triangulated with the
*bumped* calibration it believes in.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from calib.camera import CalibrationError, Camera, CameraRig
from calib.check import PoseTake, check_rig, load_take, match_take, save_take, triangulate_weighted
from calib.projection import project_points
from calib.refine import refine_extrinsics

NOISE_PX = 1.0
# A standing person (mm, z up), Panoptic-15 joint order (calib/common/skeleton.py).
TEMPLATE = np.array(
    [
        [0, 0, 1500],
        [0, 60, 1650],
        [0, 0, 950],
        [180, 0, 1450],
        [200, 0, 1180],
        [210, 0, 920],
        [100, 0, 950],
        [100, 0, 500],
        [100, 0, 80],
        [-180, 0, 1450],
        [-200, 0, 1180],
        [-210, 0, 920],
        [-100, 0, 950],
        [-100, 0, 500],
        [-100, 0, 80],
    ],
    dtype=float,
)


def bump(camera: Camera, degrees: float, shift_mm) -> Camera:
    """Rotate a camera about its own centre and move the centre (a physical knock)."""
    axis = np.array([0.3, 1.0, 0.2]) / np.linalg.norm([0.3, 1.0, 0.2])
    R = Rotation.from_rotvec(np.deg2rad(degrees) * axis).as_matrix() @ camera.R
    return Camera.from_center(
        camera.name,
        camera.width,
        camera.height,
        camera.K,
        camera.dist,
        R,
        camera.center_mm + np.asarray(shift_mm, float),
    )


def synth_take(
    true_rig: CameraRig, engine_rig: CameraRig, rng: np.random.Generator, frames: int = 16, persons: int = 3
) -> PoseTake:
    V, J = len(true_rig), len(TEMPLATE)
    X = np.zeros((frames, persons, J, 3))
    for f in range(frames):
        for p in range(persons):
            R = Rotation.from_euler("z", rng.uniform(0, 360), degrees=True).as_matrix()
            X[f, p] = (TEMPLATE + rng.normal(0, 40, TEMPLATE.shape)) @ R.T + np.r_[rng.uniform(-1500, 1500, 2), 0]
    det = np.full((frames, V, persons + 1, J, 2), np.nan)  # one spare slot per view stays empty
    scores = np.zeros((frames, V, persons + 1, J))
    slot = np.zeros((frames, V, persons), int)
    for v, cam in enumerate(true_rig):
        uv = project_points(X, cam) + rng.normal(0, NOISE_PX, X.shape[:-1] + (2,))
        for f in range(frames):
            slot[f, v] = rng.permutation(persons)
            det[f, v, slot[f, v]] = uv[f]
            scores[f, v, slot[f, v]] = rng.uniform(0.5, 1.0, (persons, J))
    scores[rng.random(scores.shape) < 0.05] = 0.0  # missed joints
    poses = np.zeros_like(X)
    for f in range(frames):
        for p in range(persons):
            uv = np.stack([det[f, v, slot[f, v, p]] for v in range(V)], axis=1)  # (J,V,2)
            w = np.stack([scores[f, v, slot[f, v, p]] for v in range(V)], axis=1)  # (J,V)
            poses[f, p] = triangulate_weighted(engine_rig, uv, w)
    return PoseTake(poses, det, scores, tuple(true_rig.names))


@pytest.fixture
def scene(toy_rig):
    true_rig = toy_rig
    bumped = CameraRig(tuple(bump(c, 2.0, (30.0, -30.0, 28.0)) if c.name == "cam2" else c for c in true_rig))
    take = synth_take(true_rig, bumped, np.random.default_rng(0))
    return true_rig, bumped, take


def test_check_flags_exactly_the_bumped_camera(scene):
    true_rig, bumped, take = scene
    report = check_rig(bumped, match_take(bumped, take))
    assert report.bumped == ["cam2"]
    assert "BUMPED" in report.text()
    assert check_rig(true_rig, match_take(true_rig, take)).bumped == []


def test_refine_recovers_the_bumped_camera(scene):
    true_rig, bumped, take = scene
    corr = match_take(bumped, take)
    result = refine_extrinsics(bumped, corr)
    assert "cam2" not in result.fixed
    est, true = result.rig["cam2"], true_rig["cam2"]
    angle = np.rad2deg(Rotation.from_matrix(est.R @ true.R.T).magnitude())
    assert angle < 0.1
    assert np.linalg.norm(est.center_mm - true.center_mm) < 8.0
    for name in ("cam0", "cam1", "cam3"):  # the gauge is kept: good cameras stay put
        assert np.linalg.norm(result.rig[name].center_mm - true_rig[name].center_mm) < 8.0
    # error before is far above the noise, after at the noise floor (sqrt(2) * sigma for a 2D error)
    assert result.before_px["cam2"] > 5.0
    assert max(result.after_px.values()) < 1.6 * NOISE_PX
    assert check_rig(result.rig, corr).bumped == []
    assert "cam2" in result.report(bumped)


def test_refine_with_focal_and_explicit_fixed_cameras(scene):
    true_rig, bumped, take = scene
    wrong_f = CameraRig(tuple(c.replace(K=np.diag([1.02, 1.02, 1.0]) @ c.K) if c.name == "cam1" else c for c in bumped))
    result = refine_extrinsics(wrong_f, match_take(wrong_f, take), fixed=["cam0", "cam3"], refine_focal=True)
    assert result.fixed == ("cam0", "cam3") and result.scale_camera is None
    assert abs(result.rig["cam1"].K[0, 0] / true_rig["cam1"].K[0, 0] - 1) < 0.005
    assert np.linalg.norm(result.rig["cam2"].center_mm - true_rig["cam2"].center_mm) < 15.0
    np.testing.assert_array_equal(result.rig["cam0"].R, bumped["cam0"].R)


def test_take_file_round_trip_and_errors(scene, tmp_path):
    true_rig, bumped, take = scene
    path = save_take(tmp_path / "take.npz", take.poses_mm, take.detections_2d, take.camera_names, take.scores)
    again = load_take(path)
    np.testing.assert_allclose(again.detections_2d, take.detections_2d.astype(np.float32), equal_nan=True)
    assert again.camera_names == take.camera_names
    np.savez(tmp_path / "bad.npz", poses_mm=take.poses_mm)
    with pytest.raises(CalibrationError, match="missing array"):
        load_take(tmp_path / "bad.npz")
    other = PoseTake(take.poses_mm, take.detections_2d, take.scores, ("a", "b", "c", "d"))
    with pytest.raises(CalibrationError, match=r"camera\(s\) \['a', 'b', 'c', 'd'\] are not in the rig"):
        match_take(true_rig, other)
    with pytest.raises(CalibrationError, match="poses_mm"):
        PoseTake(take.poses_mm[..., :2], take.detections_2d, take.scores, take.camera_names)


def test_too_little_evidence_is_an_error(scene):
    true_rig, bumped, take = scene
    tiny = PoseTake(take.poses_mm[:1, :1], take.detections_2d[:1], take.scores[:1], take.camera_names)
    with pytest.raises(CalibrationError, match="fewer than 30 matched joints|joint observations"):
        refine_extrinsics(bumped, match_take(bumped, tiny))


def test_refine_survives_gross_2d_outliers(scene):
    true_rig, bumped, take = scene
    rng = np.random.default_rng(3)
    det = take.detections_2d.copy()
    wild = rng.random(det.shape[:-1]) < 0.04  # 4 % of joints land 25-60 px away (swaps, misdetections)
    offsets = rng.uniform(25, 60, det.shape) * rng.choice([-1, 1], det.shape)
    det[wild] += offsets[wild]
    noisy = PoseTake(take.poses_mm, det, take.scores, take.camera_names)
    result = refine_extrinsics(bumped, match_take(bumped, noisy))
    est, true = result.rig["cam2"], true_rig["cam2"]
    assert np.rad2deg(Rotation.from_matrix(est.R @ true.R.T).magnitude()) < 0.1
    assert np.linalg.norm(est.center_mm - true.center_mm) < 10.0
    assert max(result.after_px.values()) < 1.6 * NOISE_PX  # inliers at the noise floor
