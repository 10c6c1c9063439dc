"""Camera validation and numpy/torch/OpenCV projection parity on a distorted toy rig."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from calib.camera import CalibrationError, Camera, CameraRig
from calib.projection import project_points, triangulate_dlt, undistort_pixels, undistort_points
from calib.projection_torch import CameraTensors
from calib.projection_torch import project_points as project_points_torch


def _points(rng, n=200):
    return rng.uniform([-1500, -1500, 0], [1500, 1500, 1900], size=(n, 3))


def test_numpy_projection_matches_opencv(toy_rig, rng):
    pts = _points(rng)
    for cam in toy_rig:
        rvec, _ = cv2.Rodrigues(cam.R)
        ref, _ = cv2.projectPoints(pts.reshape(-1, 1, 3), rvec, cam.t_mm, cam.K, cam.dist)
        np.testing.assert_allclose(project_points(pts, cam), ref.reshape(-1, 2), atol=1e-6)


def test_torch_twin_matches_numpy_and_is_differentiable(toy_rig, rng):
    pts = _points(rng)
    cams = CameraTensors.from_rig(toy_rig, dtype=torch.float64)
    x = torch.tensor(pts, requires_grad=True)
    uv = project_points_torch(x, cams)  # (V,N,2)
    assert uv.shape == (len(toy_rig), len(pts), 2)
    for v, cam in enumerate(toy_rig):
        np.testing.assert_allclose(uv[v].detach().numpy(), project_points(pts, cam), atol=1e-8)
    uv.sum().backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    batched = project_points_torch(x.detach().reshape(4, 50, 3), cams)
    assert batched.shape == (len(toy_rig), 4, 50, 2)
    np.testing.assert_allclose(batched.reshape(len(toy_rig), -1, 2).numpy(), uv.detach().numpy(), atol=1e-9)


def test_undistort_inverts_distortion(toy_rig, rng):
    pts = _points(rng)
    for cam in toy_rig:
        uv = project_points(pts, cam)
        ref = cv2.undistortPoints(uv.reshape(-1, 1, 2), cam.K, cam.dist).reshape(-1, 2)
        np.testing.assert_allclose(undistort_points(uv, cam), ref, atol=1e-6)
        xc = pts @ cam.R.T + cam.t_mm
        ideal = xc[:, :2] / xc[:, 2:] * cam.f + cam.c
        np.testing.assert_allclose(undistort_pixels(uv, cam), ideal, atol=1e-3)


def test_triangulation_recovers_point(toy_rig):
    X = np.array([120.0, -340.0, 1100.0])
    uv = np.stack([project_points(X, c) for c in toy_rig])
    np.testing.assert_allclose(triangulate_dlt(uv, list(toy_rig)), X, atol=1e-6)


def test_bad_cameras_raise_naming_field(toy_rig):
    cam = toy_rig[0]
    with pytest.raises(CalibrationError, match=r"toy_rig: camera 'cam0': field 'R' is not a rotation"):
        cam.replace(R=cam.R * 2.0)
    with pytest.raises(CalibrationError, match=r"field 'dist' must have shape \(5,\)"):
        cam.replace(dist=[0.1, 0.2])
    with pytest.raises(CalibrationError, match="units cannot be right"):
        cam.replace(t_mm=cam.t_mm * 1e4)
    with pytest.raises(CalibrationError, match="field 'K'"):
        cam.replace(K=np.diag([900.0, -900.0, 1.0]))
    with pytest.raises(CalibrationError, match="duplicate camera names"):
        CameraRig((cam, cam))
    with pytest.raises(CalibrationError, match="no camera named 'cam9'"):
        toy_rig["cam9"]


def test_rig_subset_and_stacks(toy_rig):
    sub = toy_rig.subset(["cam2", "cam0"])
    assert sub.names == ["cam2", "cam0"]
    assert sub.R.shape == (2, 3, 3) and sub.t_mm.shape == (2, 3) and sub.dist.shape == (2, 5)
    np.testing.assert_allclose(sub.centers_mm[1], toy_rig[0].center_mm)
    assert isinstance(toy_rig[0], Camera)
