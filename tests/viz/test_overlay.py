"""2D overlay: skeletons drawn into camera images land where calib.projection says."""

from __future__ import annotations

import importlib

import numpy as np
import pytest

from calib.projection import project_points
from calib.common.skeleton import PANOPTIC15
from viz import geometry as geo
from viz import overlay
from viz.render_check import distance_to_segments

from .conftest import make_poses


def _changed(a, b):
    return np.abs(a.astype(np.int16) - b.astype(np.int16)).max(-1) > 0


def _assert_drawn_on_projection(before, after, cam, poses, tol_px):
    ys, xs = np.nonzero(_changed(before, after))
    pix = np.stack([xs, ys], -1).astype(float)
    assert len(pix) > 100, "nothing drawn"
    segs = np.concatenate(
        [project_points(poses[p, np.array(PANOPTIC15.edges), :3].astype(float), cam) for p in range(len(poses))]
    )
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
    after = overlay.draw_skeletons(
        before, cam, poses, PANOPTIC15.edges, [1, 2], labels=False, thickness_px=2, joint_radius_px=3
    )
    assert after is not before and np.all(before == 90)  # input untouched
    # joint disc radius + pixel rounding (0.71) + anti-aliasing fringe (1)
    _assert_drawn_on_projection(before, after, cam, poses, tol_px=3 + 1.75)


def test_people_behind_the_camera_are_not_drawn(toy_rig):
    cam = toy_rig[0]
    behind = make_poses([(0.0, 0.0)])
    behind[0, :, :3] = (
        cam.center_mm + 0.5 * (cam.center_mm - np.array([0.0, 0.0, 900.0])) + (behind[0, :, :3] - [0, 0, 900])
    )
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

    small = CameraRig(tuple(c.replace(width=320, height=180, K=np.diag([0.25, 0.25, 1.0]) @ c.K) for c in toy_rig))
    world = world_mod.SyntheticWorld(
        small, num_people=2, seed=3, fps=10.0, volume_center_mm=(0, 0, 800), volume_size_mm=(5000, 5000, 2000)
    )
    k = 5
    images = world.render(k)
    people = world.people(k)
    pres = np.flatnonzero(people.present)
    poses = np.concatenate([people.joints_mm[pres], np.ones((len(pres), 15, 1))], -1)
    checked = 0
    for img, cam in zip(images, small):
        after = overlay.draw_skeletons(
            img, cam, poses, PANOPTIC15.edges, people.ids[pres], labels=False, thickness_px=1, joint_radius_px=2
        )
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
    rig = load_calibration(
        root / "cameras_voxelpose.json", image_size=(1920, 1080), camera_names=[str(n) for n in d["camera_names"]]
    )
    rows = np.flatnonzero((d["sequence"] == d["sequence"][0]) & (d["frame"] == d["frame"][0]))  # 3 people
    poses = np.concatenate([d["joints15_voxelpose_mm"][rows], d["vis15"][rows, :, None].astype(float)], -1)
    edges = np.array(PANOPTIC15.edges)
    for v, cam in enumerate(rig):
        blank = np.zeros((cam.height, cam.width, 3), np.uint8)
        drawn = overlay.draw_skeletons(
            blank,
            cam,
            poses,
            PANOPTIC15.edges,
            d["body_id"][rows],
            min_score=0.5,
            labels=False,
            thickness_px=2,
            joint_radius_px=3,
        )
        ref = d["uv_hd_1920x1080"][rows, v, :15]  # (3,15,2) independent reference
        vis = d["vis15"][rows]
        segs = np.concatenate([ref[p, edges] for p in range(len(rows))])[
            np.concatenate([vis[p, edges[:, 0]] & vis[p, edges[:, 1]] for p in range(len(rows))])
        ]
        ys, xs = np.nonzero(drawn.max(-1) > 0)
        dist = distance_to_segments(np.stack([xs, ys], -1).astype(float), segs)
        assert dist.max() <= 3 + 1.75, f"camera {cam.name}: a drawn pixel is {dist.max():.1f} px off"
        inside = vis & (ref[..., 0] >= 0) & (ref[..., 0] < 1920) & (ref[..., 1] >= 0) & (ref[..., 1] < 1080)
        px = np.round(ref[inside]).astype(int)
        assert len(px) > 10 and drawn[px[:, 1], px[:, 0]].max(-1).min() > 0, f"camera {cam.name}: a joint is not drawn"


# ------------------------------------------------------------------ readability (issue 23 item 7)


def _portrait_camera(scale: float = 1.0):
    """A 1088x1920 portrait camera (Pose2Sim demo-like) 3.5 m in front of the origin, or scaled."""
    from calib.camera import Camera

    w, h, f = round(1088 * scale), round(1920 * scale), 1680.0 * scale
    K = np.array([[f, 0, w / 2], [0, f, h / 2], [0, 0, 1.0]])
    R = np.array([[1.0, 0, 0], [0, 0, -1], [0, 1, 0]])  # looks along +y, image up = world z
    return Camera.from_center("portrait", w, h, K, np.zeros(5), R, [0, -3500, 1000])


def test_overlay_style_scales_with_the_displayed_image():
    # A 1088x1920 frame shown as a 640 px tile: about 3.6 px bones on screen (6 px in the frame).
    s = overlay.overlay_style(1088, 1920, 640 / 1088)
    assert s.line_px == 6 and 3.0 <= s.line_px * 640 / 1088 <= 4.0
    assert s.joint_radius_px > s.line_px
    assert 15 <= s.font_scale * overlay.FONT_PX_AT_SCALE_1 * 640 / 1088 <= 22  # label height on screen, px
    # Shown at full size: 6 px bones too (0.0028 x the 2207 px diagonal), labels 31 px tall.
    full = overlay.overlay_style(1088, 1920)
    assert full.line_px == 6 and full.font_scale > 1.3
    tiny = overlay.overlay_style(320, 180)
    assert tiny.line_px == 2 and tiny.joint_radius_px >= 3
    # Portrait and landscape of one size look the same; the old width rule gave portrait thinner lines.
    assert overlay.overlay_style(1920, 1088, 0.5) == overlay.overlay_style(1088, 1920, 0.5)
    with pytest.raises(ValueError):
        overlay.overlay_style(0, 10)


