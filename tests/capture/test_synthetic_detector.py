"""Simulated 2D detector: measured error statistics match its settings; soft/hard formats."""

from __future__ import annotations

import importlib

import numpy as np
import pytest

from capture.synthetic.detector import MISSED, OK, WRONG_PERSON, DetectorParams
from capture.synthetic.rigs import ring_rig
from capture.synthetic.world import SyntheticWorld

PARAMS = DetectorParams(
    noise_px=4.0,
    noise_occluded_px=10.0,
    reference_height_px=None,
    miss_rate=0.1,
    miss_rate_occluded=0.4,
    swap_rate=0.1,
    wrong_person_rate=0.5,
    person_miss_rate=0.05,
    false_positives_per_view=0.5,
    derive_neck_hip=False,
    joint_noise_scale=(1.0,) * 15,
)
ARMS = ((3, 4, 5), (9, 10, 11))


@pytest.fixture(scope="module")
def samples():
    rig = ring_rig(
        5, radius_mm=3200.0, height_mm=1700.0, target_mm=(0.0, 0.0, 900.0), width=480, height=270, fov_deg=80.0, seed=2
    )
    world = SyntheticWorld(
        rig, num_people=5, seed=5, fps=2.0, volume_center_mm=(0.0, 0.0, 800.0), walk_radius_mm=1300.0
    )
    out = []
    for k in range(80):
        truth = world.truth(k)
        out.append(
            (
                truth,
                world.detect(k, PARAMS, rng_seed=3, truth=truth),
                world.detect(k, PARAMS, rng_seed=3, variant="hard", truth=truth),
            )
        )
    return world, out


def _matched(samples):
    """Yield (truth, view, slot, detection joints, scores, outcome) for true detections."""
    world, out = samples
    for truth, soft, _ in out:
        slot_of = {int(i): s for s, i in enumerate(truth.ids)}
        for v, det in enumerate(soft):
            for n, pid in enumerate(det.person_ids):
                if pid >= 0:
                    yield truth, v, slot_of[int(pid)], det.joints_2d[n], det.scores[n], det.outcome[n]


def test_noise_grows_with_occlusion_and_matches_settings(samples):
    err_vis, err_occ = [], []
    for truth, v, p, uv, score, outcome in _matched(samples):
        ok = (outcome == OK) & (score >= PARAMS.hard_threshold)
        d = uv - truth.joints_2d[v, p]
        err_vis.append(d[ok & truth.visible[v, p]])
        err_occ.append(d[ok & truth.in_image[v, p] & ~truth.visible[v, p]])
    err_vis, err_occ = np.concatenate(err_vis), np.concatenate(err_occ)
    assert len(err_vis) > 5000 and len(err_occ) > 200
    assert abs(err_vis.std() / PARAMS.noise_px - 1) < 0.05
    assert abs(err_occ.std() / PARAMS.noise_occluded_px - 1) < 0.15
    assert abs(err_vis.mean()) < 0.2  # unbiased


def test_miss_rate_matches_settings(samples):
    missed_vis = n_vis = missed_occ = n_occ = 0
    for truth, v, p, _uv, score, _outcome in _matched(samples):
        low = score < PARAMS.hard_threshold  # measured from the scores, not the outcome codes
        vis = truth.visible[v, p]
        occ = truth.in_image[v, p] & ~vis
        missed_vis += int((low & vis).sum())
        n_vis += int(vis.sum())
        missed_occ += int((low & occ).sum())
        n_occ += int(occ.sum())
    for missed, n, rate in ((missed_vis, n_vis, PARAMS.miss_rate), (missed_occ, n_occ, PARAMS.miss_rate_occluded)):
        tol = 4 * np.sqrt(rate * (1 - rate) / n)
        assert abs(missed / n - rate) < tol, (missed, n, rate)


def test_left_right_swap_rate_matches_settings(samples):
    swapped = n = 0
    for truth, v, p, uv, score, outcome in _matched(samples):
        t = truth.joints_2d[v, p]
        li, ri = list(ARMS[0]), list(ARMS[1])
        good = truth.visible[v, p][li] & truth.visible[v, p][ri]
        good &= (score[li] >= PARAMS.hard_threshold) & (score[ri] >= PARAMS.hard_threshold)
        good &= (outcome[li] != WRONG_PERSON) & (outcome[ri] != WRONG_PERSON)
        good &= np.linalg.norm(t[li] - t[ri], axis=-1) > 8 * PARAMS.noise_px  # sides clearly apart
        if not good.any():
            continue
        same = np.linalg.norm(uv[li][good] - t[li][good], axis=-1) + np.linalg.norm(uv[ri][good] - t[ri][good], axis=-1)
        cross = np.linalg.norm(uv[li][good] - t[ri][good], axis=-1) + np.linalg.norm(
            uv[ri][good] - t[li][good], axis=-1
        )
        n += 1
        swapped += int(cross.sum() < same.sum())
    rate = PARAMS.swap_rate
    assert n > 500
    assert abs(swapped / n - rate) < 4 * np.sqrt(rate * (1 - rate) / n), (swapped, n)


