"""Panoptic calibration import/export and the Panoptic -> world conversion, on the real samples."""

from __future__ import annotations

import json

import numpy as np
import pytest

from calib.camera import CalibrationError
from calib.io_panoptic import (
    PANOPTIC_AXES,
    VOXELPOSE_HD_CAMERAS,
    load_panoptic_calibration,
    panoptic_cm_to_world_mm,
    save_panoptic_calibration,
    world_mm_to_panoptic_cm,
)
from calib.projection import project_points

BAND1 = "panoptic_body3d_samples/160906_band1/calibration_160906_band1.json"


@pytest.fixture(scope="module")
def samples(shared_data):
    return np.load(shared_data / "panoptic_body3d_samples" / "samples.npz")


def test_axes_match_spec_and_conversion_inverts(rng):
    # SPEC §4.3: (x, y, z) -> (x, z, -y), x10.
    np.testing.assert_array_equal(PANOPTIC_AXES, [[1, 0, 0], [0, 0, -1], [0, 1, 0]])
    np.testing.assert_allclose(panoptic_cm_to_world_mm(np.array([1.0, 2.0, 3.0])), [10.0, 30.0, -20.0])
    pts = rng.normal(size=(4, 7, 3)) * 300
    np.testing.assert_allclose(world_mm_to_panoptic_cm(panoptic_cm_to_world_mm(pts)), pts, atol=1e-12)


@pytest.mark.data
def test_joint_conversion_matches_voxelpose_joints(samples):
    X = panoptic_cm_to_world_mm(samples["joints19_native_cm"][..., :3])
    np.testing.assert_allclose(X[:, :15], samples["joints15_voxelpose_mm"], atol=1e-9)


@pytest.mark.data
def test_band1_projection_matches_reference_pixels(shared_data, samples):
    rig = load_panoptic_calibration(shared_data / BAND1, list(samples["camera_names"]))
    assert rig.names == list(samples["camera_names"])
    assert all(c.resolution == (1920, 1080) for c in rig)
    X = panoptic_cm_to_world_mm(samples["joints19_native_cm"][..., :3])  # (12,19,3) mm
    uv = np.stack([project_points(X, cam) for cam in rig], axis=1)  # (12,5,19,2)
    err = np.abs(uv - samples["uv_hd_1920x1080"]).max()
    assert err < 0.01, f"max projection error {err} px"


@pytest.mark.data
def test_default_cameras_and_order_by_name(shared_data):
    rig = load_panoptic_calibration(shared_data / BAND1)
    assert tuple(rig.names) == VOXELPOSE_HD_CAMERAS
    rev = load_panoptic_calibration(shared_data / BAND1, ["00_23", "00_03", "01_01"])
    assert rev.names == ["00_23", "00_03", "01_01"]
    assert rev["01_01"].resolution == (640, 480)  # a VGA camera keeps its own size
    np.testing.assert_array_equal(rev["00_03"].R, rig["00_03"].R)
    # Camera centres are metres away from the room centre, in mm, above the floor.
    assert np.all(np.linalg.norm(rig.centers_mm[:, :2], axis=1) > 1000)
    assert np.all(rig.centers_mm[:, 2] > 1000)


@pytest.mark.data
def test_missing_camera_names_file_and_camera(shared_data):
    with pytest.raises(CalibrationError, match=r"calibration_160906_band1\.json.*'00_99'.*did you mean"):
        load_panoptic_calibration(shared_data / BAND1, ["00_03", "00_99"])


def test_round_trip_exact(toy_rig, tmp_path):
    path = save_panoptic_calibration(toy_rig, tmp_path / "calib.json")
    doc = json.loads(path.read_text())
    cam0 = doc["cameras"][0]
    assert cam0["type"] == "hd" and cam0["resolution"] == [1280, 720] and len(cam0["distCoef"]) == 5
    # Translations are centimetres in the file.
    np.testing.assert_allclose(np.ravel(cam0["t"]), toy_rig[0].t_mm / 10)
    back = load_panoptic_calibration(path, toy_rig.names)
    assert back.names == toy_rig.names
    for a, b in zip(toy_rig, back):
        np.testing.assert_array_equal(a.K, b.K)
        np.testing.assert_array_equal(a.dist, b.dist)
        np.testing.assert_array_equal(a.R, b.R)
        np.testing.assert_allclose(a.t_mm, b.t_mm, rtol=1e-15, atol=1e-12)
        assert a.resolution == b.resolution


def test_default_without_voxelpose_names_loads_all_hd(toy_rig, tmp_path):
    path = save_panoptic_calibration(toy_rig, tmp_path / "calib.json")
    assert load_panoptic_calibration(path).names == toy_rig.names


def _write_single(tmp_path, **changes):
    cam = {
        "name": "00_03",
        "type": "hd",
        "resolution": [1920, 1080],
        "panel": 0,
        "node": 3,
        "K": [[1400.0, 0, 960], [0, 1400.0, 540], [0, 0, 1]],
        "distCoef": [0, 0, 0, 0, 0],
        "R": np.eye(3).tolist(),
        "t": [[0.0], [0.0], [300.0]],
    }
    cam.update(changes)
    cam = {k: v for k, v in cam.items() if v is not None}
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({"cameras": [cam]}))
    return path


@pytest.mark.parametrize(
    "changes, pattern",
    [
        ({"R": [[1, 0, 0], [0, 2, 0], [0, 0, 1]]}, r"bad\.json: camera '00_03': field 'R' is not a rotation"),
        ({"R": [[1, 0, 0], [0, 1, 0]]}, r"bad\.json: camera '00_03': field 'R' must have shape \(3, 3\)"),
        ({"distCoef": [0.1, 0.0]}, r"camera '00_03': field 'distCoef' must have shape \(5,\)"),
        ({"K": None}, r"camera '00_03': missing field 'K'"),
        ({"resolution": [1920, -5]}, r"camera '00_03': field 'resolution' must be two positive integers"),
        ({"t": [[0.0], ["x"], [1.0]]}, r"camera '00_03': field 't' is not numeric"),
    ],
)
def test_malformed_camera_is_named(tmp_path, changes, pattern):
    with pytest.raises(CalibrationError, match=pattern):
        load_panoptic_calibration(_write_single(tmp_path, **changes), ["00_03"])


def test_resolution_defaults_to_the_camera_type(tmp_path):
    rig = load_panoptic_calibration(_write_single(tmp_path, resolution=None, type="vga"), ["00_03"])
    assert rig[0].resolution == (640, 480)
    with pytest.raises(CalibrationError, match=r"camera '00_03': missing field 'resolution'"):
        load_panoptic_calibration(_write_single(tmp_path, resolution=None, type=None), ["00_03"])


def test_corrupt_and_missing_files(tmp_path):
    bad = tmp_path / "trunc.json"
    bad.write_text('{"cameras": [{"name": "00_03", ')
    with pytest.raises(CalibrationError, match=r"trunc\.json: not valid JSON"):
        load_panoptic_calibration(bad)
    with pytest.raises(CalibrationError, match=r"nope\.json: calibration file not found"):
        load_panoptic_calibration(tmp_path / "nope.json")
    empty = tmp_path / "empty.json"
    empty.write_text('{"cameras": []}')
    with pytest.raises(CalibrationError, match=r"empty\.json: field 'cameras'"):
        load_panoptic_calibration(empty)
