"""Shelf on real data (``data`` marker): PAF grouping against the GT, the engine input path, a short eval."""

from __future__ import annotations

import json

import numpy as np
import pytest

from calib.common.paths import REPO_ROOT
from calib.projection import project_points
from training.datasets.shelf_campus import read_gt_npz

REPO = REPO_ROOT
MODEL = REPO / "models" / "shelf_ssl.pt"
pytestmark = pytest.mark.data


@pytest.fixture(scope="module")
def shelf(shared_data):
    from training.shelf.data import ShelfDetections

    return ShelfDetections(shared_data / "shelf")


def test_grouped_people_are_the_gt_actors(shelf, shared_data):
    """Every GT actor well inside a view has a PAF-grouped person whose joints lie on its projection."""
    gt = read_gt_npz(shared_data / "shelf" / "gt.npz")
    # Shelf-14 -> Panoptic-15 indices of the limb joints both layouts share.
    shelf14 = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]
    p15 = [14, 13, 12, 6, 7, 8, 11, 10, 9, 3, 4, 5]
    checked, matched = 0, 0
    for f in (300, 400, 500, 580):
        i = int(np.flatnonzero(gt.frame_ids == f)[0])
        people = shelf.people(f)
        for v, cam in enumerate(shelf.rig):
            for a in np.flatnonzero(gt.valid[i]):
                uv = project_points(gt.joints_mm[i, a, shelf14], cam)
                if not np.all((uv > 50) & (uv < np.array([cam.width, cam.height]) - 50)):
                    continue
                checked += 1
                if not len(people[v]):
                    continue
                d = np.linalg.norm(people[v][:, p15, :2] - uv[None], axis=-1)  # (N,12)
                seen = people[v][:, p15, 2] > 0
                med = np.array([np.median(row[s]) if s.sum() >= 4 else np.inf for row, s in zip(d, seen)])
                matched += int(med.min() < 40.0)
    assert checked >= 10
    print(f"grouped people on GT actors: {matched}/{checked}")
    assert matched / checked >= 0.8, f"only {matched}/{checked} GT actors have a grouped person on them"


def test_input_rows_are_every_candidate(shelf):
    rows = shelf.input_rows(450)
    assert len(rows) == 5 and all(r.shape[1:] == (15, 3) for r in rows)
    counts = shelf.openpose._d["cand_count"][:, shelf.openpose.frame_index(450)]  # (V,25)
    from calib.common.keypoint_maps import panoptic15_indices

    idx = panoptic15_indices("body25")
    for v, r in enumerate(rows):
        assert np.array_equal((r[:, :, 2] > 0).sum(0), counts[v, idx])


@pytest.mark.skipif(not MODEL.is_file(), reason=f"{MODEL.name} not committed")
def test_eval_shelf_checkpoint_short(shared_data, tmp_path):
    """``selfpose3d eval shelf --checkpoint`` on 20 frames: writes predictions and a sane PCP."""
    from app.commands import eval as eval_cmd
    from training.results_io import load_predictions

    import argparse

    parser = argparse.ArgumentParser()
    eval_cmd.add_arguments(parser)
    preds, metrics = tmp_path / "preds.npz", tmp_path / "m.json"
    args = parser.parse_args(
        [
            "shelf",
            "--checkpoint",
            str(MODEL),
            "--gt",
            str(shared_data / "shelf"),
            "--frames",
            "450-469",
            "--save-predictions",
            str(preds),
            "--metrics",
            str(metrics),
        ]
    )
    assert eval_cmd.run(args) == 0
    p = load_predictions(preds)
    assert list(p.frame_ids) == list(range(450, 470)) and p.poses.shape[2:] == (15, 5)
    m = json.loads(metrics.read_text())
    assert m["num_frames"] == 20
    assert m["pcp_average"] > 60.0  # a trained model; untrained weights score ~0
    # --refine-mm 0 switches the committed model's local refinement off: same people, other joints
    off = tmp_path / "off.npz"
    args = parser.parse_args(
        [
            "shelf",
            "--checkpoint",
            str(MODEL),
            "--gt",
            str(shared_data / "shelf"),
            "--frames",
            "450-469",
            "--save-predictions",
            str(off),
            "--refine-mm",
            "0",
        ]
    )
    assert eval_cmd.run(args) == 0
    q = load_predictions(off)
    assert np.array_equal(p.valid, q.valid)
    moved = np.linalg.norm(p.poses[p.valid][..., :3] - q.poses[q.valid][..., :3], axis=-1)
    assert 1.0 < moved.mean() < 80.0 * 3**0.5
