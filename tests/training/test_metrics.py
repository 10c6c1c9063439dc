"""Panoptic AP/recall/MPJPE on hand-computed cases; Shelf PCP on hand cases and the real fixture."""

from __future__ import annotations

import json

import numpy as np
import pytest

from training.metrics import (
    average_precision,
    match_to_ground_truth,
    matched_mpjpe,
    panoptic_metrics,
    recall_at,
    shelf_pcp,
    to_shelf14,
)
from training.results_io import Predictions, load_predictions, predictions_from_flat, save_metrics, save_predictions


def _person(rng, center):
    return rng.normal(scale=200.0, size=(15, 3)) + np.asarray(center, float)


@pytest.fixture
def scene(rng):
    gt = np.stack([_person(rng, (0, 0, 900)), _person(rng, (2000, 0, 900))])  # (2,15,3)
    vis = np.ones((2, 15), bool)
    vis[1, 4] = False
    a = gt[0].copy()  # exact, score 0.9
    b = gt[1] + np.array([60.0, 0, 0])  # 60 mm off on visible joints
    b[4] += 5000.0  # huge error on GT1's invisible joint: must be ignored
    c = gt[0] + np.array([0, 10.0, 0])  # duplicate of GT0
    return gt, vis, np.stack([a, b, c]), np.array([0.9, 0.8, 0.7])


def test_matching_uses_only_visible_joints(scene):
    gt, vis, pred, score = scene
    rec = match_to_ground_truth([pred], [score], [gt], [vis])
    np.testing.assert_allclose(rec.mpjpe_mm, [0.0, 60.0, 10.0], atol=1e-9)
    assert rec.gt_id.tolist() == [0, 1, 0] and rec.total_gt == 2


def test_ap_values_computed_by_hand(scene):
    gt, vis, pred, score = scene
    rec = match_to_ground_truth([pred], [score], [gt], [vis])
    # t=25: A TP, B FP (60 mm), C FP (GT0 claimed) -> recall 0.5 reached at precision 1
    ap, recall = average_precision(rec, 25.0)
    assert ap == pytest.approx(0.5, abs=1e-4) and recall == pytest.approx(0.5, abs=1e-4)
    # t=75: A, B TP, C FP -> recall 1 at precision 1
    ap, recall = average_precision(rec, 75.0)
    assert ap == pytest.approx(1.0, abs=1e-4) and recall == pytest.approx(1.0, abs=1e-4)
    assert matched_mpjpe(rec) == pytest.approx(30.0)
    assert recall_at(rec) == pytest.approx(1.0)
    m = panoptic_metrics(rec)
    assert m["ap25"] == pytest.approx(0.5, abs=1e-4) and m["ap150"] == pytest.approx(1.0, abs=1e-4)
    assert m["ap50"] == pytest.approx(0.5, abs=1e-4)  # B is 60 mm off: FP at 25 and 50
    assert m["mean_ap"] == pytest.approx((2 * 0.5 + 4 * 1.0) / 6, abs=1e-4)


def test_precision_envelope_and_low_score_hit():
    # GT: 2 persons. Order by score: miss (FP), hit GT0 (TP), hit GT1 (TP).
    # precision 0, 1/2, 2/3 -> envelope 2/3, 2/3, 2/3; recall 0, .5, 1 -> AP = 2/3.
    gt = np.zeros((2, 15, 3))
    gt[1] += 3000.0
    preds = np.stack([gt[0] + 1000.0, gt[0], gt[1]])
    rec = match_to_ground_truth([preds], [np.array([0.9, 0.5, 0.4])], [gt])
    ap, _ = average_precision(rec, 50.0)
    assert ap == pytest.approx(2.0 / 3.0, abs=1e-4)


def test_ties_keep_slot_order():
    gt = np.zeros((1, 15, 3))
    preds = np.stack([gt[0] + 40.0 / np.sqrt(3), gt[0] + 10.0 / np.sqrt(3)])  # mpjpe 40 then 10
    rec = match_to_ground_truth([preds], [np.array([0.5, 0.5])], [gt])
    ap, recall = average_precision(rec, 25.0)
    # stable: first record FP (40 >= 25), second TP -> precision 1/2 at recall 1
    assert ap == pytest.approx(0.5, abs=1e-4) and recall == pytest.approx(1.0, abs=1e-4)


def test_frames_without_gt_are_skipped_and_no_tp_gives_inf():
    gt = [np.zeros((0, 15, 3)), np.zeros((1, 15, 3))]
    preds = [np.zeros((1, 15, 3)), np.full((1, 15, 3), 1000.0)]
    rec = match_to_ground_truth(preds, [np.ones(1), np.ones(1)], gt)
    assert rec.mpjpe_mm.size == 1 and rec.total_gt == 1
    assert matched_mpjpe(rec, 500.0) == float("inf")
    assert recall_at(rec, 500.0) == 0.0


def test_root_matching_with_points():
    rec = match_to_ground_truth(
        [np.array([[0.0, 0, 0], [5.0, 0, 0]])], [np.array([0.2, 0.9])], [np.array([[3.0, 4.0, 0.0]])]
    )
    np.testing.assert_allclose(rec.mpjpe_mm, [5.0, np.hypot(2, 4)])


