"""2D detections -> the input heatmaps the root and pose nets consume (VoxelPose's protocol).

For rigs where a 2D estimator (or a user's own detector, streamed live) replaces the backbone:
per view, people as Panoptic-15 2D joints with scores (or ungrouped per-joint candidates) are
mapped through the same image affine as the images would be, and each joint becomes a Gaussian
(σ in heatmap px) whose peak is the joint's score; people are combined by element-wise max
(:func:`detection_codec`, one setting of the shared :class:`calib.common.heatmaps.HeatmapCodec`).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from calib.common.heatmaps import HeatmapCodec


def candidates_to_rows(candidates: Sequence[np.ndarray], num_joints: int) -> np.ndarray:
    """Ungrouped per-joint candidates -> rows of a (M,J,3) array (M = most candidates of a joint).

    Args:
        candidates: per joint j, a (n_j,3) array of x, y px and score.
    Returns:
        (M,J,3); row m holds the m-th candidate of every joint (zeros where a joint has fewer).
    """
    if len(candidates) != num_joints:
        raise ValueError(f"candidates: expected {num_joints} joints, got {len(candidates)}")
    m = max((len(c) for c in candidates), default=0)
    rows = np.zeros((m, num_joints, 3), dtype=np.float32)
    for j, c in enumerate(candidates):
        c = np.asarray(c, dtype=np.float32).reshape(-1, 3)
        rows[: len(c), j] = c
    return rows


def render_input_heatmaps(
    poses_2d: Sequence[np.ndarray],
    affine_hm: np.ndarray,
    heatmap_wh: tuple[int, int],
    sigma_px: float = 3.0,
    scale_by_score: bool = True,
) -> np.ndarray:
    """Render per-view 2D poses as network input heatmaps.

    Args:
        poses_2d: per view a (N,J,3) array: x, y in the camera's original pixels and a score
            (score <= 0: joint absent). An empty (0,J,3) array gives an all-zero view.
        affine_hm: (V,2,3) original px -> heatmap px (the runtime's view geometry).
        heatmap_wh: heatmap (w, h).
        sigma_px: Gaussian σ in heatmap pixels.
        scale_by_score: peak = score (VoxelPose's Shelf protocol) instead of 1.
    Returns:
        (V,J,h,w) float32 in [0, 1].
    """
    affine_hm = np.asarray(affine_hm, dtype=np.float64)
    V = affine_hm.shape[0]
    if len(poses_2d) != V:
        raise ValueError(f"render_input_heatmaps: {len(poses_2d)} views of poses for {V} cameras")
    w, h = heatmap_wh
    J = next((np.asarray(p).shape[1] for p in poses_2d if np.asarray(p).size), 15)
    out = np.zeros((V, J, h, w), dtype=np.float32)
    codec = detection_codec(heatmap_wh, sigma_px)
    for v, poses in enumerate(poses_2d):
        poses = np.asarray(poses, dtype=np.float64).reshape(-1, J, 3)
        if not len(poses):
            continue
        uv = poses[..., :2] @ affine_hm[v, :, :2].T + affine_hm[v, :, 2]  # (N,J,2) heatmap px
        score = np.clip(poses[..., 2], 0.0, 1.0) if scale_by_score else (poses[..., 2] > 0).astype(np.float64)
        out[v] = codec.encode(uv, np.where(poses[..., 2] > 0, score, 0.0))
    return out


def detection_codec(heatmap_wh: tuple[int, int], sigma_px: float = 3.0) -> HeatmapCodec:
    """The detection route's heatmaps: exact sub-pixel Gaussians on a ceil(3σ) window around
    ``int(x)``, max over people, not clipped (peaks are scores in [0, 1])."""
    return HeatmapCodec(heatmap_wh, sigma_px, window="ceil", anchor="trunc", centre="exact", combine="max")
