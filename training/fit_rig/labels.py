"""Stage ``labels`` of fit-rig: the footage's pseudo 2D people and the train / held-out split.

The estimator runs through :func:`training.pseudo_labels.detect.generate` (the same files and
resume cache as ``selfpose3d pseudo-labels --detector movenet``, under ``OUT/labels/pseudo_*``).
Frames are read back from its raw COCO-17 cache, so the engines get exactly what the live route
gets: COCO-17 for the triangulator, Panoptic-15 (``keypoints_to_panoptic15``, as
``Person2D.to_panoptic15``) for the learned nets.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from calib.common.errors import DatasetError
from calib.common.keypoint_maps import keypoints_to_panoptic15
from training.fit_rig.config import LabelsConfig
from training.pseudo_labels.detect import generate, output_paths

DetectFn = Callable[[np.ndarray], "tuple[np.ndarray, np.ndarray]"]  # image -> (N,17,3) keypoints, (N,) scores


@dataclass
class FrameSet:
    """One synchronised frame of the footage with the estimator's people.

    Attributes:
        key: (sequence, frame).
        coco17: per view (N,17,3) x, y px, score (the triangulator's input).
        p15: per view (N,15,3) Panoptic-15 (the learned nets' input and the validation reference).
    """

    key: tuple[str, int]
    coco17: list[np.ndarray]
    p15: list[np.ndarray]

    @property
    def views_with_people(self) -> int:
        return sum(len(p) > 0 for p in self.p15)


@dataclass
class LabelledFootage:
    """The footage's frames split into training and held-out validation frames."""

    train: list[FrameSet]
    val: list[FrameSet]


def paths(out: Path) -> dict[str, Path]:
    """The stage's files under ``out`` (the run folder)."""
    stem = out / "labels" / "pseudo"
    return {**output_paths(stem), "prefix": stem, "split": out / "labels" / "split.json"}


def run_labels(footage, rig, out: Path, cfg: LabelsConfig, detect: DetectFn, source_name: str, progress=None) -> dict:
    """Pseudo labels (resumable through the estimator's cache) and the split record. The caller writes
    it to ``split.json`` (atomically, once): its presence marks the stage done."""
    p = paths(out)
    summary = generate(
        footage,
        detect,
        p["prefix"],
        every=cfg.every,
        max_frames=cfg.max_frames or None,
        source_name=source_name,
        progress=progress,
    )
    frames = read_frames(p["detections"], rig)
    usable = [f for f in frames if f.views_with_people >= 2]
    if len(usable) < cfg.min_frames_with_people:
        raise DatasetError(
            f"{footage.path}: only {len(usable)} of {len(frames)} frames have a person in >= 2 views "
            f"(need {cfg.min_frames_with_people}): record people inside the volume, seen by several cameras "
            "(or lower --set labels.min_frames_with_people=N)"
        )
    keys = [f.key for f in frames]
    val = [k for i, k in enumerate(keys) if i % cfg.val_every == 0]
    held = set(val)
    record = {
        "rig": rig.name,
        "cameras": list(rig.names),
        "frames": len(frames),
        "frames_with_people": len(usable),
        "train": [list(k) for k in keys if k not in held],
        "val": [list(k) for k in val],
        "estimator": source_name,
        "estimator_seconds_this_run": summary["seconds_this_run"],
        "people_per_frame_per_camera": {c: v["people_per_frame"] for c, v in summary["cameras"].items()},
    }
    return record


def read_frames(detections_jsonl: Path, rig) -> list[FrameSet]:
    """The synchronised frames of the estimator's cache, checked against ``rig``.

    Raises:
        DatasetError: the labels name other cameras, another image size or miss views (labels
            made for another rig or footage).
    """
    per_key: dict[tuple[str, int], dict[str, dict]] = {}
    for line in detections_jsonl.read_text().splitlines():
        try:
            rec = json.loads(line)
        except ValueError:
            break
        per_key.setdefault((rec["sequence"], int(rec["frame"])), {})[rec["camera"]] = rec
    names = list(rig.names)
    seen = sorted({c for views in per_key.values() for c in views})
    if set(seen) - set(names):  # fewer is a run cut short (resumed); others are another rig's
        raise DatasetError(
            f"{detections_jsonl}: pseudo labels for cameras {seen}, but rig '{rig.name}' has {names}: they were "
            "made for another rig; use another --out (or delete that folder)"
        )
    frames = []
    for key in sorted(per_key):
        views = per_key[key]
        coco, p15 = [], []
        for cam in rig.cameras:
            rec = views.get(cam.name)
            if rec is None or rec.get("undecodable"):
                coco.append(np.zeros((0, 17, 3), np.float32))
                p15.append(np.zeros((0, 15, 3), np.float32))
                continue
            if tuple(rec["size"]) != (cam.width, cam.height):
                raise DatasetError(
                    f"{detections_jsonl}: camera '{cam.name}' frame {key[1]} is {rec['size'][0]}x{rec['size'][1]} px "
                    f"but the rig calibrates {cam.width}x{cam.height}: labels made for another rig or footage; "
                    "use another --out"
                )
            kp = np.asarray(rec["keypoints"], np.float32).reshape(-1, 17, 3)
            coco.append(kp)
            p15.append(
                keypoints_to_panoptic15(kp, "coco17").astype(np.float32)
                if len(kp)
                else np.zeros((0, 15, 3), np.float32)
            )
        frames.append(FrameSet(key, coco, p15))
    return frames


def load_split(out: Path, rig) -> LabelledFootage:
    """The frames of a finished labels stage, split as ``split.json`` says."""
    p = paths(out)
    split = json.loads(p["split"].read_text())
    if split["cameras"] != list(rig.names):
        raise DatasetError(
            f"{p['split']}: made for rig '{split['rig']}' cameras {split['cameras']}, not '{rig.name}' "
            f"{list(rig.names)}; use another --out"
        )
    frames = {f.key: f for f in read_frames(p["detections"], rig)}
    val = [frames[(s, int(f))] for s, f in split["val"] if (s, int(f)) in frames]
    train = [frames[(s, int(f))] for s, f in split["train"] if (s, int(f)) in frames]
    return LabelledFootage(train, val)