def test_occluded_joints_snap_to_the_occluder_at_the_set_rate(samples):
    snapped = n = 0
    for truth, v, p, uv, score, _outcome in _matched(samples):
        for j in np.flatnonzero(truth.in_image[v, p] & ~truth.visible[v, p] & (score >= PARAMS.hard_threshold)):
            q = truth.occluder[v, p, j]
            own, other = truth.joints_2d[v, p, j], truth.joints_2d[v, q, j]
            if np.linalg.norm(own - other) < 6 * PARAMS.noise_occluded_px:
                continue
            n += 1
            snapped += int(np.linalg.norm(uv[j] - other) < np.linalg.norm(uv[j] - own))
    rate = PARAMS.wrong_person_rate
    assert n > 100
    assert abs(snapped / n - rate) < 4 * np.sqrt(rate * (1 - rate) / n) + 0.02, (snapped, n)


def test_false_positive_and_person_miss_rates(samples):
    world, out = samples
    fps = [int((det.person_ids < 0).sum()) for _, soft, _ in out for det in soft]
    lam = PARAMS.false_positives_per_view
    assert abs(np.mean(fps) - lam) < 4 * np.sqrt(lam / len(fps))
    detectable = found = 0
    for truth, soft, _ in out:
        for v, det in enumerate(soft):
            for p in np.flatnonzero(truth.present):
                if truth.visible[v, p].sum() >= PARAMS.min_visible_joints:
                    detectable += 1
                    found += int(truth.ids[p]) in det.person_ids.tolist()
    miss = 1 - found / detectable
    # Box-size rule adds a few misses on top of person_miss_rate.
    assert PARAMS.person_miss_rate - 0.02 < miss < PARAMS.person_miss_rate + 0.04


def test_scores_rank_good_joints_above_bad_ones(samples):
    vis_scores, occ_scores, miss_scores = [], [], []
    for truth, v, p, _uv, score, outcome in _matched(samples):
        vis_scores.append(score[(outcome == OK) & truth.visible[v, p]])
        occ_scores.append(score[(outcome == OK) & truth.in_image[v, p] & ~truth.visible[v, p]])
        miss_scores.append(score[outcome == MISSED])
    v, o, m = (np.concatenate(a) for a in (vis_scores, occ_scores, miss_scores))
    assert abs(v.mean() - PARAMS.score_visible[0]) < 0.02
    assert m.max() < PARAMS.hard_threshold < o.min()
    assert v.mean() > o.mean() > m.mean()


def test_soft_and_hard_variants(samples):
    world, out = samples
    for _truth, soft, hard in out[:20]:
        for v, (s, h) in enumerate(zip(soft, hard)):
            cam = world.rig[v]
            assert np.array_equal(s.person_ids, h.person_ids)  # same draws, same people
            assert s.joints_2d.shape == (len(s), 15, 2) and s.scores.shape == (len(s), 15)
            assert s.visible.all() == bool((s.scores > 0).all())
            kept = h.visible
            assert np.all(h.scores[kept] >= PARAMS.hard_threshold)
            assert np.all(h.joints_2d[~kept] == 0) and np.all(h.scores[~kept] == 0)
            assert np.array_equal(h.joints_2d[kept], s.joints_2d[kept])
            box = h.boxes_xyxy[:, None]
            inside = (
                (h.joints_2d[..., 0] >= box[..., 0])
                & (h.joints_2d[..., 0] <= box[..., 2])
                & (h.joints_2d[..., 1] >= box[..., 1])
                & (h.joints_2d[..., 1] <= box[..., 3])
            )
            assert np.all(inside[kept])
            assert np.all((kept.sum(1) == 0) | (kept.sum(1) >= 3))
            assert np.all(h.boxes_xyxy[:, :2] >= 0) and np.all(h.boxes_xyxy[:, 2] <= cam.width - 1)
            assert np.all(h.boxes_xyxy[:, 3] <= cam.height - 1)
    # Different detector seeds give different labels; the same seed the same ones.
    k = 7
    a = world.detect(k, PARAMS, rng_seed=3)[0]
    b = world.detect(k, PARAMS, rng_seed=4)[0]
    assert np.array_equal(a.joints_2d, out[k][1][0].joints_2d)
    assert not (a.joints_2d.shape == b.joints_2d.shape and np.allclose(a.joints_2d, b.joints_2d))


