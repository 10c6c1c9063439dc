"""How high can Shelf PCP go with the Panoptic-15 head rule when the nose comes from the detections?

An oracle bound, not a method (the 3D ground truth is used to build it): every body joint is
set to the ground truth, and only the nose, which the head rule (SPEC §5.2) turns into Shelf's
head segment, comes from the detections:

* ``4dassoc_nose``: the nose of the 4D-Association authors' own 3D output (``pred_4dassoc.npz``),
  the best-placed triangulated nose available for this data;
* ``triangulated_nose``: our PAF-grouped BODY_25 noses (``engine.paf_grouping``), associated across
  views with the help of the ground truth, triangulated (weighted DLT).

Any model that puts the nose where the detections see it is bounded by these figures. Prints a
table and, with ``--json``, one JSON object last.

    python benchmarks/shelf_head_bound.py --json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from calib.check import triangulate_weighted  # noqa: E402
from calib.projection import project_points  # noqa: E402
from training.datasets.shelf_campus import SHELF, load_ground_truth  # noqa: E402
from training.metrics import PANOPTIC15_TO_SHELF, shelf_pcp, to_shelf14  # noqa: E402
from training.results_io import load_predictions  # noqa: E402
from training.shelf.data import ShelfDetections  # noqa: E402

NOSE = 1  # Panoptic-15
BODY = list(PANOPTIC15_TO_SHELF)  # Panoptic-15 index of Shelf joints 0..11


def gt_body_with_nose(gt_joints: np.ndarray, nose_mm: np.ndarray) -> np.ndarray:
    """(14,3) Shelf GT + (3,) nose -> (15,3) Panoptic-15 pose (joints the head rule does not use stay 0)."""
    pose = np.zeros((15, 3))
    pose[BODY] = gt_joints[:12]
    pose[NOSE] = nose_mm
    return pose


def nose_from_4dassoc(pred_path: Path, gt) -> list[np.ndarray]:
    preds = load_predictions(pred_path)
    out = []
    for f in range(len(gt.frame_ids)):
        p = preds.poses[f][preds.valid[f]][..., :3]
        poses = []
        for a in np.flatnonzero(gt.valid[f]):
            g = gt.joints_mm[f, a]
            err = np.linalg.norm(to_shelf14(p)[:, :12] - g[None, :12], axis=-1).mean(1)
            poses.append(gt_body_with_nose(g, p[np.argmin(err), NOSE]))
        out.append(np.array(poses).reshape(-1, 15, 3))
    return out


def nose_triangulated(data: ShelfDetections, gt, gate_px: float = 60.0) -> list[np.ndarray]:
    out = []
    for f, fid in enumerate(gt.frame_ids):
        people = data.people(int(fid))
        poses = []
        for a in np.flatnonzero(gt.valid[f]):
            g = gt.joints_mm[f, a]
            uv, w = np.zeros((1, len(data.rig), 2)), np.zeros((1, len(data.rig)))
            for v, cam in enumerate(data.rig):
                if len(people[v]) == 0:
                    continue
                d = np.linalg.norm(people[v][:, BODY, :2] - project_points(g[:12], cam)[None], axis=-1)
                d = np.where(people[v][:, BODY, 2] > 0, d, np.nan)
                med = np.nanmedian(np.where(np.isnan(d).all(1, keepdims=True), 1e9, d), axis=1)
                k = int(np.argmin(med))
                if med[k] < gate_px:
                    uv[0, v], w[0, v] = people[v][k, NOSE, :2], people[v][k, NOSE, 2]
            nose = triangulate_weighted(data.rig, uv, w)[0]
            if np.isfinite(nose).all():
                poses.append(gt_body_with_nose(g, nose))
            else:  # nose seen in < 2 views: count the head as wrong (far away)
                poses.append(gt_body_with_nose(g, g[12] + 1e4))
        out.append(np.array(poses).reshape(-1, 15, 3))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default=str(REPO.parent / "shared" / "data" / "shelf"))
    ap.add_argument("--json", action="store_true", help="print one JSON object last")
    args = ap.parse_args(argv)
    root = Path(args.data)
    data = ShelfDetections(root)
    gt = load_ground_truth(root, SHELF).select(data.frame_ids)
    rows = {}
    for name, poses in (
        ("4dassoc_nose", nose_from_4dassoc(root / "pred_4dassoc.npz", gt)),
        ("triangulated_nose", nose_triangulated(data, gt)),
    ):
        r = shelf_pcp(poses, gt.joints_mm, gt.valid)
        print(f"GT body + {name}: PCP avg A1-A3 {r.average_pcp:.2f}\n{r.table()}\n")
        rows[name] = {
            "pcp_average": r.average_pcp,
            "actor_pcp": [float(x) for x in r.actor_pcp],
            "head": [float(x) for x in r.group_pcp()["Head"]],
        }
    if args.json:
        print(json.dumps({"benchmark": "shelf_head_bound", "head_rule": "panoptic15", "rows": rows}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
