"""The triangulation engine on synthetic rigs: association, robustness, partial views, outputs."""

from __future__ import annotations

import numpy as np
import pytest

from calib.check import triangulate_weighted
from calib.configkit import ConfigError
from calib.projection import depth_mm, in_image, project_points, undistort_points
from capture.synthetic.body import forward_kinematics, neutral_pose, sample_body
from engine.association import cluster_people, masked_median
from calib.common.keypoint_maps import COCO17
from calib.common.skeleton import PANOPTIC15
from engine.triangulate import Triangulator, TriangulatorConfig

from .conftest import make_rig

# Four people well apart in the rig's 4 m ring (x, y mm, yaw rad).
PLACES = ((-900.0, -700.0, 0.3), (800.0, -600.0, 2.0), (-600.0, 900.0, -1.2), (700.0, 800.0, 3.0))


def make_people(rng: np.random.Generator, n: int = 4) -> np.ndarray:
    """(n,15,3) world mm Panoptic-15 people standing at PLACES."""
    return np.stack([forward_kinematics(sample_body(rng), neutral_pose(*PLACES[i])) for i in range(n)])


def observe(
    rig,
    people_mm: np.ndarray,
    rng: np.random.Generator,
    noise_px: float = 1.5,
    seen: np.ndarray | None = None,
    shuffle: bool = True,
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Per view (N_v,15,3) 2D people (x, y px, score) and the true person index of each row."""
    views, truth = [], []
    for v, cam in enumerate(rig):
        uv = project_points(people_mm, cam) + rng.normal(0.0, noise_px, people_mm.shape[:2] + (2,))
        ok = in_image(uv, cam) & (depth_mm(people_mm, cam) > 0)
        score = np.where(ok, rng.uniform(0.6, 0.95, ok.shape), 0.0)
        idx = np.arange(len(people_mm))
        if seen is not None:
            idx = idx[seen[:, v]]
        if shuffle:
            idx = rng.permutation(idx)
        views.append(np.concatenate([uv[idx], score[idx, :, None]], axis=-1))
        truth.append(idx)
    return views, truth


def match(poses_mm: np.ndarray, people_mm: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Index of the nearest true person of every prediction and that MPJPE (mm)."""
    err = np.linalg.norm(poses_mm[:, None] - people_mm[None], axis=-1).mean(-1)
    return err.argmin(1), err.min(1)


@pytest.fixture
def rig():
    return make_rig(width=1280, height=720)


def test_four_people_five_views_shuffled_are_associated_and_accurate(rig, rng):
    people = make_people(rng)
    views, truth = observe(rig, people, rng, noise_px=1.5)
    tri = Triangulator.from_rig(rig)
    res = tri.solve(views)
    assert res.num_people == 4
    for p in range(4):  # each 3D person gathers the rows of one true person in every view
        owners = {int(truth[v][res.members[p, v]]) for v in range(len(rig)) if res.members[p, v] >= 0}
        assert len(owners) == 1
    pred = tri.predict_people(views)
    who, mpjpe = match(pred.poses_mm, people)
    assert sorted(who.tolist()) == [0, 1, 2, 3]
    assert mpjpe.max() < 15.0
    assert pred.poses_mm.shape == (4, 15, 3) and pred.poses_mm.dtype == np.float32
    assert pred.candidates.shape == (4, 15, 5) and np.all(pred.candidates[..., 4] > 0)
    np.testing.assert_allclose(pred.proposals[:, :3], pred.poses_mm[:, PANOPTIC15.root])
    assert np.all(np.diff(pred.scores) <= 0) and {"association", "triangulation", "total"} <= set(pred.timings_ms)


def test_false_person_in_one_view_makes_no_ghost(rig, rng):
    people = make_people(rng, 2)
    views, _ = observe(rig, people, rng)
    # A plausible 2D person (a real skeleton's projection) that no other camera sees.
    phantom = forward_kinematics(sample_body(rng), neutral_pose(0.0, 1500.0, 0.0))
    uv = project_points(phantom, rig[0])
    views[0] = np.concatenate([views[0], np.concatenate([uv, np.full((15, 1), 0.9)], -1)[None]])
    pred = Triangulator.from_rig(rig).predict_people(views)
    assert pred.num_people == 2
    assert match(pred.poses_mm, people)[1].max() < 15.0


def test_two_view_ghost_of_two_people_is_dissolved(rig):
    """Seed 4 made a ghost before the reassignment step: person 0 in view 0 and person 2 in view 4
    agree in those two views; the real people (4 views each) now take them back."""
    for seed in (3, 4, 5):
        rng = np.random.default_rng(seed)
        places = ((-500.0, 0.0), (500.0, 0.0), (0.0, 1000.0))
        people = np.stack(
            [forward_kinematics(sample_body(rng), neutral_pose(x, y, rng.uniform(-3, 3))) for x, y in places]
        )
        views, _ = observe(rig, people, rng, noise_px=3.0)
        pred = Triangulator.from_rig(rig).predict_people(views)
        who, mpjpe = match(pred.poses_mm, people)
        assert sorted(who.tolist()) == [0, 1, 2], seed
        assert mpjpe.max() < 30.0


def test_person_seen_by_one_camera_only_is_not_made_3d(rig, rng):
    people = make_people(rng, 3)
    seen = np.ones((3, len(rig)), bool)
    seen[2] = False
    seen[2, 3] = True  # person 2: one camera only
    seen[1] = False
    seen[1, [0, 2]] = True  # person 1: two cameras only (partial visibility)
    views, _ = observe(rig, people, rng, seen=seen)
    pred = Triangulator.from_rig(rig).predict_people(views)
    who, mpjpe = match(pred.poses_mm, people)
    assert sorted(who.tolist()) == [0, 1] and mpjpe.max() < 25.0


def test_outlier_view_is_rejected(rig, rng):
    people = make_people(rng, 1)
    views, _ = observe(rig, people, rng, noise_px=1.0, shuffle=False)
    wrist = PANOPTIC15.index("l_wrist")
    views[1][0, wrist, :2] += (120.0, -80.0)  # a misdetected wrist in one view
    tri = Triangulator.from_rig(rig)
    res = tri.solve(views)
    assert res.num_people == 1
    assert np.linalg.norm(res.poses_mm[0, wrist] - people[0, wrist]) < 15.0
    # The same joint triangulated without rejection is pulled far off: the test can fail.
    xy = np.stack([undistort_points(views[v][0, wrist, :2], cam) for v, cam in enumerate(rig)])[None]
    X_all = triangulate_weighted(
        rig, np.stack([views[v][0, wrist, :2] for v in range(len(rig))])[None], np.ones((1, len(rig)))
    )
    assert np.linalg.norm(X_all[0] - people[0, wrist]) > 30.0
    X, inlier, ok = tri.triangulate_points(xy, np.ones((1, len(rig))))
    assert ok[0] and not inlier[0, 1] and inlier[0, [0, 2, 3, 4]].all()


def test_dlt_matches_calib_triangulation(rig, rng):
    points = rng.uniform([-1000, -1000, 100], [1000, 1000, 1800], (20, 3))
    uv = np.stack([project_points(points, cam) for cam in rig], axis=1)  # (Q,V,2)
    w = rng.uniform(0.2, 1.0, uv.shape[:2])
    xy = np.stack([undistort_points(uv[:, v], cam) for v, cam in enumerate(rig)], axis=1)
    X, inlier, ok = Triangulator.from_rig(rig).triangulate_points(xy, w)
    np.testing.assert_allclose(X, triangulate_weighted(rig, uv, w), atol=1e-3)
    assert ok.all() and inlier.all()


def test_missing_joint_is_marked_not_invented(rig, rng):
    people = make_people(rng, 1)
    views, _ = observe(rig, people, rng, shuffle=False)
    ankle = PANOPTIC15.index("r_ankle")
    for v in range(1, len(rig)):
        views[v][0, ankle] = 0.0  # only camera 0 sees the right ankle
    pred = Triangulator.from_rig(rig).predict_people(views)
    assert pred.num_people == 1 and np.isfinite(pred.poses_mm).all()
    assert pred.candidates[0, ankle, 4] == 0.0
    others = np.delete(np.arange(15), ankle)
    assert np.all(pred.candidates[0, others, 4] > 0)
    np.testing.assert_allclose(pred.poses_mm[0, ankle], pred.poses_mm[0, others].mean(0), atol=1e-3)


def test_views_present_and_dropped_cameras(rig, rng):
    people = make_people(rng, 2)
    views, _ = observe(rig, people, rng)
    tri = Triangulator.from_rig(rig)
    only_two = tri.predict_people(views, views_present=[True, False, False, True, False])
    assert only_two.num_people >= 1
    assert match(only_two.poses_mm, people)[1].max() < 30.0
    only_one = tri.predict_people(views, views_present=[False, False, True, False, False])
    assert only_one.num_people == 0


def test_empty_input_gives_an_empty_prediction(rig):
    tri = Triangulator.from_rig(rig)
    pred = tri.predict_people([np.zeros((0, 15, 3))] * len(rig))
    assert pred.num_people == 0 and pred.poses_mm.shape == (0, 15, 3) and pred.scores.shape == (0,)
    assert pred.candidates.shape == (0, 15, 5) and pred.proposals.shape == (0, 5)
    assert pred.to_dict()["people"] == []


def test_coco17_input_derives_neck_and_mid_hip_in_3d(rig, rng):
    people = make_people(rng, 2)
    views, _ = observe(rig, people, rng)
    p15 = list(PANOPTIC15.joints)
    coco = []
    for arr in views:
        out = np.zeros((len(arr), 17, 3))
        for k, name in enumerate(COCO17):
            if name in p15:
                out[:, k] = arr[:, p15.index(name)]
        out[:, 1:5] = out[:, 0:1]  # eyes and ears at the nose
        coco.append(out)
    pred = Triangulator.from_rig(rig, layout="coco17").predict_people(coco)
    who, mpjpe = match(pred.poses_mm, people)
    assert sorted(who.tolist()) == [0, 1]
    neck, l_sho, r_sho = (PANOPTIC15.index(n) for n in ("neck", "l_shoulder", "r_shoulder"))
    np.testing.assert_allclose(
        pred.poses_mm[:, neck], 0.5 * (pred.poses_mm[:, l_sho] + pred.poses_mm[:, r_sho]), atol=1e-3
    )


def test_cluster_keeps_one_person_per_view_and_rejects_chains():
    cost = np.full((4, 4), np.inf)
    view = np.array([0, 1, 2, 1])
    cost[0, 1] = cost[1, 0] = 10.0  # 0~1
    cost[0, 3] = cost[3, 0] = 12.0  # 0~3 too, but 1 and 3 share view 1
    cost[1, 2] = cost[2, 1] = 20.0  # 1~2, but 0 and 2 disagree: average linkage refuses
    cost[0, 2] = cost[2, 0] = 400.0
    clusters = cluster_people(cost, view, max_cost=100.0)
    assert [c.tolist() for c in clusters] == [[0, 1]]


def test_bad_input_is_named(rig):
    tri = Triangulator.from_rig(rig)
    with pytest.raises(ValueError, match="5 cameras"):
        tri.predict_people([np.zeros((0, 15, 3))] * 3)
    with pytest.raises(ValueError, match=r"poses_2d\[1\].*\(N,15,3\)"):
        tri.predict_people([np.zeros((0, 15, 3)), np.zeros((2, 17, 3))] + [np.zeros((0, 15, 3))] * 3)
    with pytest.raises(ConfigError, match="triangulate.min_views"):
        TriangulatorConfig(min_views=1)
    with pytest.raises(ConfigError, match="triangulate.layout"):
        Triangulator.from_rig(rig, layout="h36m")
    with pytest.raises(ConfigError, match="unknown setting.*joint_max_mm"):
        Triangulator.from_rig(rig, joint_max_mm=20.0)


def test_masked_median_matches_nanmedian(rng):
    import warnings

    for shape, axis in (((7, 9), -1), ((4, 6, 5), 1), ((3, 0), -1), ((6, 1), -1)):
        v, m = rng.normal(size=shape), rng.random(shape) < 0.5
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            ref = np.nanmedian(np.where(m, v, np.nan), axis=axis)
        np.testing.assert_allclose(masked_median(v, m, axis), ref, equal_nan=True)
