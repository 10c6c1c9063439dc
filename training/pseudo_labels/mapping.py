"""Keypoint layouts of 2D detectors and their mapping to Panoptic-15 (SPEC.md §4.7 steps 5–6).

Source keypoints are ``(N,K,3)`` arrays of x, y px and confidence. Joints are copied by name;
``neck`` and ``mid_hip`` are taken from the source when it has them (BODY_25 has both, COCO-18 a
neck) and otherwise derived: the mean of the two shoulders / hips when both have confidence > 0,
else the single available one, else invisible.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# The layouts and the Panoptic-15 map live in calib.common (the detection input path needs them too).
from calib.common.keypoint_maps import LAYOUT_BY_COUNT, LAYOUTS, keypoints_to_panoptic15
from training.pseudo_labels.store import ViewLabels

HARD_MIN_SCORE = 0.05
HARD_MIN_PASSING = 4  # "more than 3" joints must pass the score test
HARD_MIN_KEPT = 3


@dataclass(frozen=True)
class Detection:
    """Persons detected in one image, in a source layout.

    Attributes:
        keypoints: (N,K,3) x, y px, confidence.
        boxes_xywh: (N,4) person boxes or None (then the image is the box).
    """

    keypoints: np.ndarray
    boxes_xywh: np.ndarray | None = None


def layout_for(num_keypoints: int, where: str) -> str:
    """Layout name from the keypoint count (17 COCO, 18 OpenPose COCO, 25 BODY_25)."""
    from training.errors import DatasetError

    if num_keypoints not in LAYOUT_BY_COUNT:
        raise DatasetError(
            f"{where}: {num_keypoints} keypoints per person; supported: 17 (COCO), 18 (OpenPose COCO), 25 (BODY_25)"
        )
    return LAYOUT_BY_COUNT[num_keypoints]


def harden(
    keypoints: np.ndarray,
    boxes_xywh: np.ndarray | None,
    image_size: tuple[int, int] | None,
    min_score: float = HARD_MIN_SCORE,
) -> np.ndarray:
    """The 'hard' variant (SPEC.md §4.7 step 5) on source keypoints.

    A joint is kept iff its confidence ≥ ``min_score`` and it lies inside the person box clipped to
    the image (no box: the image; neither: no spatial test). A person keeps its joints only if more
    than 3 joints pass the score test and at least 3 are kept; otherwise all are zeroed.

    Returns:
        (N,K,3) with dropped joints set to 0 (x, y and confidence); kept confidences unchanged.
    """
    kp = np.asarray(keypoints, dtype=np.float64).copy()
    N = kp.shape[0]
    lo = np.full((N, 2), -np.inf)
    hi = np.full((N, 2), np.inf)
    if boxes_xywh is not None:
        boxes = np.asarray(boxes_xywh, dtype=np.float64).reshape(N, 4)
        lo, hi = boxes[:, :2], boxes[:, :2] + boxes[:, 2:]
    if image_size is not None and min(image_size) > 0:
        lo = np.maximum(lo, 0.0)
        hi = np.minimum(hi, np.asarray(image_size, dtype=np.float64))
    passing = kp[..., 2] >= min_score
    inside = np.all((kp[..., :2] >= lo[:, None]) & (kp[..., :2] <= hi[:, None]), axis=-1)
    kept = passing & inside
    person_ok = (passing.sum(1) >= HARD_MIN_PASSING) & (kept.sum(1) >= HARD_MIN_KEPT)
    kept &= person_ok[:, None]
    kp[~kept] = 0.0
    return kp


def to_panoptic15(keypoints: np.ndarray, layout: str) -> ViewLabels:
    """Map source keypoints (N,K,3) to Panoptic-15 labels.

    A joint is visible iff its confidence is > 0 (for the soft variant nearly every joint). A
    derived neck/mid-hip gets the mean confidence of the joints it was built from.
    """
    names = LAYOUTS[layout]
    p15 = keypoints_to_panoptic15(np.asarray(keypoints, dtype=np.float64).reshape(-1, len(names), 3), layout)
    joints, scores = p15[..., :2], p15[..., 2]
    visible = scores > 0
    joints[~visible] = 0.0
    return ViewLabels(joints.astype(np.float32), scores.astype(np.float32), visible)


def convert_detection(
    detection: Detection, layout: str, variant: str, image_size: tuple[int, int] | None = None
) -> ViewLabels:
    """Source detection -> Panoptic-15 labels in the ``"soft"`` (raw) or ``"hard"`` variant."""
    kp = np.asarray(detection.keypoints, dtype=np.float64).reshape(-1, len(LAYOUTS[layout]), 3)
    if variant == "hard":
        kp = harden(kp, detection.boxes_xywh, image_size)
    elif variant != "soft":
        raise ValueError(f"variant must be 'soft' or 'hard', got '{variant}'")
    return to_panoptic15(kp, layout)
