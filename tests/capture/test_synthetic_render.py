"""Synthetic rendering: truth lands on the rendered limbs, occlusion flags agree with the image."""

from __future__ import annotations

import numpy as np
import pytest

from calib.projection import project_points
from capture.synthetic import body as B
from capture.synthetic.render import LIMB_COLOUR_FIELD
from capture.synthetic.rigs import look_at_rotation, ring_rig, scale_rig
from capture.synthetic.world import SyntheticWorld

FIELDS = ("shirt", "trousers", "skin", "hair", "shoes")


@pytest.fixture(scope="module")
def world():
    rig = ring_rig(
        4, radius_mm=3500.0, height_mm=2000.0, target_mm=(0.0, 0.0, 900.0), width=480, height=270, fov_deg=75.0, seed=1
    )
    return SyntheticWorld(rig, num_people=4, seed=11, fps=10.0, volume_center_mm=(0.0, 0.0, 800.0))


def _candidates(world, frame, view):
    """Colours a pixel of this view can show: (labels [(slot, field)], colours (K,3) under the light)."""
    gain = world.renderer.light_gain(view, frame.t_s)
    labels, colours = [], []
    for p in np.flatnonzero(frame.present):
        look = world.appearance(int(frame.ids[p]))
        for f in FIELDS:
            labels.append((int(p), f))
            colours.append(np.asarray(getattr(look, f), float) * gain)
    return labels, np.array(colours).reshape(-1, 3), gain


def _classify_many(world, frame, view, image, uv):
    """(slot, field) per pixel (N,2) of the appearance colour that explains it best, or
    (-1, 'background') when the empty room's colour there explains it better."""
    labels, colours, gain = _candidates(world, frame, view)
    xy = np.round(uv).astype(int)
    px = image[xy[:, 1], xy[:, 0]].astype(float)  # (N,3)
    bg = world.renderer.views[view].background[xy[:, 1], xy[:, 0]] * gain  # (N,3)
    cand = np.concatenate([bg[:, None], np.broadcast_to(colours, (len(px),) + colours.shape)], axis=1)  # (N,K+1,3)
    # Shading tones scale a colour by 0.62x..1.18x: fit the best scale per candidate.
    scale = np.clip((px[:, None] * cand).sum(-1) / np.maximum((cand * cand).sum(-1), 1e-9), 0.5, 1.35)
    err = np.linalg.norm(px[:, None] - scale[..., None] * cand, axis=-1)
    best = err.argmin(1)
    return [(-1, "background") if b == 0 else labels[b - 1] for b in best]


def test_images_have_calibrated_size_and_are_deterministic(world):
    imgs = world.render(3)
    assert [im.shape for im in imgs] == [(c.height, c.width, 3) for c in world.rig]
    assert all(im.dtype == np.uint8 for im in imgs)
    again = SyntheticWorld(world.rig, num_people=4, seed=11, fps=10.0, volume_center_mm=(0.0, 0.0, 800.0)).render(
        3, views=[2]
    )
    assert np.array_equal(again[0], imgs[2])
    assert not np.array_equal(world.render(4)[2], imgs[2])


def test_projected_limb_midpoints_land_on_the_limb_colour(world):
    hits, same_person, total = 0, 0, 0
    for k in range(0, 60, 6):
        frame = world.people(k)
        imgs, labels = world.render_with_labels(k)
        truth = world.truth(k, labels=labels)
        for v, cam in enumerate(world.rig):
            for p in np.flatnonzero(frame.present):
                look = world.appearance(int(frame.ids[p]))
                for a, b in LIMB_COLOUR_FIELD:
                    field = look.limb_field((a, b))
                    mid = (frame.joints_mm[p, a] + frame.joints_mm[p, b]) / 2
                    uv = project_points(mid, cam)
                    x, y = int(round(uv[0])), int(round(uv[1]))
                    if not (truth.visible[v, p, a] and truth.visible[v, p, b]):
                        continue
                    if not (2 <= x < cam.width - 2 and 2 <= y < cam.height - 2) or labels[v][y, x] != p + 1:
                        continue
                    total += 1
                    slot, got = _classify_many(world, frame, v, imgs[v], uv[None])[0]
                    # Skin tones are alike across people: bare limbs are judged by the field only.
                    bare_ok = field == "skin" and got == "skin"
                    same_person += slot == p or bare_ok
                    hits += (slot, got) == (p, field) or bare_ok
    assert total > 300
    # Nearly always this person's colours; mostly the limb's own garment (the rest is the same
    # person's torso or hands in front of the limb: self-occlusion is not flagged, as in Panoptic).
    assert same_person / total > 0.95, f"{same_person}/{total} limb midpoints show their person"
    assert hits / total > 0.8, f"{hits}/{total} limb midpoints show the limb's clothing colour"


