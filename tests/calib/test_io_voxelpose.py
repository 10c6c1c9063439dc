"""VoxelPose camera JSON and the metric (Shelf/4D-Association) JSON, against the real files."""

from __future__ import annotations

import json

import numpy as np
import pytest

from calib.camera import CalibrationError
from calib.io_metric_json import load_metric_json, save_metric_json
from calib.io_panoptic import VOXELPOSE_HD_CAMERAS, load_panoptic_calibration
from calib.io_voxelpose import load_voxelpose_calibration, save_voxelpose_calibration
from calib.projection import project_points

HD = (1920, 1080)
SHELF = (1032, 776)


def _assert_same_cameras(a, b, R_tol=1e-12, center_tol_mm=1e-6, K_tol=1e-12):
    assert a.names == b.names
    for ca, cb in zip(a, b):
        assert ca.resolution == cb.resolution
        np.testing.assert_allclose(ca.R, cb.R, atol=R_tol)
        np.testing.assert_allclose(ca.center_mm, cb.center_mm, atol=center_tol_mm)
        np.testing.assert_allclose(ca.K, cb.K, atol=K_tol)
        np.testing.assert_allclose(ca.dist, cb.dist, atol=1e-15)


@pytest.fixture(scope="module")
def panoptic_rig(shared_data):
    return load_panoptic_calibration(shared_data / "panoptic_body3d_samples/160906_band1/calibration_160906_band1.json")


@pytest.mark.data
def test_panoptic_demo_sequence_form_equals_panoptic_cameras(shared_data, panoptic_rig):
    rig = load_voxelpose_calibration(
        shared_data / "panoptic_demo/calibration.json", image_size=HD, camera_names=VOXELPOSE_HD_CAMERAS
    )
    _assert_same_cameras(rig, panoptic_rig)
    unnamed = load_voxelpose_calibration(shared_data / "panoptic_demo/calibration.json", image_size=HD)
    assert unnamed.names == ["0", "1", "2", "3", "4"]


@pytest.mark.data
def test_named_list_form_equals_panoptic_cameras(shared_data, panoptic_rig):
    rig = load_voxelpose_calibration(shared_data / "panoptic_body3d_samples/cameras_voxelpose.json", image_size=HD)
    _assert_same_cameras(rig, panoptic_rig)
    sub = load_voxelpose_calibration(
        shared_data / "panoptic_body3d_samples/cameras_voxelpose.json", image_size=HD, camera_names=["00_13", "00_03"]
    )
    assert sub.names == ["00_13", "00_03"]


@pytest.mark.data
def test_shelf_metric_and_voxelpose_files_agree(shared_data):
    metric = load_metric_json(shared_data / "shelf/calibration.json")
    vp = load_voxelpose_calibration(shared_data / "shelf/calibration_voxelpose.json", image_size=SHELF)
    assert metric.names == vp.names == ["0", "1", "2", "3", "4"]
    assert all(c.resolution == SHELF for c in metric)
    np.testing.assert_allclose(metric.R, vp.R, atol=1e-6)
    np.testing.assert_allclose(metric.centers_mm, vp.centers_mm, atol=0.01)
    np.testing.assert_allclose(metric.K, vp.K, atol=1e-4)
    # Both project the ground truth to the same pixels.
    gt = np.load(shared_data / "shelf/gt.npz")
    X = gt["joints"][gt["valid"]][:, :14] * 1000.0  # (N,14,3) mm
    for cm, cv in zip(metric, vp):
        uv_m, uv_v = project_points(X, cm), project_points(X, cv)
        assert np.abs(uv_m - uv_v).max() < 0.01
        inside = (uv_m[..., 0] > 0) & (uv_m[..., 0] < SHELF[0]) & (uv_m[..., 1] > 0) & (uv_m[..., 1] < SHELF[1])
        assert inside.mean() > 0.5  # the actors are actually in view


