"""anipose TOML, OpenCV FileStorage and the format dispatcher (sniffing, every writer round trip)."""

from __future__ import annotations

import numpy as np
import pytest

from calib.camera import CalibrationError
from calib.io import FORMATS, load_calibration, save_calibration, scale_intrinsics, sniff_format
from calib.io_anipose import (
    load_anipose_toml,
    rodrigues_from_rotation,
    rotation_from_rodrigues,
    save_anipose_toml,
)
from calib.io_opencv import load_opencv_yaml, save_opencv_yaml
from calib.projection import project_points


def _assert_same(a, b, atol_R=1e-12, atol_t=1e-9):
    assert a.names == b.names
    for ca, cb in zip(a, b):
        assert ca.resolution == cb.resolution
        np.testing.assert_allclose(ca.K, cb.K, atol=1e-12)
        np.testing.assert_allclose(ca.dist, cb.dist, atol=1e-15)
        np.testing.assert_allclose(ca.R, cb.R, atol=atol_R)
        np.testing.assert_allclose(ca.t_mm, cb.t_mm, atol=atol_t)


def test_rodrigues_matches_opencv(rng):
    import cv2

    for _ in range(20):
        rvec = rng.normal(size=3) * rng.uniform(0, 1.2)
        R = rotation_from_rodrigues(rvec)
        np.testing.assert_allclose(R, cv2.Rodrigues(rvec)[0], atol=1e-12)
        np.testing.assert_allclose(rodrigues_from_rotation(R), rvec, atol=1e-10)
    np.testing.assert_allclose(rotation_from_rodrigues(np.zeros(3)), np.eye(3))


def test_anipose_round_trip_and_layout(toy_rig, tmp_path):
    path = save_anipose_toml(toy_rig, tmp_path / "calibration.toml")
    text = path.read_text()
    assert "[cam_0]" in text and 'name = "cam0"' in text and "size = [1280, 720]" in text
    _assert_same(load_anipose_toml(path), toy_rig, atol_R=1e-12, atol_t=1e-9)


def test_anipose_reads_aniposelib_file_with_units(tmp_path, toy_rig):
    cam = toy_rig[1]
    rvec = rodrigues_from_rotation(cam.R)
    t_m = cam.t_mm / 1000.0
    body = (
        '[cam_0]\nname = "B"\nsize = [ 1280, 720,]\n'
        f"matrix = [ {cam.K[0].tolist()}, {cam.K[1].tolist()}, [ 0.0, 0.0, 1.0,],]\n"
        "distortions = [ -0.2, 0.08,]\n"
        f"rotation = {rvec.tolist()}\ntranslation = {t_m.tolist()}\n\n[metadata]\nadjusted = false\nerror = 0.4\n"
    )
    path = tmp_path / "ani.toml"
    path.write_text(body)
    rig = load_anipose_toml(path, units="m")
    assert rig.names == ["B"]
    np.testing.assert_allclose(rig[0].t_mm, cam.t_mm, atol=1e-9)
    np.testing.assert_allclose(rig[0].dist, [-0.2, 0.08, 0, 0, 0])
    path.write_text(body.replace("[cam_0]", "[cam_0]\nfisheye = true"))
    with pytest.raises(CalibrationError, match=r"ani\.toml: camera 'B' \(\[cam_0\]\): field 'fisheye'"):
        load_anipose_toml(path)
    path.write_text("[cam_0\nname = ")
    with pytest.raises(CalibrationError, match=r"ani\.toml: not valid TOML"):
        load_anipose_toml(path)


@pytest.mark.parametrize("suffix", ["yaml", "xml"])
def test_opencv_round_trip(toy_rig, tmp_path, suffix):
    path = save_opencv_yaml(toy_rig, tmp_path / f"calib.{suffix}")
    assert sniff_format(path) == "opencv"
    _assert_same(load_opencv_yaml(path), toy_rig, atol_R=0.0, atol_t=0.0)


def test_opencv_single_camera_sample_file(tmp_path):
    import cv2

    path = tmp_path / "intrinsics.yml"
    fs = cv2.FileStorage(str(path), cv2.FILE_STORAGE_WRITE)
    fs.write("image_width", 1280)
    fs.write("image_height", 720)
    fs.write("camera_matrix", np.array([[900.0, 0, 640], [0, 900.0, 360], [0, 0, 1]]))
    fs.write("distortion_coefficients", np.array([[-0.1, 0.01, 0, 0]]))
    fs.release()
    rig = load_opencv_yaml(path)
    assert rig.names == ["intrinsics"] and rig[0].resolution == (1280, 720)
    np.testing.assert_allclose(rig[0].dist, [-0.1, 0.01, 0, 0, 0])
    np.testing.assert_array_equal(rig[0].R, np.eye(3))


