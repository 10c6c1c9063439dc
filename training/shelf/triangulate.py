"""The triangulation engine on Shelf's PAF-grouped OpenPose people, scored like the learned route.

``selfpose3d eval shelf --engine triangulate`` runs :func:`evaluate_shelf_triangulate`: per frame the
BODY_25 candidates are grouped per view with the part-affinity scores (``ShelfDetections.people``,
:mod:`engine.paf_grouping`), mapped to Panoptic-15 and given to
:meth:`engine.triangulate.Triangulator.predict_people` (the product path). The prediction file has
the learned route's layout (``poses (F,M,15,5)``: x, y, z mm, flag 0, joint score; ``valid``,
``scores``, ``roots``) so one evaluator scores both.

The COCO-17 head rule needs the ears, which Panoptic-15 lacks: for that figure the same engine runs
on the BODY_25 people themselves (``layout="body25"``) and its 3D BODY_25 joints are mapped to
COCO-17 by name. Nothing here uses the 3D ground truth except the scoring.
"""

from __future__ import annotations

import time
from typing import Sequence

import numpy as np

from calib.common.keypoint_maps import BODY25, COCO17
from engine.triangulate import Triangulator
from training.datasets.shelf_campus import SHELF, ActorsGT, load_ground_truth
from training.evaluate import evaluate_shelf_campus, pcp_metrics
from training.metrics import RECALL_THRESHOLD_MM, to_shelf14
from training.results_io import Predictions, save_predictions
from training.shelf.data import ShelfDetections

BODY25_TO_COCO17 = np.array([BODY25.index(n) for n in COCO17])


def _head_fallback(coco: np.ndarray) -> None:
    """In place on (P,17,5) COCO-17 poses (column 4 = joint score): a missing ear takes the other
    ear, or the nose when both are missing (the COCO head rule averages the ears; a missing joint's
    placeholder, the person's centre, would put the head at the hips)."""
    nose, l_ear, r_ear = (COCO17.index(n) for n in ("nose", "l_ear", "r_ear"))
    for ear, other in ((l_ear, r_ear), (r_ear, l_ear)):
        missing = coco[:, ear, 4] <= 0
        use = np.where((coco[:, other, 4] > 0)[:, None], coco[:, other, :3], coco[:, nose, :3])
        coco[missing, ear, :3] = use[missing]


def _pack(
    per_frame: list[tuple[np.ndarray, np.ndarray, np.ndarray]], frame_ids: Sequence[int], layout: str
) -> Predictions:
    """Per frame (poses (P,J,5), scores (P,), roots (P,3)) -> padded :class:`Predictions`."""
    M = max([1] + [len(p) for p, _, _ in per_frame])
    J = per_frame[0][0].shape[1] if per_frame else 15
    poses = np.zeros((len(per_frame), M, J, 5))
    valid = np.zeros((len(per_frame), M), bool)
    scores = np.zeros((len(per_frame), M))
    roots = np.zeros((len(per_frame), M, 3))
    for i, (p, s, r) in enumerate(per_frame):
        poses[i, : len(p)], valid[i, : len(p)], scores[i, : len(p)], roots[i, : len(p)] = p, True, s, r
    return Predictions(poses, np.asarray(frame_ids, np.int64), valid, scores, roots, layout)


def predict_shelf_triangulate(
    data: ShelfDetections, frame_ids: Sequence[int], layout: str = "panoptic15", **thresholds
) -> tuple[Predictions, dict[str, float]]:
    """Triangulate every frame.

    Args:
        data: the Shelf rig and detections.
        frame_ids: frames to run.
        layout: ``panoptic15`` (the product path) or ``body25`` (output mapped to COCO-17).
        thresholds: :class:`engine.triangulate.TriangulatorConfig` fields.
    Returns:
        predictions (Panoptic-15 or COCO-17 layout) and milliseconds per frame (``grouping``: PAF
        grouping of the 5 views, ``triangulation``: the engine, wall and ``triangulation_cpu``
        process CPU time, which depends less on what else runs on the machine).
    """
    tri = Triangulator.from_rig(data.rig, layout=layout, **thresholds)
    per_frame = []
    t_group = t_tri = cpu_tri = 0.0
    for f in frame_ids:
        t0 = time.perf_counter()
        people = data.people(f, layout=layout)
        t1, c1 = time.perf_counter(), time.process_time()
        if layout == "panoptic15":
            pred = tri.predict_people(people)
            per_frame.append((pred.candidates, pred.scores, pred.proposals[:, :3]))
        else:
            res = tri.solve(people)
            poses = np.zeros((res.num_people, len(COCO17), 5))
            poses[..., :3] = res.poses_mm[:, BODY25_TO_COCO17]
            poses[..., 4] = res.joint_scores[:, BODY25_TO_COCO17]
            _head_fallback(poses)
            per_frame.append((poses, res.scores, res.poses_mm[:, BODY25.index("mid_hip")]))
        t_tri += time.perf_counter() - t1
        cpu_tri += time.process_time() - c1
        t_group += t1 - t0
    n = max(1, len(frame_ids))
    out_layout = "panoptic15" if layout == "panoptic15" else "coco17"
    return _pack(per_frame, frame_ids, out_layout), {
        "grouping": 1e3 * t_group / n,
        "triangulation": 1e3 * t_tri / n,
        "triangulation_cpu": 1e3 * cpu_tri / n,
    }


