"""Affine (closed form), joint mapping, view-set sampling and photometric ops."""

from __future__ import annotations

import numpy as np
import pytest

from training.augment import (
    affine_transform,
    apply_affine,
    apply_op,
    autocontrast,
    base_scale,
    brightness,
    color,
    contrast,
    cutout,
    draw_view_set_augmentations,
    map_joints,
    posterize,
    rand_augment,
    sample_view_sets,
    view_sets_valid,
    warp_image,
)


def _closed_form(center, scale, rot_deg, out_size):
    """SPEC.md §2.1: A = k R(-rot), t = (Wo/2, Ho/2) - A c, k = Wo / (200 sw)."""
    th = np.deg2rad(-rot_deg)
    R = np.array([[np.cos(th), -np.sin(th)], [np.sin(th), np.cos(th)]])
    A = out_size[0] / (200.0 * scale[0]) * R
    return np.concatenate([A, (np.array(out_size) / 2.0 - A @ np.asarray(center))[:, None]], axis=1)


def test_panoptic_letterbox_numbers():
    s = base_scale((1920, 1080), (960, 512))
    np.testing.assert_allclose(s, [10.125, 5.4])
    A = affine_transform((960, 540), s, 0.0, (960, 512))
    np.testing.assert_allclose(A, [[0.474074, 0, 24.889], [0, 0.474074, 0]], atol=1e-3)
    np.testing.assert_allclose(base_scale((1032, 776), (960, 512)), [776 / 512 * 960 / 200, 776 / 200])  # pillar-boxed


def test_affine_matches_closed_form_and_inverse(rng):
    for _ in range(50):
        c = rng.uniform(100, 1500, size=2)
        s = rng.uniform(1, 12) * np.array([1.0, 512 / 960])
        rot = rng.uniform(-90, 90)
        A = affine_transform(c, s, rot, (960, 512))
        np.testing.assert_allclose(A, _closed_form(c, s, rot, (960, 512)), atol=1e-5)
        Ainv = affine_transform(c, s, rot, (960, 512), inverse=True)
        p = rng.uniform(0, 1000, size=(7, 2))
        np.testing.assert_allclose(apply_affine(apply_affine(p, A), Ainv), p, atol=1e-6)


def test_warp_moves_pixels_where_the_affine_says():
    img = np.zeros((1080, 1920, 3), np.uint8)
    img[400:404, 1300:1304] = 255
    A = affine_transform((960, 540), base_scale((1920, 1080), (960, 512)) * 0.8, 30.0, (960, 512))
    out = warp_image(img, A, (960, 512))
    ys, xs = np.nonzero(out[..., 0] > 100)
    np.testing.assert_allclose([xs.mean(), ys.mean()], apply_affine(np.array([1301.5, 401.5]), A), atol=1.0)


def test_map_joints_visibility_after_crop():
    A = np.array([[1.0, 0, -100], [0, 1.0, 0]])
    joints = np.array([[[150.0, 10.0], [50.0, 10.0], [300.0, 20.0]]])
    vis = np.array([[True, True, False]])
    out, v = map_joints(joints, vis, A, (960, 512))
    assert v.tolist() == [[True, False, False]]  # 2nd falls left of the crop, 3rd was invisible
    np.testing.assert_allclose(out[0, 0], [50.0, 10.0])
    np.testing.assert_allclose(out[0, 2], [0.0, 0.0])


def test_view_set_draws_follow_the_distributions(rng):
    rots, scales = [], []
    for _ in range(2000):
        a1, a2, a3 = draw_view_set_augmentations(rng, np.array([10.125, 5.4]))
        assert a3.rotation_deg == 0.0 and np.allclose(a3.scale, [10.125, 5.4])
        rots.append(a1.rotation_deg)
        scales.append(a2.scale[0] / 10.125 - 1.0)
    rots, scales = np.array(rots), np.array(scales)
    assert np.abs(rots).max() <= 45.0 and 0.4 < np.mean(rots == 0.0) < 0.6
    assert ((scales >= 0.1) & (scales <= 0.35) | (scales <= -0.05) & (scales >= -0.175)).all()
    assert 0.4 < np.mean(scales > 0) < 0.6


def test_validity_rule():
    ok = np.ones((2, 15), bool)
    lost_root = ok.copy()
    lost_root[1, 2] = False
    assert view_sets_valid([[ok, ok], [ok, ok], [ok, ok]])
    # the max over views still reaches 2 persons with a root in set 2 -> valid
    assert view_sets_valid([[ok, ok], [ok, lost_root], [ok, ok]])
    assert not view_sets_valid([[lost_root, lost_root], [ok, ok], [ok, ok]])
    assert not view_sets_valid([[ok, np.zeros((0, 15), bool)]] * 3)  # a view without persons
    assert view_sets_valid([[ok, ok], [ok, ok], [lost_root, lost_root]])  # set 3 unchecked


def test_sample_view_sets_resamples_over_the_whole_dataset(rng):
    # only index 0 has labels; every other index has an empty view -> always invalid
    person = (np.full((1, 15, 2), [960.0, 540.0]), np.ones((1, 15), bool))
    empty = (np.zeros((0, 15, 2)), np.zeros((0, 15), bool))
    tried = []

    def labels(i):
        tried.append(i)
        return [person] * 5 if i in (0, 990) else [person] * 4 + [empty]

    out = sample_view_sets(
        rng,
        7,
        1000,
        labels,
        np.full((5, 2), [960.0, 540.0]),
        np.tile(base_scale((1920, 1080), (960, 512)), (5, 1)),
        (960, 512),
        max_attempts=5000,
    )
    assert out.index in (0, 990) and out.affines.shape == (3, 5, 2, 3)
    assert max(tried) > 200  # upstream would only draw from [0, len/5 - 10)
    assert all(v.all() for s in out.visible for v in s)  # centred person stays visible
    with pytest.raises(RuntimeError, match="no valid"):
        sample_view_sets(
            rng, 3, 1000, lambda i: [empty] * 5, np.zeros((5, 2)), np.ones((5, 2)), (960, 512), max_attempts=3
        )


def test_photometric_ops(rng):
    img = rng.integers(30, 200, size=(40, 50, 3), dtype=np.uint8)
    np.testing.assert_array_equal(brightness(img, 1.0), img)
    assert brightness(img, 0.0).max() == 0
    g = color(img, 0.0)
    assert np.abs(g[..., 0].astype(int) - g[..., 2]).max() == 0
    assert contrast(img, 0.0).std() == 0
    assert (posterize(img, 4) & 0x0F).max() == 0
    a = autocontrast(img)
    assert a[..., 0].min() == 0 and a[..., 0].max() == 255
    for op in ("Sharpness", "AutoContrast", "Posterize", "Equalize", "Contrast", "Color", "Brightness"):
        out = apply_op(img, op, 9, rng)
        assert out.shape == img.shape and out.dtype == np.uint8
    r1 = rand_augment(img, np.random.default_rng(5))
    r2 = rand_augment(img, np.random.default_rng(5))
    np.testing.assert_array_equal(r1, r2)
    c = cutout(np.zeros((512, 960, 3), np.uint8), rng)
    filled = np.all(c == (125, 122, 113), axis=-1)
    assert 0 < filled.sum() <= 15 * 38 * 38
