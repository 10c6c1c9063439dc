"""MPJPE, defined once: the mean per-joint position error between sets of 3D poses."""

from __future__ import annotations

import numpy as np


def pairwise_mpjpe_mm(pred_mm: np.ndarray, truth_mm: np.ndarray, truth_visible: np.ndarray | None = None) -> np.ndarray:
    """Mean per-joint error of every prediction against every true pose.

    Args:
        pred_mm: (P,J,3+) predicted poses (columns beyond x, y, z are ignored).
        truth_mm: (T,J,3+) true poses.
        truth_visible: optional (T,J) bool; only visible joints count, and a true pose with none
            visible is at infinite error.
    Returns:
        (P,T) float64 errors in the poses' unit.
    """
    pred = np.asarray(pred_mm, dtype=np.float64)[..., :3]
    truth = np.asarray(truth_mm, dtype=np.float64)[..., :3]
    dist = np.linalg.norm(pred[:, None] - truth[None], axis=-1)  # (P,T,J)
    if truth_visible is None:
        return dist.mean(-1)
    vis = np.asarray(truth_visible, bool)
    counts = vis.sum(axis=1)  # (T,)
    err = np.where(vis[None], dist, 0.0).sum(-1) / np.maximum(counts, 1)[None]
    return np.where(counts[None] > 0, err, np.inf)