def body_mpjpe_and_unmatched(preds: Predictions, gt: ActorsGT) -> dict:
    """Per actor the mean 12-joint body MPJPE (mm) of the prediction matched as PCP matches it
    (least 14-joint MPJPE), and the predictions matched to no annotated actor within 500 mm."""
    errors = [[] for _ in gt.actor_names]
    unmatched = total = 0
    for f, fid in enumerate(gt.frame_ids):
        pred, _ = preds.frame(int(fid))
        if not len(pred):
            continue
        p14 = to_shelf14(pred, preds.layout)
        actors = np.flatnonzero(gt.valid[f])
        total += len(pred)
        if not len(actors):
            unmatched += len(pred)
            continue
        g = gt.joints_mm[f, actors, :14]
        err = np.linalg.norm(p14[None] - g[:, None], axis=-1)  # (a,M,14)
        best = err.mean(-1).argmin(1)
        for k, a in enumerate(actors):
            errors[a].append(err[k, best[k], :12].mean())
        unmatched += int((err.mean(-1).min(0) >= RECALL_THRESHOLD_MM).sum())
    return {
        "body_mpjpe_mm": {n: (float(np.mean(e)) if e else None) for n, e in zip(gt.actor_names, errors)},
        "predictions": total,
        "unmatched_predictions": unmatched,
    }


def evaluate_shelf_triangulate(
    data_root,
    frame_ids: Sequence[int] | None = None,
    gt_path=None,
    save_to=None,
    detections=None,
    with_coco17: bool = True,
    **thresholds,
) -> dict:
    """PCP of the triangulation engine on Shelf frames (default all 301); optionally saves the NPZ.

    Returns the metrics of :func:`training.evaluate.pcp_metrics` (Panoptic-15 head rule) plus
    ``body_mpjpe_mm`` per actor, ``unmatched_predictions`` (matched to no annotated actor within
    500 mm: ghosts, or real people Shelf's ground truth does not annotate in that frame),
    ``ms_per_frame``, ``frames``, ``table``, and with ``with_coco17`` ``coco17`` (the same for the
    BODY_25 run under the COCO-17 head rule).
    """
    data = ShelfDetections(data_root, detections)
    frames = list(frame_ids) if frame_ids is not None else data.frame_ids
    gt = load_ground_truth(gt_path or data_root, SHELF).select(frames)
    preds, ms = predict_shelf_triangulate(data, frames, **thresholds)
    if save_to:
        save_predictions(save_to, preds)
    result = evaluate_shelf_campus(preds, gt)
    metrics = pcp_metrics(result)
    metrics.update(body_mpjpe_and_unmatched(preds, gt))
    metrics.update(
        {
            "engine": "triangulate",
            "head_rule": "panoptic15",
            "frames": f"{frames[0]}-{frames[-1]}",
            "num_frames": len(frames),
            "ms_per_frame": {k: round(v, 2) for k, v in ms.items()},
            "table": result.table(),
        }
    )
    if with_coco17:
        coco, ms_c = predict_shelf_triangulate(data, frames, layout="body25", **thresholds)
        res_c = evaluate_shelf_campus(coco, gt)
        mc = pcp_metrics(res_c)
        mc.update(body_mpjpe_and_unmatched(coco, gt))
        mc.update(
            {
                "head_rule": "coco17",
                "input": "BODY_25 people (layout body25)",
                "ms_per_frame": {k: round(v, 2) for k, v in ms_c.items()},
                "table": res_c.table(),
            }
        )
        metrics["coco17"] = mc
    return metrics
