"""Evaluation metrics: Panoptic AP@25..150 / recall@500 / MPJPE (SPEC.md §5.1) and Shelf/Campus PCP (§5.2).

Pure numpy. Poses are in world millimetres. Per-frame inputs are lists (one entry per frame) so
frames may hold different numbers of persons.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from calib.common.poses import pairwise_mpjpe_mm

AP_THRESHOLDS_MM: tuple[int, ...] = (25, 50, 75, 100, 125, 150)
RECALL_THRESHOLD_MM = 500.0


# --------------------------------------------------------------------------------------------
# Panoptic: AP / recall / MPJPE


@dataclass(frozen=True)
class MatchRecords:
    """One record per kept prediction, matched to its nearest GT person.

    Attributes:
        mpjpe_mm: (N,) error to the nearest GT person over that person's visible joints.
        score: (N,) prediction confidence (root score).
        gt_id: (N,) global id of that GT person (unique over the whole set).
        total_gt: number of GT persons over all evaluated frames.
    """

    mpjpe_mm: np.ndarray
    score: np.ndarray
    gt_id: np.ndarray
    total_gt: int


def match_to_ground_truth(
    pred_mm: Sequence[np.ndarray],
    pred_score: Sequence[np.ndarray],
    gt_mm: Sequence[np.ndarray],
    gt_visible: Sequence[np.ndarray] | None = None,
) -> MatchRecords:
    """Assign every kept prediction to the GT person with the lowest MPJPE (SPEC.md §5.1 step 2).

    Args:
        pred_mm: per frame (M,J,3) kept predictions (filter invalid ones before), or (M,3) roots.
        pred_score: per frame (M,) scores.
        gt_mm: per frame (G,J,3) GT joints (or (G,3) roots).
        gt_visible: per frame (G,J) bool; default all visible.

    Frames without GT persons are skipped (their predictions produce no record).
    """
    if not (len(pred_mm) == len(pred_score) == len(gt_mm)):
        raise ValueError(f"frame counts differ: {len(pred_mm)} predictions, {len(pred_score)} scores, {len(gt_mm)} GT")
    mpjpes, scores, ids = [], [], []
    total_gt = 0
    for f, (pred, score, gt) in enumerate(zip(pred_mm, pred_score, gt_mm)):
        gt = np.asarray(gt, dtype=np.float64)
        if gt.ndim == 2:  # roots: one "joint" per person
            gt = gt[:, None, :]
        pred = np.asarray(pred, dtype=np.float64)
        if pred.ndim == 2:
            pred = pred[:, None, :]
        if gt.shape[0] == 0:
            continue
        vis = (
            np.ones(gt.shape[:2], bool) if gt_visible is None else np.asarray(gt_visible[f], bool).reshape(gt.shape[:2])
        )
        if pred.shape[0]:
            err = pairwise_mpjpe_mm(pred, gt, vis)  # (M,G)
            best = np.argmin(err, axis=1)
            mpjpes.append(err[np.arange(len(best)), best])
            scores.append(np.asarray(score, dtype=np.float64).reshape(-1))
            ids.append(best + total_gt)
        total_gt += gt.shape[0]
    cat = lambda xs, dt: np.concatenate(xs).astype(dt) if xs else np.zeros(0, dt)  # noqa: E731
    return MatchRecords(cat(mpjpes, np.float64), cat(scores, np.float64), cat(ids, np.int64), total_gt)


def _greedy_true_positives(records: MatchRecords, threshold_mm: float) -> np.ndarray:
    """(N,) bool in descending-score order (stable): mpjpe < t and GT not claimed yet."""
    order = np.argsort(-records.score, kind="stable")
    claimed: set[int] = set()
    tp = np.zeros(len(order), bool)
    for rank, i in enumerate(order):
        gid = int(records.gt_id[i])
        if records.mpjpe_mm[i] < threshold_mm and gid not in claimed:
            claimed.add(gid)
            tp[rank] = True
    return tp


def average_precision(records: MatchRecords, threshold_mm: float) -> tuple[float, float]:
    """AP@t and the final cumulative recall@t (SPEC.md §5.1 step 3)."""
    tp = _greedy_true_positives(records, threshold_mm)
    tp_cum = np.cumsum(tp)
    fp_cum = np.cumsum(~tp)
    recall = tp_cum / (records.total_gt + 1e-5)
    precision = tp_cum / (tp_cum + fp_cum + 1e-5)
    precision = np.maximum.accumulate(precision[::-1])[::-1]  # envelope: max of itself and later
    recall = np.concatenate(([0.0], recall, [1.0]))
    precision = np.concatenate(([0.0], precision, [0.0]))
    changes = np.flatnonzero(recall[1:] != recall[:-1])
    ap = float(np.sum((recall[changes + 1] - recall[changes]) * precision[changes + 1]))
    return ap, float(recall[-2])


def matched_mpjpe(records: MatchRecords, threshold_mm: float = RECALL_THRESHOLD_MM) -> float:
    """Mean error of the score-ordered greedy TPs at ``threshold_mm`` (inf if none; §5.1 step 4)."""
    tp = _greedy_true_positives(records, threshold_mm)
    order = np.argsort(-records.score, kind="stable")
    errors = records.mpjpe_mm[order][tp]
    return float(errors.mean()) if errors.size else float("inf")


def recall_at(records: MatchRecords, threshold_mm: float = RECALL_THRESHOLD_MM) -> float:
    """Distinct GT persons with any record under the threshold / total GT (§5.1 step 5)."""
    hit = np.unique(records.gt_id[records.mpjpe_mm < threshold_mm])
    return float(hit.size / records.total_gt) if records.total_gt else 0.0


def panoptic_metrics(records: MatchRecords) -> dict[str, float]:
    """All Panoptic numbers: ``ap25``..``ap150``, ``recall25``..``recall150``, ``mpjpe_mm``,
    ``recall500`` and ``mean_ap`` (the model-selection criterion)."""
    out: dict[str, float] = {}
    for t in AP_THRESHOLDS_MM:
        out[f"ap{t}"], out[f"recall{t}"] = average_precision(records, float(t))
    out["mean_ap"] = float(np.mean([out[f"ap{t}"] for t in AP_THRESHOLDS_MM]))
    out["mpjpe_mm"] = matched_mpjpe(records)
    out["recall500"] = recall_at(records)
    out["num_gt"] = float(records.total_gt)
    out["num_predictions"] = float(records.mpjpe_mm.size)
    return out


# --------------------------------------------------------------------------------------------
# Shelf / Campus PCP

SHELF14_JOINTS: tuple[str, ...] = (
    "r_ankle",
    "r_knee",
    "r_hip",
    "l_hip",
    "l_knee",
    "l_ankle",
    "r_wrist",
    "r_elbow",
    "r_shoulder",
    "l_shoulder",
    "l_elbow",
    "l_wrist",
    "bottom_head",
    "top_head",
)
# Shelf-14 joints 0..11 taken from Panoptic-15 / COCO-17 by index.
PANOPTIC15_TO_SHELF = (14, 13, 12, 6, 7, 8, 11, 10, 9, 3, 4, 5)
COCO17_TO_SHELF = (16, 14, 12, 11, 13, 15, 10, 8, 6, 5, 7, 9)
PCP_LIMBS: tuple[tuple[int, int], ...] = ((0, 1), (1, 2), (3, 4), (4, 5), (6, 7), (7, 8), (9, 10), (10, 11), (12, 13))
PCP_PART_NAMES: tuple[str, ...] = (
    "r_lower_leg",
    "r_upper_leg",
    "l_upper_leg",
    "l_lower_leg",
    "r_lower_arm",
    "r_upper_arm",
    "l_upper_arm",
    "l_lower_arm",
    "head",
    "torso",
)
PCP_BONE_GROUPS: dict[str, tuple[int, ...]] = {
    "Head": (8,),
    "Torso": (9,),
    "Upper arms": (5, 6),
    "Lower arms": (4, 7),
    "Upper legs": (1, 2),
    "Lower legs": (0, 3),
}


def to_shelf14(poses_mm: np.ndarray, layout: str = "panoptic15") -> np.ndarray:
    """Convert predictions (...,J,3) to Shelf-14 (...,14,3) with the head rule of SPEC.md §5.2.

    ``layout`` ``"panoptic15"``: mid-shoulder from Panoptic 3/9, nose 1. ``"coco17"``: mid-shoulder
    from COCO 5/6, nose 0, and the mean of the ears (3/4) replaces the nose in the base head points.
    """
    poses = np.asarray(poses_mm, dtype=np.float64)[..., :3]
    if layout == "panoptic15":
        body_idx, m = PANOPTIC15_TO_SHELF, 0.5 * (poses[..., 3, :] + poses[..., 9, :])
        nose = poses[..., 1, :]
        base = nose
    elif layout == "coco17":
        body_idx, m = COCO17_TO_SHELF, 0.5 * (poses[..., 5, :] + poses[..., 6, :])
        nose = poses[..., 0, :]
        base = 0.5 * (poses[..., 3, :] + poses[..., 4, :])
    else:
        raise ValueError(f"unknown pose layout '{layout}'; use 'panoptic15' or 'coco17'")
    hb0 = 0.5 * (m + base)
    ht0 = 2.0 * base - hb0
    top = m + (nose - m) * np.array([0.75, 0.75, 1.5])
    bottom = m + 0.5 * (nose - m)
    top = 0.75 * top + 0.25 * ht0
    bottom = 0.75 * bottom + 0.25 * hb0
    return np.concatenate([poses[..., list(body_idx), :], bottom[..., None, :], top[..., None, :]], axis=-2)


def _part_endpoints(pose14: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(...,10,3) start and end points of the 9 limbs and the torso (hip centre -> bottom head)."""
    a = [pose14[..., i, :] for i, _ in PCP_LIMBS] + [0.5 * (pose14[..., 2, :] + pose14[..., 3, :])]
    b = [pose14[..., j, :] for _, j in PCP_LIMBS] + [pose14[..., 12, :]]
    return np.stack(a, axis=-2), np.stack(b, axis=-2)


