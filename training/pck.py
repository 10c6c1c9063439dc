"""2D accuracy of a multi-person estimator: PCK against COCO-style annotations (any of four layouts).

Protocol (the one ``../shared/data/real_2d_samples/README.md`` states): each annotated person is
matched to the nearest predicted person (mean distance over its labelled joints); a missed person
counts all its labelled joints wrong; a joint is correct when within ``alpha`` x the longer side of
the person's annotated box. COCO and OCHuman use all 17 joints; CrowdPose and AI Challenger their 12
limb joints, mapped to COCO-17.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

# Annotation layout (by keypoint count and dataset) → COCO-17 index of each annotated joint (-1: unused).
CROWDPOSE14_TO_COCO17 = (5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, -1, -1)
AIC14_TO_COCO17 = (6, 8, 10, 5, 7, 9, 12, 14, 16, 11, 13, 15, -1, -1)


@dataclass
class PckResult:
    """Correct / labelled joint counts, overall and per source."""

    correct: int = 0
    total: int = 0
    people: int = 0
    missed_people: int = 0
    per_source: dict[str, list[int]] = field(default_factory=dict)  # name -> [correct, total]

    @property
    def pck(self) -> float:
        return self.correct / self.total if self.total else float("nan")

    def to_dict(self) -> dict:
        return {
            "pck": round(self.pck, 4),
            "correct": self.correct,
            "total": self.total,
            "people": self.people,
            "missed_people": self.missed_people,
            "per_source": {k: round(c / t, 4) if t else None for k, (c, t) in self.per_source.items()},
        }


def joint_map_for(annotation_file: Path, num_keypoints: int) -> tuple[int, ...]:
    """COCO-17 index per annotated joint for this annotation file's layout."""
    if num_keypoints == 17:
        return tuple(range(17))
    if num_keypoints == 14:
        return AIC14_TO_COCO17 if "aic" in Path(annotation_file).name.lower() else CROWDPOSE14_TO_COCO17
    raise ValueError(f"{annotation_file}: unsupported keypoint count {num_keypoints} (17 COCO, 14 CrowdPose/AIC)")


def score_image(
    truth: list[np.ndarray],
    boxes: list[np.ndarray],
    predicted: np.ndarray,
    joint_map: tuple[int, ...],
    alpha: float,
    result: PckResult,
    source: str,
) -> None:
    """Add one image's people to ``result``.

    Args:
        truth: per annotated person (K,3) x, y, visibility (0 = not labelled).
        boxes: per person its box (4,) x, y, w, h.
        predicted: (N,17,3) COCO-17 predictions x, y, score (score <= 0: absent).
        joint_map: COCO-17 index of each annotated joint (-1 = not scored).
    """
    cols = np.array([j for j in joint_map if j >= 0])
    rows = np.array([i for i, j in enumerate(joint_map) if j >= 0])
    counts = result.per_source.setdefault(source, [0, 0])
    for kp, box in zip(truth, boxes):
        labelled = kp[rows, 2] > 0
        n = int(labelled.sum())
        if n == 0:
            continue
        result.people += 1
        result.total += n
        counts[1] += n
        if not len(predicted):
            result.missed_people += 1
            continue
        gt = kp[rows][labelled, :2]  # (n,2)
        pr = predicted[:, cols][:, labelled, :2]  # (N,n,2)
        dist = np.linalg.norm(pr - gt[None], axis=-1)  # (N,n)
        best = int(np.argmin(dist.mean(1)))
        ok = dist[best] <= alpha * max(box[2], box[3])
        ok &= predicted[best, cols][labelled, 2] > 0
        result.correct += int(ok.sum())
        counts[0] += int(ok.sum())


def load_annotations(annotation_file: Path) -> tuple[list[dict], dict[int, list[dict]]]:
    """(images, annotations grouped by image id) of a COCO-style file."""
    data = json.loads(Path(annotation_file).read_text())
    by_image: dict[int, list[dict]] = {}
    for ann in data["annotations"]:
        by_image.setdefault(ann["image_id"], []).append(ann)
    return data["images"], by_image


def pck_on_folder(root: Path, predict, alpha: float = 0.2) -> PckResult:
    """PCK of ``predict(image_path) -> (N,17,3)`` on every ``*/*.json`` annotation set under ``root``."""
    result = PckResult()
    for ann_file in sorted(Path(root).glob("*/*.json")):
        images, by_image = load_annotations(ann_file)
        for image in images:
            anns = by_image.get(image["id"], [])
            if not anns:
                continue
            kps = [np.asarray(a["keypoints"], dtype=np.float64).reshape(-1, 3) for a in anns]
            jmap = joint_map_for(ann_file, kps[0].shape[0])
            pred = np.asarray(predict(ann_file.parent / image["file_name"]), dtype=np.float64).reshape(-1, 17, 3)
            score_image(
                kps,
                [np.asarray(a["bbox"], dtype=np.float64) for a in anns],
                pred,
                jmap,
                alpha,
                result,
                ann_file.parent.name,
            )
    return result
