"""PAF grouping of per-joint candidates into people, and the detector layouts -> Panoptic-15 map."""

from __future__ import annotations

import numpy as np
import pytest

from calib.common.keypoint_maps import BODY25, COCO17, candidates_to_panoptic15, keypoints_to_panoptic15
from engine.paf_grouping import group_people
from calib.common.skeleton import PANOPTIC15

CHAIN = np.array([[0, 1], [1, 2], [2, 3]])


def _two_people_chain(order: list[int]) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Joints 0..3 of people A (x = 100) and B (x = 500); candidate order per joint given by ``order``
    (order[j] = 0: A first). Affinity 0.9 within a person, 0 across."""
    cands, owner = [], []
    for j in range(4):
        rows = [[100.0, 10.0 * j, 0.8], [500.0, 10.0 * j, 0.7]]
        who = [0, 1]
        if order[j]:
            rows, who = rows[::-1], who[::-1]
        cands.append(np.array(rows))
        owner.append(who)
    affs = []
    for a, b in CHAIN:
        affs.append(np.array([[0.9 if owner[a][i] == owner[b][k] else 0.0 for k in range(2)] for i in range(2)]))
    return cands, affs


def test_two_people_are_separated_whatever_the_candidate_order():
    cands, affs = _two_people_chain([0, 1, 0, 1])
    people = group_people(cands, affs, CHAIN, min_joints=2, min_mean_score=0.0)
    assert people.shape == (2, 4, 3)
    xs = sorted(people[:, :, 0].tolist())
    assert xs == [[100.0] * 4, [500.0] * 4]  # no joint of A went to B
    assert np.all(people[:, :, 2] > 0)


def test_fragments_are_merged_by_a_later_limb():
    cands, affs = _two_people_chain([0, 0, 1, 0])
    order = [0, 2, 1]  # limbs (0,1), (2,3) first: two fragments per person, then (1,2) joins them
    people = group_people(cands, [affs[i] for i in order], CHAIN[order], min_joints=4, min_mean_score=0.0)
    assert people.shape[0] == 2
    assert {tuple(p[:, 0]) for p in people} == {(100.0,) * 4, (500.0,) * 4}


def test_greedy_takes_the_strongest_connection_once():
    cands = [np.array([[0, 0, 1.0]]), np.array([[0, 10, 1.0], [50, 10, 1.0]])]
    affs = [np.array([[0.3, 0.8]])]
    people = group_people(cands, affs, np.array([[0, 1]]), min_joints=2, min_mean_score=0.0)
    assert people.shape == (1, 2, 3)
    assert people[0, 1, 0] == 50  # the 0.8 connection, not the 0.3 one


def test_small_or_weak_people_are_dropped():
    cands, affs = _two_people_chain([0, 0, 0, 0])
    affs[1][1, 1] = 0.0  # person B breaks into (0,1) and (2,3)
    people = group_people(cands, affs, CHAIN, min_joints=3, min_mean_score=0.0)
    assert people.shape[0] == 1 and people[0, 0, 0] == 100.0
    assert group_people(cands, affs, CHAIN, min_joints=1, min_mean_score=10.0).shape == (0, 4, 3)


def test_bad_affinity_shape_names_the_limb():
    cands, affs = _two_people_chain([0, 0, 0, 0])
    affs[2] = np.zeros((3, 2))
    with pytest.raises(ValueError, match=r"limb \(2, 3\)"):
        group_people(cands, affs, CHAIN)


def test_body25_maps_by_name_and_coco17_derives_neck_and_hip():
    kp = np.zeros((1, 25, 3))
    kp[0, :, 0] = np.arange(25)
    kp[0, :, 2] = 1.0
    p15 = keypoints_to_panoptic15(kp, "body25")
    for j, name in enumerate(PANOPTIC15.joints):
        assert p15[0, j, 0] == BODY25.index(name)
    coco = np.zeros((1, 17, 3))
    coco[0, COCO17.index("l_shoulder")] = [10, 20, 0.5]
    coco[0, COCO17.index("r_shoulder")] = [30, 40, 1.0]
    coco[0, COCO17.index("l_hip")] = [7, 8, 0.4]  # r_hip absent: mid_hip = l_hip alone
    p15 = keypoints_to_panoptic15(coco, "coco17")
    assert np.allclose(p15[0, PANOPTIC15.index("neck")], [20, 30, 0.75])
    assert np.allclose(p15[0, PANOPTIC15.index("mid_hip")], [7, 8, 0.4])
    assert p15[0, PANOPTIC15.index("nose"), 2] == 0  # absent joint stays absent


def test_candidates_map_only_for_layouts_with_every_joint():
    cands = [np.array([[j, j, 0.5]] * (j % 3)) for j in range(25)]
    mapped = candidates_to_panoptic15(cands, "body25")
    assert [len(m) for m in mapped] == [BODY25.index(n) % 3 for n in PANOPTIC15.joints]
    with pytest.raises(ValueError, match="group the candidates"):
        candidates_to_panoptic15([np.zeros((0, 3))] * 17, "coco17")