def test_opencv_bad_input(tmp_path, toy_rig):
    import cv2

    path = tmp_path / "bad.yaml"
    fs = cv2.FileStorage(str(path), cv2.FILE_STORAGE_WRITE)
    fs.startWriteStruct("cameras", cv2.FileNode_SEQ)
    fs.startWriteStruct("", cv2.FileNode_MAP)
    fs.write("name", "left")
    fs.write("image_width", 1280)
    fs.write("image_height", 720)
    fs.write("camera_matrix", toy_rig[0].K)
    fs.write("R", toy_rig[0].R * 1.5)
    fs.endWriteStruct()
    fs.endWriteStruct()
    fs.release()
    with pytest.raises(CalibrationError, match=r"bad\.yaml: camera 'left': field 'R' is not a rotation"):
        load_opencv_yaml(path)
    path.write_text("%YAML:1.0\ncameras: [ {name: a, camera_matrix: [1, 2\n")
    with pytest.raises(CalibrationError, match=r"bad\.yaml"):
        load_opencv_yaml(path)


@pytest.mark.parametrize(
    "fmt, name",
    [
        ("panoptic", "c.json"),
        ("voxelpose", "c.json"),
        ("metric", "c.json"),
        ("opencv", "c.yaml"),
        ("anipose", "c.toml"),
        ("pose2sim", "Calib.toml"),
        ("qualisys", "c.qca.txt"),
        ("rig", "c.yaml"),
    ],
)
def test_every_writer_round_trips_through_the_dispatcher(toy_rig, tmp_path, fmt, name):
    path = save_calibration(toy_rig, tmp_path / name, fmt)
    assert sniff_format(path) == fmt
    back = load_calibration(path)
    _assert_same(back, toy_rig, atol_R=1e-12, atol_t=1e-9)
    pts = np.array([[0.0, 0.0, 900.0], [500.0, -300.0, 1700.0]])
    for a, b in zip(toy_rig, back):
        np.testing.assert_allclose(project_points(pts, a), project_points(pts, b), atol=1e-9)
    assert load_calibration(path, camera_names=["cam2", "cam0"]).names == ["cam2", "cam0"]


def test_dispatcher_errors(tmp_path, toy_rig):
    weird = tmp_path / "x.json"
    weird.write_text('{"hello": 1}')
    with pytest.raises(CalibrationError, match=r"x\.json: JSON layout matches no known calibration format"):
        load_calibration(weird)
    with pytest.raises(CalibrationError, match=r"unknown calibration format 'panoptik' \(did you mean 'panoptic'\?\)"):
        load_calibration(weird, fmt="panoptik")
    with pytest.raises(CalibrationError, match=r"x\.json: cannot choose a format"):
        save_calibration(toy_rig, weird)
    (tmp_path / "a.npy").write_bytes(b"\x93NUMPY")
    with pytest.raises(CalibrationError, match=r"a\.npy: cannot tell the calibration format from the suffix '\.npy'"):
        load_calibration(tmp_path / "a.npy")
    assert set(FORMATS) == {"panoptic", "voxelpose", "metric", "opencv", "anipose", "pose2sim", "qualisys", "rig"}


def test_scale_intrinsics_is_a_resize(toy_rig, rng):
    cam = toy_rig[0]
    small = scale_intrinsics(cam, 640, 360)
    assert small.resolution == (640, 360)
    np.testing.assert_array_equal(small.dist, cam.dist)
    pts = rng.uniform([-1000, -1000, 100], [1000, 1000, 1800], size=(50, 3))
    np.testing.assert_allclose(project_points(pts, small), project_points(pts, cam) / 2, atol=1e-9)


def test_sniffing_yaml_flavours(toy_rig, tmp_path):
    save_calibration(toy_rig, tmp_path / "cams.json", "panoptic")
    ref_only = tmp_path / "ref.yaml"
    ref_only.write_text("name: ref\ncalibration: {path: cams.json}\n")
    assert sniff_format(ref_only) == "rig"
    assert load_calibration(ref_only).names == toy_rig.names
    # OpenCV YAML whose %YAML header was stripped: PyYAML cannot read its tags, OpenCV can.
    text = save_opencv_yaml(toy_rig, tmp_path / "cv.yaml").read_text()
    headless = tmp_path / "headless.yaml"
    headless.write_text(text.split("---\n", 1)[1])
    assert sniff_format(headless) == "opencv"
    _assert_same(load_calibration(headless), toy_rig, atol_R=0.0, atol_t=0.0)
