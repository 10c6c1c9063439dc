"""2D overlay: skeletons drawn into camera images land where calib.projection says."""

from __future__ import annotations

import importlib

import numpy as np
import pytest

from calib.projection import project_points
from calib.common.skeleton import PANOPTIC15
from viz import overlay
from viz.render_check import distance_to_segments

from .conftest import make_poses


def _changed(a, b):
    return np.abs(a.astype(np.int16) - b.astype(np.int16)).max(-1) > 0


def _assert_drawn_on_projection(before, after, cam, poses, tol_px):
    ys, xs = np.nonzero(_changed(before, after))
    pix = np.stack([xs, ys], -1).astype(float)
    assert len(pix) > 100, "nothing drawn"
    segs = np.concatenate([project_points(poses[p, np.array(PANOPTIC15.edges), :3].astype(float), cam)
                           for p in range(len(poses))])
    d = distance_to_segments(pix, segs)
    assert d.max() <= tol_px, f"a drawn pixel is {d.max():.1f} px from every projected bone"
    # and every bone inside the image is drawn: sample along it, find a changed pixel nearby
    t = np.linspace(0.1, 0.9, 9)
    samples = (segs[:, None, 0] + t[None, :, None] * (segs[:, None, 1] - segs[:, None, 0])).reshape(-1, 2)
    inside = (samples >= 0).all(1) & (samples[:, 0] < cam.width - 1) & (samples[:, 1] < cam.height - 1)
    from scipy.spatial import cKDTree

    near, _ = cKDTree(pix).query(samples[inside])
    assert (near <= 1.5).mean() > 0.98


def test_draw_skeletons_follows_the_distorted_projection(toy_rig):
    cam = toy_rig[0]
    poses = make_poses([(-400.0, 0.0), (500.0, 600.0)])
    before = np.full((cam.height, cam.width, 3), 90, np.uint8)
    after = overlay.draw_skeletons(before, cam, poses, PANOPTIC15.edges, [1, 2], labels=False,
                                   thickness_px=2, joint_radius_px=3)
    assert after is not before and np.all(before == 90)  # input untouched
    # joint disc radius + pixel rounding (0.71) + anti-aliasing fringe (1)
    _assert_drawn_on_projection(before, after, cam, poses, tol_px=3 + 1.75)


def test_people_behind_the_camera_are_not_drawn(toy_rig):
    cam = toy_rig[0]
    behind = make_poses([(0.0, 0.0)])
    behind[0, :, :3] = cam.center_mm + 0.5 * (cam.center_mm - np.array([0.0, 0.0, 900.0])) + (behind[0, :, :3] - [0, 0, 900])
    img = np.zeros((cam.height, cam.width, 3), np.uint8)
    assert not _changed(img, overlay.draw_skeletons(img, cam, behind, PANOPTIC15.edges, [0])).any()


def test_overlay_views_tiles_and_marks_missing_views(toy_rig):
    poses = make_poses([(0.0, 0.0)])
    imgs = [np.full((c.height, c.width, 3), 60, np.uint8) for c in toy_rig]
    imgs[2] = None
    mosaic = overlay.overlay_views(imgs, toy_rig, poses, PANOPTIC15.edges, [5], tile_width_px=320)
    assert mosaic.shape == (2 * 180, 2 * 320, 3)
    tile = mosaic[180:, :320]  # view 2: black with a red caption bar
    assert tile[40:].max() == 0 and tile[:10, :, 2].mean() > tile[:10, :, 0].mean()
    assert mosaic[:180, :320].std() > 5  # view 0 has a drawn person
    with pytest.raises(ValueError, match="cam1"):
        bad = list(imgs)
        bad[1] = np.zeros((10, 10, 3), np.uint8)
        overlay.overlay_views(bad, toy_rig, poses, PANOPTIC15.edges, [5])
    with pytest.raises(ValueError, match="4 cameras"):
        overlay.overlay_views(imgs[:3], toy_rig, poses, PANOPTIC15.edges, [5])


def test_synthetic_truth_reprojected_onto_synthetic_renders(toy_rig):
    world_mod = importlib.import_module("capture.synthetic.world")
    from calib.camera import CameraRig

    small = CameraRig(tuple(
        c.replace(width=320, height=180, K=np.diag([0.25, 0.25, 1.0]) @ c.K)
        for c in toy_rig
    ))
    world = world_mod.SyntheticWorld(small, num_people=2, seed=3, fps=10.0, volume_center_mm=(0, 0, 800),
                                     volume_size_mm=(5000, 5000, 2000))
    k = 5
    images = world.render(k)
    people = world.people(k)
    pres = np.flatnonzero(people.present)
    poses = np.concatenate([people.joints_mm[pres], np.ones((len(pres), 15, 1))], -1)
    checked = 0
    for img, cam in zip(images, small):
        after = overlay.draw_skeletons(img, cam, poses, PANOPTIC15.edges, people.ids[pres], labels=False,
                                       thickness_px=1, joint_radius_px=2)
        if (project_points(poses[..., :3], cam) >= 0).all():
            _assert_drawn_on_projection(img, after, cam, poses, tol_px=2 + 1.75)
            checked += 1
    assert len(pres) >= 1 and checked >= 2, f"only {checked} views had everyone in frame"


@pytest.mark.data
def test_real_panoptic_truth_lands_on_the_independent_opencv_projections(shared_data):
    """Real CMU Panoptic GT and calibration (distorted HD cameras): the drawn skeletons match the
    pixel positions the data set's author computed with cv2.projectPoints (uv_hd_1920x1080)."""
    from calib.io import load_calibration

    root = shared_data / "panoptic_body3d_samples"
    d = np.load(root / "samples.npz")
    rig = load_calibration(root / "cameras_voxelpose.json", image_size=(1920, 1080),
                           camera_names=[str(n) for n in d["camera_names"]])
    rows = np.flatnonzero((d["sequence"] == d["sequence"][0]) & (d["frame"] == d["frame"][0]))  # 3 people
    poses = np.concatenate([d["joints15_voxelpose_mm"][rows], d["vis15"][rows, :, None].astype(float)], -1)
    edges = np.array(PANOPTIC15.edges)
    for v, cam in enumerate(rig):
        blank = np.zeros((cam.height, cam.width, 3), np.uint8)
        drawn = overlay.draw_skeletons(blank, cam, poses, PANOPTIC15.edges, d["body_id"][rows], min_score=0.5,
                                       labels=False, thickness_px=2, joint_radius_px=3)
        ref = d["uv_hd_1920x1080"][rows, v, :15]  # (3,15,2) independent reference
        vis = d["vis15"][rows]
        segs = np.concatenate([ref[p, edges] for p in range(len(rows))
                               ])[np.concatenate([vis[p, edges[:, 0]] & vis[p, edges[:, 1]] for p in range(len(rows))])]
        ys, xs = np.nonzero(drawn.max(-1) > 0)
        dist = distance_to_segments(np.stack([xs, ys], -1).astype(float), segs)
        assert dist.max() <= 3 + 1.75, f"camera {cam.name}: a drawn pixel is {dist.max():.1f} px off"
        inside = vis & (ref[..., 0] >= 0) & (ref[..., 0] < 1920) & (ref[..., 1] >= 0) & (ref[..., 1] < 1080)
        px = np.round(ref[inside]).astype(int)
        assert len(px) > 10 and drawn[px[:, 1], px[:, 0]].max(-1).min() > 0, f"camera {cam.name}: a joint is not drawn"