@dataclass
class PCPResult:
    """PCP per actor and per part.

    Attributes:
        correct: (A,10) correct-part counts per actor and part (order :data:`PCP_PART_NAMES`).
        evaluated: (A,) actor-frames evaluated.
        recalled: (A,) actor-frames whose best prediction has MPJPE < 500 mm.
        actor_names: display names.
        average_actors: indices averaged in ``average_pcp`` (Actors 1–3).
    """

    correct: np.ndarray
    evaluated: np.ndarray
    recalled: np.ndarray
    actor_names: tuple[str, ...]
    average_actors: tuple[int, ...] = (0, 1, 2)
    skipped_frames: list[int] = field(default_factory=list)

    @property
    def actor_pcp(self) -> np.ndarray:
        """(A,) percentage of correct parts per actor."""
        return 100.0 * self.correct.sum(1) / np.maximum(10 * self.evaluated, 1)

    @property
    def average_pcp(self) -> float:
        return float(np.mean(self.actor_pcp[list(self.average_actors)]))

    def group_pcp(self) -> dict[str, np.ndarray]:
        """Bone-group name -> (A,) percentage."""
        denom = np.maximum(self.evaluated, 1)
        return {k: 100.0 * self.correct[:, list(v)].sum(1) / (denom * len(v)) for k, v in PCP_BONE_GROUPS.items()}

    def as_dict(self) -> dict:
        groups = self.group_pcp()
        actors = {
            name: {
                "pcp": float(self.actor_pcp[a]),
                "frames": int(self.evaluated[a]),
                "recall500": float(self.recalled[a] / max(self.evaluated[a], 1)),
                **{g: float(groups[g][a]) for g in groups},
            }
            for a, name in enumerate(self.actor_names)
        }
        return {"pcp_average": self.average_pcp, "actors": actors, "skipped_frames": list(self.skipped_frames)}

    def table(self) -> str:
        """Human-readable table: rows = bone groups + Total, columns = actors + Average."""
        groups = self.group_pcp()
        avg = list(self.average_actors)
        head = f"{'':12s}" + "".join(f"{n:>9s}" for n in self.actor_names) + f"{'Average':>9s}"
        rows = [head]
        for name, values in list(groups.items()) + [("Total", self.actor_pcp)]:
            rows.append(f"{name:12s}" + "".join(f"{v:9.2f}" for v in values) + f"{np.mean(values[avg]):9.2f}")
        return "\n".join(rows)