def test_neck_and_mid_hip_are_derived_coco_style(samples):
    world, _ = samples
    params = DetectorParams(derive_neck_hip=True, miss_rate=0.3)
    for variant in ("soft", "hard"):
        for det in world.detect(3, params, rng_seed=1, variant=variant):
            for n in range(len(det)):
                uv, vis = det.joints_2d[n], det.visible[n]
                if vis[3] and vis[9]:
                    assert np.allclose(uv[0], (uv[3] + uv[9]) / 2)
                elif vis[3] != vis[9]:
                    assert np.allclose(uv[0], uv[3] if vis[3] else uv[9])
                else:
                    assert not vis[0]
                if vis[6] and vis[12]:
                    assert np.allclose(uv[2], (uv[6] + uv[12]) / 2)


def test_hard_variant_agrees_with_the_pseudo_label_pipeline(samples):
    """The same rule as training.pseudo_labels.mapping (SPEC §4.7) applied to COCO-17 keypoints."""
    mapping = importlib.import_module("training.pseudo_labels.mapping")
    world, _ = samples
    params = DetectorParams(miss_rate=0.35, miss_rate_occluded=0.6)
    coco_from_pan = {0: 1, 5: 3, 6: 9, 7: 4, 8: 10, 9: 5, 10: 11, 11: 6, 12: 12, 13: 7, 14: 13, 15: 8, 16: 14}
    compared = 0
    for k in range(0, 40, 4):
        truth = world.truth(k)
        soft = world.detect(k, params, rng_seed=9, truth=truth)
        hard = world.detect(k, params, rng_seed=9, variant="hard", truth=truth)
        for v, (s, h) in enumerate(zip(soft, hard)):
            cam = world.rig[v]
            kp = np.zeros((len(s), 17, 3))  # eyes/ears not simulated: confidence 0
            for c, pj in coco_from_pan.items():
                kp[:, c, :2], kp[:, c, 2] = s.joints_2d[:, pj], s.scores[:, pj]
            boxes = np.concatenate([s.boxes_xyxy[:, :2], s.boxes_xyxy[:, 2:] - s.boxes_xyxy[:, :2]], 1)
            labels = mapping.convert_detection(mapping.Detection(kp, boxes), "coco17", "hard", (cam.width, cam.height))
            assert np.array_equal(labels.visible, h.visible)
            assert np.allclose(labels.joints_px, h.joints_2d, atol=1e-3)
            compared += len(s)
    assert compared > 100


def test_per_joint_noise_and_bias(samples):
    world, _ = samples
    scale = (0.5,) * 5 + (2.0,) * 10  # joints 0-4 precise, 5-14 sloppy
    params = DetectorParams(
        noise_px=3.0,
        reference_height_px=None,
        miss_rate=0.0,
        miss_rate_occluded=0.0,
        swap_rate=0.0,
        wrong_person_rate=0.0,
        false_positives_per_view=0.0,
        derive_neck_hip=False,
        joint_noise_scale=scale,
        bias_px=(0.0, -2.0),
    )
    errs = []
    for k in range(0, 80, 2):
        truth = world.truth(k)
        slot_of = {int(i): s for s, i in enumerate(truth.ids)}
        for v, det in enumerate(world.detect(k, params, rng_seed=5, truth=truth)):
            for n, pid in enumerate(det.person_ids):
                p = slot_of[int(pid)]
                vis = truth.visible[v, p]
                d = det.joints_2d[n] - truth.joints_2d[v, p]
                errs.append(np.where(vis[:, None], d, np.nan))
    e = np.stack(errs)  # (N,15,2)
    std_precise = np.nanstd(e[:, :5] - np.nanmean(e[:, :5], axis=(0, 1)), axis=(0, 1))
    std_sloppy = np.nanstd(e[:, 5:] - np.nanmean(e[:, 5:], axis=(0, 1)), axis=(0, 1))
    assert np.allclose(std_precise, 1.5, rtol=0.08) and np.allclose(std_sloppy, 6.0, rtol=0.08)
    assert abs(np.nanmean(e[..., 1]) + 2.0) < 0.2 and abs(np.nanmean(e[..., 0])) < 0.2
