"""Simulated off-the-shelf 2D pose detector (the pseudo-label source for synthetic training).

It imitates what SelfPose3d's detector + HRNet pipeline (SPEC §4.7) gives on real images:
pixel noise that grows with occlusion and scales with the person's size, missed joints (a wrong
location with a score below the hard threshold), left/right limb swaps, occluded joints that
snap to the occluding person's joint, missed people, false-positive people, and confidences.

Two variants, from the same random draws:

* ``soft``: every joint of every detection with its raw score (visible = score > 0, i.e.
  almost all), like SPEC §4.7 "soft";
* ``hard``: SPEC §4.7's rule: a joint is kept iff its score >= ``hard_threshold`` and it lies
  inside the image-clipped box; a person keeps joints only if more than 3 pass the score test
  and at least 3 are kept, otherwise all its joints are zeroed (the entry stays, as upstream).
  Dropped joints have position 0 and score 0.

Neck and mid-hip are derived COCO-style (SPEC §4.7 step 6) from the shoulders / hips (mean of
both if both are available, else the single one) unless ``derive_neck_hip`` is False.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Sequence

import numpy as np

from calib.camera import CameraRig

# Per-joint outcome codes (Detections.outcome).
OK, MISSED, SWAPPED, WRONG_PERSON, FALSE_POSITIVE, DERIVED = 0, 1, 2, 3, 4, 5
_ARM_L, _ARM_R = (3, 4, 5), (9, 10, 11)
_LEG_L, _LEG_R = (6, 7, 8), (12, 13, 14)
_NECK, _MID_HIP, _L_SHO, _R_SHO, _L_HIP, _R_HIP = 0, 2, 3, 9, 6, 12


@dataclass(frozen=True)
class DetectorParams:
    """Error model of the simulated detector.

    Attributes:
        noise_px: per-axis std of a clearly visible joint's position at ``reference_height_px``.
            The default (1.85 % of the box height) is calibrated on real data: OpenPose on Shelf
            lies 2.1 % of the person's height (per axis, median-based) from the mocap joints.
        noise_occluded_px: per-axis std for a joint hidden by another person.
        reference_height_px: noise scales with (person box height / this); None = absolute px.
        miss_rate: probability that a visible joint is missed.
        miss_rate_occluded: probability that an occluded joint is missed.
        swap_rate: probability, per person and per limb pair (arms, legs), of a left/right swap.
        wrong_person_rate: probability that an occluded (not missed) joint is placed on the
            occluding person's same joint.
        person_miss_rate: probability that a detectable person is not detected at all.
        false_positives_per_view: mean (Poisson) number of ghost people per view.
        min_visible_joints: fewer visible joints than this: the person is not detected.
        min_height_px: smaller box heights: the person is not detected.
        score_visible: (mean, std) of a visible joint's confidence.
        score_occluded: (mean, std) of an occluded or wrong-person joint's confidence.
        hard_threshold: score threshold of the hard variant (missed joints score below it).
        derive_neck_hip: neck / mid-hip from shoulders / hips (COCO -> Panoptic-15).
        joint_noise_scale: (15,) per-joint factor on the noise (Panoptic-15 order). The default
            follows the relative COCO keypoint sigmas: hips are the least precisely located,
            the nose the most. All ones gives the same noise for every joint.
        bias_px: (dx, dy) systematic offset of every detected joint at ``reference_height_px``
            (real detectors sit a few pixels off the mocap joint centres; e.g. (0, -2)).
    """

    noise_px: float = 3.7
    noise_occluded_px: float = 10.0
    reference_height_px: float | None = 200.0
    miss_rate: float = 0.03
    miss_rate_occluded: float = 0.3
    swap_rate: float = 0.03
    wrong_person_rate: float = 0.25
    person_miss_rate: float = 0.02
    false_positives_per_view: float = 0.1
    min_visible_joints: int = 4
    min_height_px: float = 16.0
    score_visible: tuple[float, float] = (0.85, 0.08)
    score_occluded: tuple[float, float] = (0.5, 0.15)
    hard_threshold: float = 0.05
    derive_neck_hip: bool = True
    joint_noise_scale: tuple[float, ...] = (
        1.0,
        0.45,
        1.3,
        1.0,
        0.9,
        0.8,
        1.3,
        1.1,
        1.1,
        1.0,
        0.9,
        0.8,
        1.3,
        1.1,
        1.1,
    )
    bias_px: tuple[float, float] = (0.0, 0.0)

    def __post_init__(self) -> None:
        from calib.configkit import require

        for name in ("miss_rate", "miss_rate_occluded", "swap_rate", "wrong_person_rate", "person_miss_rate"):
            require(
                0.0 <= getattr(self, name) <= 1.0, f"detector.{name}", f"must be in [0, 1], got {getattr(self, name)}"
            )
        require(self.noise_px >= 0 and self.noise_occluded_px >= 0, "detector.noise_px", "noise must be >= 0")
        require(self.false_positives_per_view >= 0, "detector.false_positives_per_view", "must be >= 0")
        require(0.0 < self.hard_threshold < 1.0, "detector.hard_threshold", "must be in (0, 1)")
        require(
            len(self.joint_noise_scale) == 15 and min(self.joint_noise_scale) >= 0,
            "detector.joint_noise_scale",
            f"needs 15 non-negative factors (Panoptic-15 order), got {self.joint_noise_scale}",
        )
        require(
            self.reference_height_px is None or self.reference_height_px > 0,
            "detector.reference_height_px",
            "must be positive or null",
        )


def load_detector_params(path: str | Path, overrides: Sequence[str] = ()) -> DetectorParams:
    """An error model from YAML (e.g. ``configs/estimators/movenet_error_model.yaml``, measured on real
    photos by ``benchmarks/estimator_error_model.py``); unknown keys and bad values are ConfigErrors
    naming the file and field."""
    from calib.configkit import load

    return load(DetectorParams, path, overrides)


@dataclass(frozen=True)
class Detections:
    """One view's detections (N people, Panoptic-15 joints).

    Attributes:
        joints_2d: (N,15,2) px in the original image (0 where dropped, hard variant).
        scores: (N,15) joint confidences in [0, 1] (0 where dropped).
        visible: (N,15) bool, the joint is a label (soft: score > 0; hard: kept).
        person_ids: (N,) int64 true person id, -1 for false positives.
        boxes_xyxy: (N,4) person boxes (clipped to the image).
        box_scores: (N,) detector box confidences.
        outcome: (N,15) int8 simulation outcome per joint (OK, MISSED, SWAPPED, WRONG_PERSON,
            FALSE_POSITIVE, DERIVED) — for analysis and tests; training must not use it.
    """

    joints_2d: np.ndarray
    scores: np.ndarray
    visible: np.ndarray
    person_ids: np.ndarray
    boxes_xyxy: np.ndarray
    box_scores: np.ndarray
    outcome: np.ndarray

    def __len__(self) -> int:
        return len(self.person_ids)


def _box(uv: np.ndarray, width: int, height: int) -> tuple[np.ndarray, float]:
    """Padded person box from 2D joints (head room above); returns (clipped xyxy, unclipped height)."""
    lo, hi = uv.min(0), uv.max(0)
    w, h = hi - lo
    size = max(h, 0.5 * w, 1.0)
    x0, x1 = lo[0] - 0.15 * max(w, 0.3 * size), hi[0] + 0.15 * max(w, 0.3 * size)
    y0, y1 = lo[1] - 0.18 * size, hi[1] + 0.08 * size
    box = np.array([max(x0, 0.0), max(y0, 0.0), min(x1, width - 1.0), min(y1, height - 1.0)])
    return box, y1 - y0


def _scores(rng: np.random.Generator, n: int, mean_std: tuple[float, float], lo: float) -> np.ndarray:
    return np.clip(rng.normal(mean_std[0], mean_std[1], size=n), lo, 1.0)


def _person(
    rng: np.random.Generator,
    truth,
    v: int,
    p: int,
    params: DetectorParams,
    width: int,
    height: int,
) -> tuple | None:
    """Soft detection of slot p in view v, or None if the detector misses the person."""
    vis = truth.visible[v, p]
    front = truth.depth_mm[v, p] > 0
    if vis.sum() < params.min_visible_joints or not front.any():
        return None
    uv_true = truth.joints_2d[v, p]
    box, full_h = _box(uv_true[front], width, height)
    if full_h < params.min_height_px or box[2] <= box[0] or box[3] <= box[1]:
        return None
    if rng.random() < params.person_miss_rate:
        return None
    scale = full_h / params.reference_height_px if params.reference_height_px else 1.0
    occluded = truth.in_image[v, p] & ~vis
    miss_p = np.where(vis, params.miss_rate, np.where(occluded, params.miss_rate_occluded, 1.0))
    missed = rng.random(15) < miss_p
    joint_scale = np.asarray(params.joint_noise_scale)
    sigma = np.where(vis, params.noise_px, params.noise_occluded_px) * scale * joint_scale
    uv = uv_true + rng.normal(size=(15, 2)) * sigma[:, None] + np.asarray(params.bias_px) * scale
    score = np.where(
        vis,
        _scores(rng, 15, params.score_visible, params.hard_threshold + 0.01),
        _scores(rng, 15, params.score_occluded, params.hard_threshold + 0.01),
    )
    outcome = np.zeros(15, np.int8)
    # Occluded joints may snap onto the occluder's same joint.
    occ = truth.occluder[v, p]
    wrong = occluded & ~missed & (occ >= 0) & (rng.random(15) < params.wrong_person_rate)
    for j in np.flatnonzero(wrong):
        uv[j] = truth.joints_2d[v, occ[j], j] + rng.normal(size=2) * params.noise_px * scale * joint_scale[j]
        outcome[j] = WRONG_PERSON
    # Missed: anywhere in the box, with a score under the hard threshold.
    n_miss = int(missed.sum())
    uv[missed] = box[:2] + rng.random((n_miss, 2)) * (box[2:] - box[:2])
    score[missed] = rng.uniform(0.0, params.hard_threshold, size=n_miss)
    outcome[missed] = MISSED
    for left, right in ((_ARM_L, _ARM_R), (_LEG_L, _LEG_R)):
        if rng.random() < params.swap_rate:
            li, ri = list(left), list(right)
            uv[li + ri] = uv[ri + li]
            score[li + ri] = score[ri + li]
            outcome[li + ri] = np.where(outcome[ri + li] == OK, SWAPPED, outcome[ri + li])
    return uv, score, outcome, box, float(rng.uniform(0.75, 1.0))


def _false_positive(rng: np.random.Generator, truth, params: DetectorParams, width: int, height: int) -> tuple:
    """A ghost person: a true pose shape (any view) moved and rescaled, with low scores."""
    shapes = [
        truth.joints_2d[v, p]
        for v in range(truth.joints_2d.shape[0])
        for p in range(truth.joints_2d.shape[1])
        if truth.in_image[v, p].all()
    ]
    if shapes:
        shape = shapes[int(rng.integers(len(shapes)))]
    else:  # a canonical standing figure, nose up
        shape = np.array(
            [
                [0, -60],
                [3, -80],
                [0, 0],
                [-18, -58],
                [-22, -30],
                [-24, -5],
                [-10, 0],
                [-11, 40],
                [-12, 80],
                [18, -58],
                [22, -30],
                [24, -5],
                [10, 0],
                [11, 40],
                [12, 80],
            ],
            float,
        )
    lo, hi = shape.min(0), shape.max(0)
    h = rng.uniform(0.2, 0.6) * height
    unit = (shape - (lo + hi) / 2) / max(hi[1] - lo[1], 1.0)
    center = np.array([rng.uniform(0.1, 0.9) * width, rng.uniform(0.3, 0.7) * height])
    uv = center + unit * h + rng.normal(size=(15, 2)) * params.noise_occluded_px
    score = rng.uniform(0.05, 0.45, size=15)
    box, _ = _box(uv, width, height)
    return uv, score, np.full(15, FALSE_POSITIVE, np.int8), box, float(rng.uniform(0.7, 0.8))


def _derive_neck_hip(uv: np.ndarray, score: np.ndarray, keep: np.ndarray, outcome: np.ndarray) -> None:
    """In place: neck / mid-hip = mean of the kept shoulders / hips (or the single kept one)."""
    for out, a, b in ((_NECK, _L_SHO, _R_SHO), (_MID_HIP, _L_HIP, _R_HIP)):
        both = keep[:, a] & keep[:, b]
        one_a = keep[:, a] & ~keep[:, b]
        one_b = keep[:, b] & ~keep[:, a]
        uv[:, out] = np.where(
            both[:, None],
            (uv[:, a] + uv[:, b]) / 2,
            np.where(one_a[:, None], uv[:, a], np.where(one_b[:, None], uv[:, b], 0.0)),
        )
        score[:, out] = np.where(
            both, (score[:, a] + score[:, b]) / 2, np.where(one_a, score[:, a], np.where(one_b, score[:, b], 0.0))
        )
        keep[:, out] = both | one_a | one_b
        outcome[:, out] = np.where(outcome[:, out] == FALSE_POSITIVE, FALSE_POSITIVE, DERIVED)


def simulate_detections(
    truth,
    rig: CameraRig,
    params: DetectorParams,
    seed,
    variant: Literal["soft", "hard"] = "soft",
) -> list[Detections]:
    """Detections of every view of one frame.

    Args:
        truth: the frame's :class:`capture.synthetic.world.FrameTruth`.
        rig: the cameras (image sizes).
        params: error model.
        seed: int or sequence of ints seeding this frame's draws (soft and hard share them).
        variant: "soft" or "hard" (see module docstring).
    """
    if variant not in ("soft", "hard"):
        raise ValueError(f"simulate_detections: variant must be 'soft' or 'hard', got {variant!r}")
    rng = np.random.default_rng(seed)
    out = []
    for v, cam in enumerate(rig):
        rows, ids = [], []
        for p in np.flatnonzero(truth.present):
            det = _person(rng, truth, v, int(p), params, cam.width, cam.height)
            if det is not None:
                rows.append(det)
                ids.append(int(truth.ids[p]))
        for _ in range(int(rng.poisson(params.false_positives_per_view))):
            rows.append(_false_positive(rng, truth, params, cam.width, cam.height))
            ids.append(-1)
        out.append(_assemble(rows, ids, params, variant))
    return out


def _assemble(rows: list[tuple], ids: list[int], params: DetectorParams, variant: str) -> Detections:
    n = len(rows)
    if n == 0:
        z = np.zeros
        return Detections(
            z((0, 15, 2)), z((0, 15)), z((0, 15), bool), z(0, np.int64), z((0, 4)), z(0), z((0, 15), np.int8)
        )
    uv = np.stack([r[0] for r in rows])
    score = np.stack([r[1] for r in rows])
    outcome = np.stack([r[2] for r in rows])
    boxes = np.stack([r[3] for r in rows])
    box_scores = np.array([r[4] for r in rows])
    if variant == "hard":
        passed = score >= params.hard_threshold
        inside = (
            (uv[..., 0] >= boxes[:, None, 0])
            & (uv[..., 0] <= boxes[:, None, 2])
            & (uv[..., 1] >= boxes[:, None, 1])
            & (uv[..., 1] <= boxes[:, None, 3])
        )
        keep = passed & inside
        if params.derive_neck_hip:  # the test counts COCO joints only
            coco = np.ones(15, bool)
            coco[[_NECK, _MID_HIP]] = False
            passed, keep = passed & coco, keep & coco
        enough = (passed.sum(1) > 3) & (keep.sum(1) >= 3)
        keep &= enough[:, None]
    else:
        keep = score > 0
    if params.derive_neck_hip:
        _derive_neck_hip(uv, score, keep, outcome)
    uv = np.where(keep[..., None], uv, 0.0)
    score = np.where(keep, score, 0.0)
    return Detections(uv, score, keep, np.array(ids, np.int64), boxes, box_scores, outcome)