def shelf_pcp(
    pred_mm: Sequence[np.ndarray],
    gt_mm: np.ndarray,
    gt_valid: np.ndarray,
    layout: str = "panoptic15",
    actor_names: Sequence[str] | None = None,
    alpha: float = 0.5,
    skip_frames_without_predictions: bool = True,
) -> PCPResult:
    """Shelf/Campus PCP (SPEC.md §5.2).

    Args:
        pred_mm: per frame (M,J,3+) valid predictions in ``layout`` (invalid ones already removed).
        gt_mm: (F,A,14,3) GT in Shelf-14 order, mm (extra joints beyond 14 are ignored).
        gt_valid: (F,A) bool, actor present.
        layout: ``"panoptic15"`` or ``"coco17"`` (head rule, see :func:`to_shelf14`).
        alpha: part threshold as a fraction of the GT part length.
        skip_frames_without_predictions: upstream Shelf behaviour (the frame's GT is not counted);
            ``False`` counts every GT actor of such a frame as wrong.
    """
    gt_mm = np.asarray(gt_mm, dtype=np.float64)[:, :, :14]
    gt_valid = np.asarray(gt_valid, bool)
    if len(pred_mm) != gt_mm.shape[0]:
        raise ValueError(f"{len(pred_mm)} prediction frames but {gt_mm.shape[0]} GT frames")
    num_actors = gt_mm.shape[1]
    names = tuple(actor_names) if actor_names is not None else tuple(f"Actor{a + 1}" for a in range(num_actors))
    result = PCPResult(np.zeros((num_actors, 10)), np.zeros(num_actors, int), np.zeros(num_actors, int), names)
    for f in range(gt_mm.shape[0]):
        actors = np.flatnonzero(gt_valid[f])
        if not actors.size:
            continue
        pred = np.asarray(pred_mm[f], dtype=np.float64)
        if pred.shape[0] == 0:
            if skip_frames_without_predictions:
                result.skipped_frames.append(f)
            else:
                result.evaluated[actors] += 1
            continue
        pred14 = to_shelf14(pred, layout)  # (M,14,3)
        gt = gt_mm[f, actors]  # (a,14,3)
        err = pairwise_mpjpe_mm(gt, pred14)  # (a,M)
        best = pred14[np.argmin(err, axis=1)]  # (a,14,3)
        pa, pb = _part_endpoints(best)
        ga, gb = _part_endpoints(gt)
        ok = (np.linalg.norm(pa - ga, axis=-1) + np.linalg.norm(pb - gb, axis=-1)) / 2.0 <= alpha * np.linalg.norm(
            ga - gb, axis=-1
        )
        result.correct[actors] += ok
        result.evaluated[actors] += 1
        result.recalled[actors] += err.min(axis=1) < RECALL_THRESHOLD_MM
    return result
