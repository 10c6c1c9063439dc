"""Score a prediction file against a dataset's ground truth (Panoptic AP/MPJPE, Shelf/Campus PCP)."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from training.datasets.panoptic import PanopticFrame
from training.datasets.shelf_campus import ActorsGT
from training.errors import DatasetError
from training.metrics import PCPResult, match_to_ground_truth, panoptic_metrics, shelf_pcp
from training.results_io import Predictions


def evaluate_panoptic(predictions: Predictions, frames: Sequence[PanopticFrame]) -> dict[str, float]:
    """Panoptic metrics over the GT ``frames`` (SPEC.md §5.1).

    Every GT frame counts; a frame absent from the predictions contributes its GT persons and no
    prediction. When the prediction file has ``roots``, root metrics are added with a ``root_``
    prefix (proposals against GT mid-hips). Keys: ``ap25``…``ap150``, ``recall25``…,
    ``mean_ap``, ``mpjpe_mm``, ``recall500``, ``num_gt``, ``num_predictions``, ``frames``.
    """
    if predictions.layout != "panoptic15":
        raise DatasetError(f"Panoptic evaluation needs panoptic15 predictions, got '{predictions.layout}'")
    sequences = {f.sequence for f in frames}
    if len(sequences) > 1 and predictions.sequences is None:
        raise DatasetError(
            "predictions cover several Panoptic sequences but have no 'sequences' array to tell "
            "equal frame ids apart; save them with sequences=..."
        )
    pred, score, gt, vis, roots, root_scores, gt_roots = [], [], [], [], [], [], []
    for f in frames:
        p, s = predictions.frame(f.frame, f.sequence)
        g, v = f.gt_arrays()
        pred.append(p)
        score.append(s)
        gt.append(g)
        vis.append(v)
        gt_roots.append(g[:, 2])
        if predictions.roots is not None:
            r, rs = predictions.frame_roots(f.frame, f.sequence)
            roots.append(r)
            root_scores.append(rs)
    out = panoptic_metrics(match_to_ground_truth(pred, score, gt, vis))
    if predictions.roots is not None:
        root = panoptic_metrics(match_to_ground_truth(roots, root_scores, gt_roots))
        out.update({f"root_{k}": v for k, v in root.items()})
    out["frames"] = float(len(frames))
    return out


def evaluate_shelf_campus(
    predictions: Predictions, gt: ActorsGT, skip_frames_without_predictions: bool = True
) -> PCPResult:
    """PCP of a prediction file on the GT frames (per GT actor the valid prediction with the least
    MPJPE over the 14 joints, no distance gate; SPEC.md §5.2)."""
    per_frame = [predictions.frame(int(f))[0] for f in gt.frame_ids]
    if not any(len(p) for p in per_frame):
        raise DatasetError(
            f"predictions hold no valid pose for any GT frame ({int(gt.frame_ids[0])}..{int(gt.frame_ids[-1])}); "
            "check the frame_ids"
        )
    return shelf_pcp(
        per_frame,
        gt.joints_mm,
        gt.valid,
        predictions.layout,
        gt.actor_names,
        skip_frames_without_predictions=skip_frames_without_predictions,
    )


def pcp_metrics(result: PCPResult) -> dict:
    """Metrics JSON content for PCP (plus ``recall500`` over all actor-frames)."""
    out = result.as_dict()
    out["recall500"] = float(result.recalled.sum() / max(result.evaluated.sum(), 1))
    out["actor_pcp"] = {n: float(v) for n, v in zip(result.actor_names, np.round(result.actor_pcp, 4))}
    return out
