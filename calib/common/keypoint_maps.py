"""2D detector keypoint layouts (COCO-17, OpenPose COCO-18, BODY_25) and their map to Panoptic-15.

Pure numpy, so the engine's detection input path (:mod:`engine.detections`) and training's pseudo
labels share one definition. Source keypoints are ``(N,K,3)``: x, y px and a confidence.
``neck`` / ``mid_hip`` are copied when the layout has them (BODY_25 has both, COCO-18 a neck) and
otherwise derived as the mean of the two shoulders / hips that have confidence > 0.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from calib.common.skeleton import PANOPTIC15

COCO17 = (
    "nose",
    "l_eye",
    "r_eye",
    "l_ear",
    "r_ear",
    "l_shoulder",
    "r_shoulder",
    "l_elbow",
    "r_elbow",
    "l_wrist",
    "r_wrist",
    "l_hip",
    "r_hip",
    "l_knee",
    "r_knee",
    "l_ankle",
    "r_ankle",
)
BODY25 = (
    "nose",
    "neck",
    "r_shoulder",
    "r_elbow",
    "r_wrist",
    "l_shoulder",
    "l_elbow",
    "l_wrist",
    "mid_hip",
    "r_hip",
    "r_knee",
    "r_ankle",
    "l_hip",
    "l_knee",
    "l_ankle",
    "r_eye",
    "l_eye",
    "r_ear",
    "l_ear",
    "l_big_toe",
    "l_small_toe",
    "l_heel",
    "r_big_toe",
    "r_small_toe",
    "r_heel",
)
COCO18 = (
    "nose",
    "neck",
    "r_shoulder",
    "r_elbow",
    "r_wrist",
    "l_shoulder",
    "l_elbow",
    "l_wrist",
    "r_hip",
    "r_knee",
    "r_ankle",
    "l_hip",
    "l_knee",
    "l_ankle",
    "r_eye",
    "l_eye",
    "r_ear",
    "l_ear",
)
LAYOUTS: dict[str, tuple[str, ...]] = {"coco17": COCO17, "body25": BODY25, "coco18": COCO18}
LAYOUT_BY_COUNT = {17: "coco17", 25: "body25", 18: "coco18"}
DERIVED = {"neck": ("l_shoulder", "r_shoulder"), "mid_hip": ("l_hip", "r_hip")}


def layout_names(layout: str) -> tuple[str, ...]:
    """Joint names of a layout (ValueError naming the known layouts)."""
    if layout not in LAYOUTS:
        raise ValueError(f"unknown keypoint layout '{layout}'; known: {sorted(LAYOUTS)}")
    return LAYOUTS[layout]


def panoptic15_indices(layout: str) -> np.ndarray:
    """(15,) source index of every Panoptic-15 joint, -1 where the joint must be derived."""
    names = layout_names(layout)
    return np.array([names.index(n) if n in names else -1 for n in PANOPTIC15.joints], dtype=np.int64)


def keypoints_to_panoptic15(keypoints: np.ndarray, layout: str) -> np.ndarray:
    """Per-person source keypoints (N,K,3) -> Panoptic-15 (N,15,3) x, y px, score (0 = absent).

    A derived neck / mid-hip gets the mean position and confidence of the joints it is built from.
    """
    names = layout_names(layout)
    kp = np.asarray(keypoints, dtype=np.float64)
    if kp.ndim != 3 or kp.shape[1:] != (len(names), 3):
        raise ValueError(f"keypoints: expected (N,{len(names)},3) for layout '{layout}', got {kp.shape}")
    out = np.zeros((kp.shape[0], PANOPTIC15.num_joints, 3))
    for j, src in enumerate(panoptic15_indices(layout)):
        if src >= 0:
            out[:, j] = kp[:, src]
            continue
        a, b = (kp[:, names.index(n)] for n in DERIVED[PANOPTIC15.joints[j]])
        ok_a, ok_b = a[:, 2] > 0, b[:, 2] > 0
        count = np.maximum(ok_a.astype(float) + ok_b, 1.0)
        out[:, j, :2] = (a[:, :2] * ok_a[:, None] + b[:, :2] * ok_b[:, None]) / count[:, None]
        out[:, j, 2] = (a[:, 2] * ok_a + b[:, 2] * ok_b) / count
    out[:, :, 2] = np.maximum(out[:, :, 2], 0.0)
    out[out[:, :, 2] <= 0] = 0.0
    return out


def candidates_to_panoptic15(candidates: Sequence[np.ndarray], layout: str) -> list[np.ndarray]:
    """Ungrouped per-joint candidates of a source layout -> per Panoptic-15 joint (n_j,3) arrays.

    Only layouts that contain every Panoptic-15 joint can be mapped (BODY_25): a derived joint
    needs to know which shoulders belong together, i.e. grouped people
    (use :func:`keypoints_to_panoptic15` after :func:`engine.paf_grouping.group_people`).
    """
    names = layout_names(layout)
    if len(candidates) != len(names):
        raise ValueError(f"candidates: {len(candidates)} joints given, layout '{layout}' has {len(names)}")
    idx = panoptic15_indices(layout)
    if np.any(idx < 0):
        missing = [PANOPTIC15.joints[j] for j in np.flatnonzero(idx < 0)]
        raise ValueError(
            f"layout '{layout}' lacks {missing}: ungrouped candidates cannot derive them; "
            "group the candidates into people first (engine.paf_grouping)"
        )
    return [np.asarray(candidates[i], dtype=np.float32).reshape(-1, 3) for i in idx]