def test_occlusion_flags_agree_with_the_rendered_image_and_depth(world):
    own_ok = own_n = occ_ok = occ_n = 0
    for k in range(0, 100, 4):
        frame = world.people(k)
        imgs = world.render(k)
        truth = world.truth(k)
        for v, _cam in enumerate(world.rig):
            assert not np.any(truth.visible[v] & ~truth.in_image[v])
            slots, joints = np.nonzero(truth.in_image[v])
            got = _classify_many(world, frame, v, imgs[v], truth.joints_2d[v, slots, joints])
            for p, j, (slot, _) in zip(slots, joints, got):
                if truth.visible[v, p, j]:
                    own_n += 1
                    own_ok += slot == p
                else:
                    q = truth.occluder[v, p, j]
                    assert q >= 0 and q != p and frame.present[q]
                    # The occluder is nearer the camera than the hidden joint.
                    assert np.nanmin(truth.depth_mm[v, q]) < truth.depth_mm[v, p, j]
                    occ_n += 1
                    occ_ok += slot == q
    assert own_n > 2000 and occ_n > 30
    assert own_ok / own_n > 0.85, f"visible joints showing their own person: {own_ok}/{own_n}"
    assert occ_ok / occ_n > 0.8, f"occluded joints showing the occluder: {occ_ok}/{occ_n}"


def test_frame_edge_flags(world):
    cam = world.rig[0]
    for k in range(0, 200, 10):
        truth = world.truth(k)
        uv = truth.joints_2d[0]
        inside = (uv[..., 0] >= 0) & (uv[..., 0] <= cam.width - 1) & (uv[..., 1] >= 0) & (uv[..., 1] <= cam.height - 1)
        assert np.array_equal(truth.in_image[0], inside & (truth.depth_mm[0] > 0))


def test_ring_rig_looks_at_target_and_scales():
    rig = ring_rig(
        6,
        radius_mm=5000.0,
        height_mm=2500.0,
        target_mm=(100.0, -300.0, 900.0),
        width=800,
        height=600,
        fov_deg=60.0,
        jitter=0.0,
    )
    assert len(rig) == 6 and rig.names[0] == "00_00"
    for cam in rig:
        uv = project_points(np.array([100.0, -300.0, 900.0]), cam)
        assert np.allclose(uv, [(800 - 1) / 2, (600 - 1) / 2], atol=1e-6)
        assert np.isclose(np.hypot(*(cam.center_mm[:2] - [100.0, -300.0])), 5000.0)
        assert cam.dist[0] < 0  # realistic barrel distortion
    arc = ring_rig(3, arc_deg=90.0, jitter=0.0)
    az = np.degrees(np.arctan2(arc.centers_mm[:, 1], arc.centers_mm[:, 0]))
    assert np.allclose(az, [0.0, 45.0, 90.0])
    small = scale_rig(rig, 400, 300)
    assert small[0].width == 400 and np.isclose(small[0].K[0, 0], rig[0].K[0, 0] / 2)
    R = look_at_rotation([0, -4000, 1500], [0, 0, 1500])
    assert np.allclose(R @ np.array([0.0, 1.0, 0.0]), [0, 0, 1])  # optical axis points at the target


def test_people_render_across_scales(world):
    small = SyntheticWorld(
        scale_rig(world.rig, 240, 135), num_people=4, seed=11, fps=10.0, volume_center_mm=(0.0, 0.0, 800.0)
    )
    truth_big, truth_small = world.truth(5), small.truth(5)
    # Same scene, half the pixels: projections scale by 1/2.
    ok = np.isfinite(truth_big.joints_2d)
    assert np.allclose(truth_small.joints_2d[ok], truth_big.joints_2d[ok] / 2, atol=1.0)


