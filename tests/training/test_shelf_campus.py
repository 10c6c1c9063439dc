"""Shelf/Campus parser: specs, actorsGT.mat reader, fixture GT and OpenPose candidates."""

from __future__ import annotations

import numpy as np
import pytest

from calib.projection import in_image, project_points
from training.datasets.shelf_campus import (
    CAMPUS,
    SHELF,
    OpenPoseCandidates,
    VoxelPoseDataset,
    load_ground_truth,
    read_actors_gt_mat,
)
from training.errors import DatasetError


def test_specs_frames_and_paths(tmp_path):
    assert SHELF.eval_frames[0] == 300 and SHELF.eval_frames[-1] == 600 and len(SHELF.eval_frames) == 301
    assert len(CAMPUS.eval_frames) == 121 + 101 and 471 not in CAMPUS.eval_frames and 650 in CAMPUS.eval_frames
    assert VoxelPoseDataset(tmp_path, SHELF).image_path(2, 300).as_posix().endswith("Camera2/img_000300.png")
    assert VoxelPoseDataset(tmp_path, CAMPUS).image_path(1, 350).as_posix().endswith("Camera1/campus4-c1-00350.png")


def _write_actors_mat(path, poses_m):
    """actor3D as MATLAB stores it: 1×A cell of F×1 cells of 14×3 (or empty) arrays."""
    from scipy.io import savemat

    A, F = len(poses_m), len(poses_m[0])
    actor3d = np.empty((1, A), dtype=object)
    for a in range(A):
        cells = np.empty((F, 1), dtype=object)
        for f in range(F):
            cells[f, 0] = np.zeros((0, 0)) if poses_m[a][f] is None else poses_m[a][f]
        actor3d[0, a] = cells
    savemat(str(path), {"actor3D": actor3d})


def test_actors_gt_mat_reader(tmp_path, rng):
    poses = [[rng.normal(size=(14, 3)) if (a + f) % 3 else None for f in range(6)] for a in range(2)]
    _write_actors_mat(tmp_path / "actorsGT.mat", poses)
    gt = read_actors_gt_mat(tmp_path / "actorsGT.mat", [1, 2, 4])
    assert gt.joints_mm.shape == (3, 2, 14, 3) and gt.frame_ids.tolist() == [1, 2, 4]
    for i, f in enumerate([1, 2, 4]):
        for a in range(2):
            assert gt.valid[i, a] == (poses[a][f] is not None)
            if poses[a][f] is not None:
                np.testing.assert_allclose(gt.joints_mm[i, a], poses[a][f] * 1000.0)
    with pytest.raises(DatasetError, match="frame 9"):
        read_actors_gt_mat(tmp_path / "actorsGT.mat", [9])


@pytest.mark.data
def test_fixture_gt_and_calibration(shared_data):
    ds = VoxelPoseDataset(shared_data / "shelf", SHELF)
    gt = ds.load_gt()
    assert gt.joints_mm.shape == (301, 4, 14, 3)
    assert gt.valid.sum(0).tolist() == [279, 37, 161, 33]
    rig = ds.load_rig()
    assert rig.names == ["0", "1", "2", "3", "4"] and rig[0].resolution == (1032, 776)
    # hip centre of the fixture's 15th joint = mean of joints 2, 3 (checks the mm conversion)
    raw = np.load(shared_data / "shelf" / "gt.npz")
    ok = gt.valid
    np.testing.assert_allclose(raw["joints"][ok][:, 14] * 1000.0, gt.joints_mm[ok][:, 2:4].mean(1), atol=0.01)
    with pytest.raises(DatasetError, match="no actorsGT.mat or gt.npz"):
        load_ground_truth(shared_data / "panoptic_demo", SHELF)


@pytest.mark.data
def test_openpose_candidates_lie_near_projected_gt(shared_data):
    det = OpenPoseCandidates(shared_data / "shelf" / "detections.npz")
    assert (det.num_cameras, det.num_frames, det.num_joints) == (5, 301, 25)
    gt = load_ground_truth(shared_data / "shelf", SHELF)
    rig = VoxelPoseDataset(shared_data / "shelf", SHELF).load_rig()
    # Shelf-14 -> BODY_25: r_shoulder, l_shoulder, r_elbow, l_elbow, r_knee, l_knee
    pairs = [(8, 2), (9, 5), (7, 3), (10, 6), (1, 10), (4, 13)]
    dists = []
    for f in range(0, 301, 10):
        for a in np.flatnonzero(gt.valid[f]):
            for c, cam in enumerate(rig):
                for s, b in pairs:
                    uv = project_points(gt.joints_mm[f, a, s], cam)
                    xy, score = det.candidates(c, f, b)
                    if in_image(uv, cam) and len(xy):
                        dists.append(np.linalg.norm(xy - uv, axis=1).min())
    assert len(dists) > 500 and np.median(dists) < 25.0
    k = 0
    a, b = det.paf_pairs[k]
    m = det.paf(0, 0, k)
    assert m.shape == (len(det.candidates(0, 0, a)[0]), len(det.candidates(0, 0, b)[0]))
    assert det.frame_index(300) == 0
