"""Pure-numpy geometry builders (no display needed)."""

from __future__ import annotations

import numpy as np
import pytest

from calib.projection import project_points
from calib.common.skeleton import PANOPTIC15
from viz import geometry as geo

from .conftest import make_poses


def test_skeleton_lines_cover_every_bone_with_track_colour(two_people):
    poses, ids = two_people
    ls = geo.skeleton_lines(poses, PANOPTIC15.edges, ids)
    assert len(ls.lines) == 2 * len(PANOPTIC15.edges)
    seg = ls.segments_w  # (M,2,3)
    want = np.concatenate([poses[p, np.array(PANOPTIC15.edges), :3] for p in range(2)])
    np.testing.assert_allclose(seg, want, atol=1e-4)
    np.testing.assert_allclose(ls.colors[0], geo.track_color(3))
    np.testing.assert_allclose(ls.colors[-1], geo.track_color(8))


def test_low_score_and_nan_joints_drop_their_bones():
    poses = make_poses([(0.0, 0.0)])
    poses[0, 5, 3] = 0.05  # l_wrist barely seen
    poses[0, 14, :3] = np.nan  # r_ankle unknown
    ls = geo.skeleton_lines(poses, PANOPTIC15.edges, [0], min_score=0.1)
    drawn = {tuple(e) for e in ls.lines.tolist()}
    assert (4, 5) not in drawn and (13, 14) not in drawn
    assert len(ls.lines) == len(PANOPTIC15.edges) - 2
    pts = geo.joint_points(poses, [0], min_score=0.1)
    assert len(pts.points_w) == 13


def test_track_colours_are_distinct_and_stable():
    cols = np.array([geo.track_color(i) for i in range(12)])
    d = np.linalg.norm(cols[:, None] - cols[None], axis=-1) + np.eye(12) * 9
    assert d.min() > 0.08
    assert geo.track_color(5) == geo.track_color(5)
    assert geo.track_color(-1) == geo.UNTRACKED_RGB


def test_confidence_shade_fades_with_score():
    hi, lo = np.array(geo.confidence_shade((1.0, 0.2, 0.2), 1.0)), np.array(geo.confidence_shade((1.0, 0.2, 0.2), 0.1))
    assert hi[0] > lo[0] + 0.4
    np.testing.assert_allclose(hi, (1.0, 0.2, 0.2))


def test_person_labels_sit_above_the_head():
    poses = make_poses([(100.0, 200.0)])
    labels = geo.person_labels(poses, [4])
    assert len(labels) == 1 and labels[0].text.startswith("id 4")
    assert labels[0].point_w[2] > poses[0, :, 2].max()


def test_frustum_corners_project_to_image_corners(toy_rig):
    cam = toy_rig[1]
    ls = geo.camera_frustum(cam, depth_mm=700.0)
    np.testing.assert_allclose(ls.points_w[0], cam.center_mm)
    uv = project_points(ls.points_w[1:5], cam)
    w, h = cam.width - 1, cam.height - 1
    np.testing.assert_allclose(uv, [[0, 0], [w, 0], [w, h], [0, h]], atol=1e-3)
    z = (ls.points_w[1:5] - cam.center_mm) @ cam.R[2]
    np.testing.assert_allclose(z, 700.0, rtol=1e-9)
    # the 'up' marker is above the image (negative v)
    assert project_points(ls.points_w[5], cam)[1] < 0


def test_rig_frusta_marks_missing_cameras_red(toy_rig):
    ls = geo.rig_frusta(toy_rig, missing=["cam2"])
    assert len(ls.lines) == 4 * 10
    red = np.all(ls.colors == geo.MISSING_CAMERA_RGB, axis=1)
    assert red.sum() == 10 and red[20:30].all()


def test_floor_grid_lines_on_world_multiples():
    ls = geo.floor_grid((0.0, -500.0), (8000.0, 8000.0), 1000.0)
    assert np.all(ls.points_w[:, 2] == 0.0)
    xs = np.unique(ls.points_w[:, 0])
    assert xs.min() == -4000 and xs.max() == 4000 and len(xs) == 9
    ys = np.unique(ls.points_w[:, 1])
    assert ys.min() == -4500 and ys.max() == 3500 and -4000 in ys and 3000 in ys
    with pytest.raises(ValueError, match="spacing_mm"):
        geo.floor_grid((0, 0), (1, 1), 0.0)


def test_box_has_12_axis_aligned_edges_of_the_right_length():
    ls = geo.box_lines((0.0, -500.0, 800.0), (8000.0, 6000.0, 2000.0))
    seg = ls.segments_w
    lengths = sorted(np.linalg.norm(seg[:, 1] - seg[:, 0], axis=1).round())
    assert lengths == [2000.0] * 4 + [6000.0] * 4 + [8000.0] * 4
    assert ls.points_w[:, 2].min() == -200.0 and ls.points_w[:, 2].max() == 1800.0


def test_merge_rebases_indices(toy_rig):
    a, b = geo.box_lines((0, 0, 0), (1, 1, 1)), geo.camera_frustum(toy_rig[0])
    m = geo.merge([a, b])
    np.testing.assert_allclose(m.segments_w, np.concatenate([a.segments_w, b.segments_w]))
    assert len(geo.merge([]).lines) == 0


def test_orbit_and_follow_cameras_look_at_their_target():
    target = np.array([500.0, -200.0, 900.0])
    cam = geo.orbit_camera(target, 5000.0, 30.0, 20.0, 640, 360)
    np.testing.assert_allclose(project_points(target, cam), [(640 - 1) / 2, (360 - 1) / 2], atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(cam.center_mm - target), 5000.0)
    up = project_points(target + [0, 0, 500.0], cam)
    assert up[1] < 179.5  # world up is image up
    person = np.array([2000.0, 1000.0, 900.0])
    fol = geo.follow_camera(cam, person, 3000.0)
    np.testing.assert_allclose(project_points(person, fol), [319.5, 179.5], atol=1e-6)
    np.testing.assert_allclose(fol.R, cam.R)


def test_root_position_falls_back_to_mean_of_valid_joints():
    poses = make_poses([(0.0, 0.0)])
    np.testing.assert_allclose(geo.root_position_mm(poses, 0, 2), poses[0, 2, :3])
    poses[0, 2, 3] = 0.0
    np.testing.assert_allclose(
        geo.root_position_mm(poses, 0, 2, min_score=0.5), np.delete(poses[0, :, :3], 2, axis=0).mean(0), rtol=1e-6
    )