def test_body_parts_are_in_the_expected_order():
    assert LIMB_COLOUR_FIELD[(B.L_HIP, B.L_KNE)] == "trousers"
    from capture.synthetic.render import appearance_for

    looks = [appearance_for(i, 0) for i in range(200)]
    assert 0.2 < np.mean([a.short_sleeves for a in looks]) < 0.5 and 0.08 < np.mean([a.shorts for a in looks]) < 0.35
    bare = next(a for a in looks if a.short_sleeves and a.shorts)
    assert bare.limb_field((B.L_ELB, B.L_WRI)) == "skin" and bare.limb_field((B.R_KNE, B.R_ANK)) == "skin"
    assert bare.limb_field((B.L_SHO, B.L_ELB)) == "shirt"


@pytest.mark.data
@pytest.mark.parametrize(
    "calibration,image_size,center",
    [
        ("panoptic_demo/calibration.json", (1920, 1080), (0.0, -500.0, 800.0)),
        ("shelf/calibration.json", None, (450.0, -320.0, 800.0)),
    ],
)
def test_real_rigs_see_the_people(shared_data, calibration, image_size, center):
    from calib.io import load_calibration

    rig = load_calibration(shared_data / calibration, image_size=image_size)
    rig = scale_rig(rig, rig[0].width // 4, rig[0].height // 4)
    world = SyntheticWorld(rig, num_people=3, seed=1, fps=5.0, volume_center_mm=center)
    seen = []
    for k in range(0, 60, 3):
        truth = world.truth(k)
        seen.append((truth.visible.sum(-1) >= 8).any(-1))  # (V,) someone well visible
        assert np.all(truth.depth_mm[:, truth.present] > 0)  # nobody behind a camera
    assert np.mean(seen, axis=0).min() > 0.6
    imgs = world.render(10)
    assert [im.shape[:2] for im in imgs] == [(c.height, c.width) for c in rig]


def test_furniture_occludes_people_and_is_walked_around():
    rig = ring_rig(
        4, radius_mm=3500.0, height_mm=1600.0, target_mm=(0.0, 0.0, 700.0), width=480, height=270, fov_deg=75.0, seed=3
    )
    world = SyntheticWorld(rig, num_people=4, seed=12, fps=4.0, volume_center_mm=(0.0, 0.0, 800.0), num_props=4)
    assert len(world.props) >= 2
    hidden = shows_prop = 0
    for k in range(0, 160, 2):
        frame = world.people(k)
        for p in np.flatnonzero(frame.present):
            for prop in world.props:
                gap = np.linalg.norm(frame.joints_mm[p, B.MID_HIP, :2] - np.asarray(prop.center_mm))
                assert gap > prop.footprint_radius_mm + 300.0  # nobody walks through furniture
        if k % 4:
            continue
        imgs = world.render(k)
        truth = world.truth(k)
        for v, _cam in enumerate(rig):
            gain = world.renderer.light_gain(v, frame.t_s)
            prop_colours = [np.asarray(pr.colour, float) * gain for pr in world.props]
            people_colours = [
                np.asarray(getattr(world.appearance(int(frame.ids[q])), f), float) * gain
                for q in np.flatnonzero(frame.present)
                for f in FIELDS
            ]
            for p, j in zip(*np.nonzero(truth.in_image[v] & ~truth.visible[v] & (truth.occluder[v] < 0))):
                hidden += 1
                x, y = np.round(truth.joints_2d[v, p, j]).astype(int)
                px = imgs[v][y, x].astype(float)

                def err(c, px=px):
                    s = np.clip(px @ c / (c @ c), 0.5, 1.4)  # faces are shaded 0.66x..1.12x
                    return np.linalg.norm(px - s * c)

                shows_prop += min(map(err, prop_colours)) < min(map(err, people_colours))
    assert hidden > 20, "no joint was hidden by furniture"
    assert shows_prop / hidden > 0.8, f"{shows_prop}/{hidden} furniture-hidden joints show furniture"