def test_head_rule_by_hand():
    pose = np.zeros((15, 3))
    pose[1] = [40.0, 0.0, 100.0]  # nose; shoulders 3, 9 at the origin -> m = 0
    s = to_shelf14(pose, "panoptic15")
    np.testing.assert_allclose(s[13], [37.5, 0.0, 150.0])  # top head
    np.testing.assert_allclose(s[12], [20.0, 0.0, 50.0])  # bottom head
    coco = np.zeros((17, 3))
    coco[0] = [40.0, 0.0, 100.0]
    coco[3] = coco[4] = [0.0, 0.0, 100.0]  # ears: base point of hb0/ht0
    c = to_shelf14(coco, "coco17")
    # top = .75*(30,0,150) + .25*(0,0,150); bottom = .75*(20,0,50) + .25*(0,0,50)
    np.testing.assert_allclose(c[13], [22.5, 0.0, 150.0])
    np.testing.assert_allclose(c[12], [15.0, 0.0, 50.0])


def test_pcp_hand_case():
    rng = np.random.default_rng(0)
    pred = rng.normal(scale=300.0, size=(15, 3))
    gt14 = to_shelf14(pred)  # GT identical to the converted prediction
    gt = np.stack([gt14, gt14 + 5000.0])[None]  # (1 frame, 2 actors)
    valid = np.array([[True, False]])
    res = shelf_pcp([pred[None]], gt, valid, actor_names=["A", "B"])
    assert res.evaluated.tolist() == [1, 0] and res.actor_pcp[0] == pytest.approx(100.0)
    wrong = pred.copy()
    wrong[[11, 5]] += 2000.0  # both wrists far off: lower arms (parts 4, 7) fail
    res = shelf_pcp([wrong[None]], gt, valid)
    assert res.correct[0].tolist() == [1, 1, 1, 1, 0, 1, 1, 0, 1, 1]
    assert res.actor_pcp[0] == pytest.approx(80.0)
    assert res.group_pcp()["Lower arms"][0] == 0.0
    # no prediction in the frame: skipped (upstream) or counted wrong
    assert shelf_pcp([np.zeros((0, 15, 3))], gt, valid).evaluated.tolist() == [0, 0]
    counted = shelf_pcp([np.zeros((0, 15, 3))], gt, valid, skip_frames_without_predictions=False)
    assert counted.evaluated.tolist() == [1, 0] and counted.actor_pcp[0] == 0.0


@pytest.mark.data
@pytest.mark.parametrize(
    "name, layout, expected",
    [
        ("pred_4dassoc.npz", "panoptic15", (96.38, 84.59, 97.89, 92.95)),
        ("pred_4dassoc_coco17.npz", "coco17", (99.68, 90.27, 98.26, 96.07)),
    ],
)
def test_shelf_pcp_on_4d_association_output(shared_data, name, layout, expected):
    gt = np.load(shared_data / "shelf" / "gt.npz")
    preds = load_predictions(shared_data / "shelf" / name)
    assert preds.layout == layout
    per_frame = [preds.frame(int(f))[0] for f in gt["frame_ids"]]
    res = shelf_pcp(per_frame, gt["joints"] * 1000.0, gt["valid"], layout)
    np.testing.assert_allclose(np.round(res.actor_pcp[:3], 2), expected[:3])
    assert round(res.average_pcp, 2) == expected[3]


def test_prediction_and_metrics_files_round_trip(tmp_path, rng):
    poses = rng.normal(size=(3, 4, 15, 5))
    valid = rng.random((3, 4)) > 0.3
    p = Predictions(poses, np.array([10, 22, 34]), valid, poses[:, :, 0, 4].copy(), rng.normal(size=(3, 4, 3)))
    back = load_predictions(save_predictions(tmp_path / "p.npz", p))
    np.testing.assert_array_equal(back.poses, poses)
    np.testing.assert_array_equal(back.valid, valid)
    np.testing.assert_array_equal(back.scores, poses[:, :, 0, 4])
    got, sc = back.frame(22)
    np.testing.assert_array_equal(got, poses[1, valid[1], :, :3])
    flat = predictions_from_flat(rng.normal(size=(5, 15, 3)), np.array([7, 3, 7, 7, 3]))
    assert flat.frame_ids.tolist() == [3, 7] and flat.valid.sum(1).tolist() == [2, 3]
    out = save_metrics(tmp_path / "m.json", {"mpjpe_mm": np.float64(np.inf), "ap25": np.float32(0.5)})
    assert json.loads(out.read_text()) == {"ap25": 0.5, "mpjpe_mm": None}


def test_valid_defaults_to_upstream_flag(tmp_path, rng):
    poses = rng.normal(size=(2, 3, 15, 5))
    poses[:, :, :, 3] = np.array([[0, -1, 0], [-1, -1, 0]])[:, :, None]
    np.savez(tmp_path / "up.npz", poses=poses, frame_ids=np.array([1, 2]))
    p = load_predictions(tmp_path / "up.npz")
    assert p.valid.tolist() == [[True, False, True], [False, False, True]]
    np.testing.assert_array_equal(p.scores, poses[:, :, 0, 4])
