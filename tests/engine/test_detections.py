"""2D detections -> input heatmaps: placement through the image affine, scores, candidates, API."""

from __future__ import annotations

import numpy as np
import pytest

from calib.projection import project_points
from engine.detections import candidates_to_rows, render_input_heatmaps
from engine.project import ViewGeometry


def _geometry(rig):
    return ViewGeometry.from_rig(rig, (320, 192), (80, 48), "cpu")


def test_peaks_land_where_the_affine_maps_the_joint(toy_rig):
    geo = _geometry(toy_rig)
    aff = geo.affine_hm.numpy()
    X = np.array([[150.0, -250.0, 1000.0]])
    poses = []
    for cam in toy_rig:
        p = np.zeros((1, 15, 3))
        p[0, 2, :2] = project_points(X, cam)[0]
        p[0, 2, 2] = 0.8
        poses.append(p)
    hm = render_input_heatmaps(poses, aff, geo.heatmap_wh)
    assert hm.shape == (len(toy_rig), 15, 48, 80)
    for v in range(len(toy_rig)):
        expected = aff[v, :, :2] @ poses[v][0, 2, :2] + aff[v, :, 2]
        iy, ix = np.unravel_index(np.argmax(hm[v, 2]), hm[v, 2].shape)
        assert abs(ix - expected[0]) <= 0.5 + 1e-6 and abs(iy - expected[1]) <= 0.5 + 1e-6
        assert hm[v, 2].max() == pytest.approx(0.8, abs=0.03)  # peak scaled by the score
        assert hm[v, 0].max() == 0.0  # absent joints stay empty


def test_people_combine_by_max_and_scores_can_be_ignored(toy_rig):
    geo = _geometry(toy_rig)
    aff = geo.affine_hm.numpy()
    p = np.zeros((2, 15, 3))
    p[:, 5] = [[400.0, 300.0, 0.5], [402.0, 300.0, 0.9]]  # two people, nearly the same pixel
    views = [p] + [np.zeros((0, 15, 3))] * (len(toy_rig) - 1)
    hm = render_input_heatmaps(views, aff, geo.heatmap_wh)
    assert 0.88 < hm[0, 5].max() <= 0.9 + 1e-6  # max, not sum
    assert hm[1:].max() == 0.0
    flat = render_input_heatmaps(views, aff, geo.heatmap_wh, scale_by_score=False)
    assert flat[0, 5].max() == pytest.approx(1.0, abs=0.05)


def test_candidates_to_rows_and_view_count_check(toy_rig):
    cands = [np.zeros((0, 3))] * 15
    cands[3] = np.array([[10.0, 20.0, 0.7], [30.0, 40.0, 0.2]])
    rows = candidates_to_rows(cands, 15)
    assert rows.shape == (2, 15, 3) and rows[1, 3, 0] == 30.0 and rows[1, 4, 2] == 0.0
    with pytest.raises(ValueError, match="expected 15 joints"):
        candidates_to_rows(cands[:3], 15)
    with pytest.raises(ValueError, match="views of poses"):
        render_input_heatmaps([rows], _geometry(toy_rig).affine_hm.numpy(), (80, 48))


def test_predictor_accepts_detections(toy_rig):
    import torch

    from engine.api import load_model

    torch.set_num_threads(2)
    predictor = load_model("light", toy_rig)
    poses = [np.zeros((1, 15, 3)) for _ in toy_rig]
    pred = predictor.predict_detections(poses)
    assert pred.poses_mm.shape[1:] == (15, 3) and pred.proposals.shape[1] == 5
