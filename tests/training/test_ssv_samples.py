"""SSV sample builder: three consistent view sets from pseudo labels."""

from __future__ import annotations

import numpy as np
import pytest

from training.augment import affine_transform, apply_affine, base_scale, warp_image
from training.datasets.ssv import SSVSampleBuilder, frames_with_all_views
from training.errors import DatasetError
from training.pseudo_labels.store import LabelEntry, PseudoLabelSet, ViewLabels

CAMS = ("c0", "c1", "c2")
SIZE = (1280, 720)


def _labels(rng, frames=4, people=2):
    entries = []
    for f in range(frames):
        for c in CAMS:
            j = rng.uniform([500, 250], [780, 470], size=(people, 15, 2)).astype(np.float32)
            vis = np.ones((people, 15), bool)
            vis[:, 5] = False
            entries.append(LabelEntry("seq", f, c, ViewLabels(j, np.ones((people, 15), np.float32), vis), "", SIZE))
    entries.append(LabelEntry("seq", 99, "c0", ViewLabels.empty()))  # incomplete frame: not a sample
    return PseudoLabelSet(entries, "soft", "test")


def test_frames_with_all_views(rng):
    labels = _labels(rng)
    assert frames_with_all_views(labels, CAMS) == [("seq", f) for f in range(4)]
    assert frames_with_all_views(labels, CAMS, sequences=["other"]) == []
    with pytest.raises(DatasetError, match="no frame has labels"):
        SSVSampleBuilder(labels, CAMS + ("c9",), np.tile(SIZE, (4, 1)))


def test_view_sets_are_consistent_with_their_affines(rng):
    labels = _labels(rng)
    b = SSVSampleBuilder(labels, CAMS, np.tile(SIZE, (3, 1)))
    sample = b.build(2, np.random.default_rng(0))
    assert sample.index == 2 and len(sample.sets) == 3
    letterbox = affine_transform(np.array(SIZE) / 2, base_scale(SIZE, (960, 512)), 0.0, (960, 512))
    np.testing.assert_allclose(sample.sets[2].affines[1], letterbox, atol=1e-9)
    for _k, vs in enumerate(sample.sets):
        assert vs.heatmaps.shape == (3, 15, 128, 240) and vs.joints.shape == (3, 10, 15, 2)
        assert vs.num_person.tolist() == [2, 2, 2] and vs.images is None
        for v, cam in enumerate(CAMS):
            orig = labels.get("seq", sample.frame, cam)
            expect = apply_affine(orig.joints_px, vs.affines[v])
            ok = vs.visible[v, :2]
            np.testing.assert_allclose(vs.joints[v, :2][ok], expect[ok], atol=1e-3)
            assert not vs.visible[v, :, 5].any() and vs.weights[v, 5] == 0
            x, y = vs.joints[v, 0, 0]
            if vs.visible[v, 0, 0]:
                assert vs.heatmaps[v, 0, int(y / 4), int(x / 4)] == pytest.approx(1.0)


def test_images_are_warped_and_photometric_only_on_sets_1_2(rng):
    labels = _labels(rng, frames=2)
    img = np.random.default_rng(1).integers(0, 255, size=(SIZE[1], SIZE[0], 3), dtype=np.uint8)
    b = SSVSampleBuilder(labels, CAMS, np.tile(SIZE, (3, 1)), photometric=True, image_loader=lambda s, f, c: img)
    sample = b.build(0, np.random.default_rng(4))
    assert sample.sets[0].images.shape == (3, 512, 960, 3)
    np.testing.assert_array_equal(sample.sets[2].images[0], warp_image(img, sample.sets[2].affines[0], (960, 512)))
    plain = warp_image(img, sample.sets[0].affines[0], (960, 512))
    assert np.any(sample.sets[0].images[0] != plain)  # cutout always paints at least 2 squares
    with pytest.raises(DatasetError, match="image_loader"):
        SSVSampleBuilder(labels, CAMS, np.tile(SIZE, (3, 1)), photometric=True)


def test_empty_hard_persons_do_not_reject_frames(rng):
    labels = _labels(rng, frames=1)
    for i, e in enumerate(labels.entries[:3]):
        vis = e.labels.visible.copy()
        vis[1] = False  # person 1: detected, every joint dropped by the hard rule
        labels.entries[i] = LabelEntry(
            e.sequence, e.frame, e.camera, ViewLabels(e.labels.joints_px, e.labels.scores, vis)
        )
    labels = PseudoLabelSet(labels.entries, "hard", "test")
    fixed = SSVSampleBuilder(labels, CAMS, np.tile(SIZE, (3, 1)))
    assert [len(j) for j, _ in fixed.view_labels(0)] == [1, 1, 1]
    assert fixed.build(0, np.random.default_rng(0)).sets[0].num_person.tolist() == [1, 1, 1]
    upstream = SSVSampleBuilder(labels, CAMS, np.tile(SIZE, (3, 1)), drop_empty_persons=False)
    assert [len(j) for j, _ in upstream.view_labels(0)] == [2, 2, 2]
    with pytest.raises(RuntimeError, match="no valid"):  # the empty person never has a visible root
        upstream.build(0, np.random.default_rng(0))