def test_person_colours_are_distinct_and_stable_by_track_id():
    ids = np.arange(8)
    cols = overlay.person_colors(ids)
    d = np.linalg.norm(cols[:, None] - cols[None], axis=-1) + np.eye(8) * 9
    assert d.min() > 0.15  # eight people, eight clearly different colours
    # The colour follows the id, not the person's position in the message.
    np.testing.assert_array_equal(overlay.person_colors([5, 2])[::-1], overlay.person_colors([2, 5]))
    # Untracked people are told apart instead of all being grey, also from the tracked ones.
    untracked = overlay.person_colors([-1, -1, -1])
    assert len({tuple(c) for c in untracked.round(6)}) == 3
    assert not np.any(np.all(np.isclose(untracked, geo.UNTRACKED_RGB), axis=1))
    mixed = overlay.person_colors([0, -1, 1, -1])
    assert len({tuple(c) for c in mixed.round(6)}) == 4
    np.testing.assert_array_equal(mixed[[0, 2]], overlay.person_colors([0, 1]))


def test_confidence_alpha_is_monotonic_and_quantised():
    s = np.linspace(0, 1, 101)
    a = overlay.confidence_alpha(s)
    assert a[0] == pytest.approx(0.3) and a[-1] == pytest.approx(1.0)
    assert np.all(np.diff(a) >= 0) and len(np.unique(a.round(9))) == overlay.ALPHA_LEVELS
    assert overlay.confidence_alpha(np.nan) == pytest.approx(0.3)


def _bone_width_px(drawn: np.ndarray, background: int, cam, a_mm, b_mm) -> float:
    """Mean count of changed pixels across the bone, sampled perpendicular to it mid-way."""
    from calib.projection import project_points as proj

    pa, pb = proj(np.array([a_mm, b_mm], float), cam)
    changed = np.abs(drawn.astype(int) - background).max(-1) > 8
    d = (pb - pa) / np.linalg.norm(pb - pa)
    n = np.array([-d[1], d[0]])
    widths = []
    for t in np.linspace(0.3, 0.7, 5):
        c = pa + t * (pb - pa)
        samples = np.round(c + np.arange(-40, 41)[:, None] * 0.25 * n).astype(int)
        widths.append(changed[samples[:, 1], samples[:, 0]].sum() * 0.25)
    return float(np.median(widths))


def test_rendered_strokes_scale_with_the_image_and_fade_with_confidence():
    a_mm, b_mm = [-300.0, 0.0, 700.0], [300.0, 0.0, 1300.0]  # one long diagonal bone
    poses = np.array([[a_mm + [1.0], b_mm + [1.0]]])
    widths = {}
    for scale in (0.5, 1.0):
        cam = _portrait_camera(scale)
        blank = np.full((cam.height, cam.width, 3), 40, np.uint8)
        drawn = overlay.draw_skeletons(blank, cam, poses, [(0, 1)], [3], labels=False)
        widths[scale] = _bone_width_px(drawn, 40, cam, a_mm, b_mm)
        style = overlay.overlay_style(cam.width, cam.height)
        # the stroke plus at most one anti-aliased pixel on each side
        assert style.line_px - 0.5 <= widths[scale] <= style.line_px + 2, (scale, widths[scale], style)
    # Twice the image size, about twice the stroke (in pixels): the same look on screen.
    assert 1.6 <= widths[1.0] / widths[0.5] <= 2.5, widths
    assert widths[1.0] >= 5.5  # the old rule gave 3 px on a 1088x1920 frame
    # Confidence by opacity: the same bone at score 0.2 lies between the background and the colour.
    cam = _portrait_camera(1.0)
    blank = np.full((cam.height, cam.width, 3), 40, np.uint8)
    mid = np.round(project_points(np.mean([a_mm, b_mm], 0), cam)).astype(int)
    colour = np.array(geo.to_bgr255(geo.track_color(3)), float)
    for score in (1.0, 0.2):
        weak = poses.copy()
        weak[..., 3] = score
        px = overlay.draw_skeletons(blank, cam, weak, [(0, 1)], [3], labels=False)[mid[1], mid[0]].astype(float)
        alpha = float(overlay.confidence_alpha(score))
        np.testing.assert_allclose(px, 40 + alpha * (colour - 40), atol=2.0)


def test_labels_name_the_track_and_grow_with_the_image():
    poses = make_poses([(0.0, 0.0)])
    heights = []
    for scale in (0.5, 1.0):
        cam = _portrait_camera(scale)
        blank = np.zeros((cam.height, cam.width, 3), np.uint8)
        with_label = overlay.draw_skeletons(blank, cam, poses, PANOPTIC15.edges, [7], labels=True)
        without = overlay.draw_skeletons(blank, cam, poses, PANOPTIC15.edges, [7], labels=False)
        ys, _ = np.nonzero(_changed(with_label, without))
        head_v = project_points(poses[0, :, :3].astype(float), cam)[:, 1].min()
        assert len(ys) > 50 and ys.max() < head_v  # the label sits above the head
        heights.append(ys.max() - ys.min())
    assert 1.6 <= heights[1] / heights[0] <= 2.5, heights