def test_round_trip_both_layouts(toy_rig, tmp_path):
    for layout in ("dict", "sequence"):
        path = save_voxelpose_calibration(toy_rig, tmp_path / f"{layout}.json", layout=layout)
        back = load_voxelpose_calibration(path)  # sizes and names come from the extension fields
        _assert_same_cameras(back, toy_rig, center_tol_mm=1e-9)
        np.testing.assert_allclose(back.t_mm, toy_rig.t_mm, atol=1e-9)
    doc = json.loads((tmp_path / "dict.json").read_text())
    assert list(doc) == toy_rig.names
    assert np.shape(doc["cam0"]["T"]) == (3, 1) and np.shape(doc["cam0"]["k"]) == (3, 1)


def test_metric_round_trip_in_metres(toy_rig, tmp_path):
    path = save_metric_json(toy_rig, tmp_path / "m.json")
    doc = json.loads(path.read_text())
    assert doc["units"] == "metres"
    np.testing.assert_allclose(doc["cameras"][0]["t"], toy_rig[0].t_mm / 1000)
    _assert_same_cameras(load_metric_json(path), toy_rig, center_tol_mm=1e-9)


def test_image_size_required_and_explicit_wins(toy_rig, tmp_path):
    doc = {
        "customized_sequence": [
            {k: v for k, v in e.items() if k not in ("width", "height", "name")}
            for e in json.loads(
                save_voxelpose_calibration(toy_rig, tmp_path / "a.json", layout="sequence").read_text()
            )["customized_sequence"]
        ]
    }
    path = tmp_path / "nosize.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(CalibrationError, match=r"nosize\.json: camera '0': VoxelPose calibration stores no image size"):
        load_voxelpose_calibration(path)
    rig = load_voxelpose_calibration(path, image_size=(640, 480), camera_names=["a", "b", "c", "d"])
    assert rig.names == ["a", "b", "c", "d"] and rig[0].resolution == (640, 480)
    with pytest.raises(CalibrationError, match=r"4 unnamed cameras but camera_names gives 2"):
        load_voxelpose_calibration(path, image_size=(640, 480), camera_names=["a", "b"])


@pytest.mark.data
def test_missing_camera_and_metres_as_mm(shared_data, tmp_path):
    with pytest.raises(CalibrationError, match=r"calibration_voxelpose\.json: no camera named '5'"):
        load_voxelpose_calibration(shared_data / "shelf/calibration_voxelpose.json", SHELF, ["0", "5"])
    # A VoxelPose file whose T was written in metres: all cameras within a few "mm".
    doc = json.loads((shared_data / "shelf/calibration_voxelpose.json").read_text())
    for cam in doc.values():
        cam["T"] = (np.array(cam["T"]) / 1000.0).tolist()
    path = tmp_path / "metres.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(CalibrationError, match=r"metres\.json: .*units cannot be right"):
        load_voxelpose_calibration(path, SHELF)


@pytest.mark.data
def test_metric_units_and_centre_consistency(shared_data, tmp_path):
    doc = json.loads((shared_data / "shelf/calibration.json").read_text())
    doc["units"] = "mm"  # metres declared as mm
    (tmp_path / "mm.json").write_text(json.dumps(doc))
    with pytest.raises(CalibrationError, match=r"mm\.json: .*units cannot be right"):
        load_metric_json(tmp_path / "mm.json")
    doc["units"] = "metres"
    doc["cameras"][2]["R"] = np.array(doc["cameras"][2]["R"]).T.tolist()  # camera->world by mistake
    (tmp_path / "transposed.json").write_text(json.dumps(doc))
    with pytest.raises(CalibrationError, match=r"transposed\.json: camera '2': field 'C'"):
        load_metric_json(tmp_path / "transposed.json")
    doc["units"] = "furlongs"
    (tmp_path / "units.json").write_text(json.dumps(doc))
    with pytest.raises(CalibrationError, match=r"units\.json: field 'units': unknown units 'furlongs'"):
        load_metric_json(tmp_path / "units.json")
