"""On-disk prediction files and metrics JSON (the formats fixed by issue 6).

Prediction file (NPZ)::

    poses      (F,M,J,C) float, C >= 3: x, y, z in world mm (+ optional columns, see below)
    frame_ids  (F,) int     dataset frame number of each row
    valid      (F,M) bool   slot holds a real prediction (if absent: flag column 3 >= 0 when
                            C >= 5, else all)
    scores     (F,M) float  optional; default: column 4 when C >= 5 (upstream layout
                            x,y,z,flag,score), column 3 when C == 4 (wire layout x,y,z,score), else 1
    roots      (F,M,3) float optional root proposals (mm) for root evaluation
    layout     ()  str      "panoptic15" (default) or "coco17"
    sequences  (F,) str     optional sequence name of each row (Panoptic: frame ids repeat
                            across sequences)

Metrics JSON: a flat object with at least ``mpjpe_mm``, ``ap25`` … ``ap150``, ``recall500``
(Panoptic) or ``pcp_average`` and per-actor entries (Shelf/Campus); non-finite numbers are written
as ``null``.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from training.errors import DatasetError

LAYOUTS = ("panoptic15", "coco17")


@dataclass(frozen=True, eq=False)
class Predictions:
    """Per-frame multi-person predictions (see module docstring for the file layout).

    Attributes:
        poses: (F,M,J,C) world mm in the first 3 columns.
        frame_ids: (F,) int.
        valid: (F,M) bool.
        scores: (F,M) float.
        roots: (F,M,3) or None.
        layout: joint layout name.
        sequences: (F,) str or None.
    """

    poses: np.ndarray
    frame_ids: np.ndarray
    valid: np.ndarray
    scores: np.ndarray
    roots: np.ndarray | None = None
    layout: str = "panoptic15"
    sequences: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.poses.ndim != 4 or self.poses.shape[-1] < 3:
            raise DatasetError(f"predictions: 'poses' must be (F,M,J,3+), got {self.poses.shape}")
        F, M = self.poses.shape[:2]
        for name, shape in (("frame_ids", (F,)), ("valid", (F, M)), ("scores", (F, M))):
            if getattr(self, name).shape != shape:
                raise DatasetError(f"predictions: '{name}' must have shape {shape}, got {getattr(self, name).shape}")
        if self.roots is not None and self.roots.shape[:2] != (F, M):
            raise DatasetError(f"predictions: 'roots' must be (F,M,3), got {self.roots.shape}")
        if self.layout not in LAYOUTS:
            raise DatasetError(f"predictions: unknown layout '{self.layout}'; use one of {LAYOUTS}")
        if self.sequences is not None and self.sequences.shape != (F,):
            raise DatasetError(f"predictions: 'sequences' must have shape {(F,)}, got {self.sequences.shape}")

    def _rows(self, frame_id: int, sequence: str | None) -> np.ndarray:
        rows = self.frame_ids == frame_id
        if sequence is not None and self.sequences is not None:
            rows &= self.sequences == sequence
        rows = np.flatnonzero(rows)
        if rows.size > 1:
            raise DatasetError(f"predictions: frame {frame_id} appears {rows.size} times; add a 'sequences' array")
        return rows

    def frame(self, frame_id: int, sequence: str | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Valid poses (M',J,3) and scores (M',) of a frame (empty if the frame is absent).

        ``sequence`` selects among rows with the same frame id when the file has ``sequences``.
        """
        rows = self._rows(frame_id, sequence)
        J = self.poses.shape[2]
        if not rows.size:
            return np.zeros((0, J, 3)), np.zeros(0)
        r = rows[0]
        keep = self.valid[r]
        return self.poses[r, keep, :, :3], self.scores[r, keep]

    def frame_roots(self, frame_id: int, sequence: str | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Valid root proposals (M',3) and scores of a frame (requires ``roots``)."""
        if self.roots is None:
            raise DatasetError("predictions: this file has no 'roots' array (root evaluation needs it)")
        rows = self._rows(frame_id, sequence)
        if not rows.size:
            return np.zeros((0, 3)), np.zeros(0)
        keep = self.valid[rows[0]]
        return self.roots[rows[0], keep, :3], self.scores[rows[0], keep]


def default_scores(poses: np.ndarray) -> np.ndarray:
    """(F,M) scores implied by the column layout of ``poses`` (F,M,J,C)."""
    C = poses.shape[-1]
    if C >= 5:
        return poses[:, :, 0, 4].astype(np.float64)
    if C == 4:
        return poses[:, :, 0, 3].astype(np.float64)
    return np.ones(poses.shape[:2])


def predictions_from_flat(
    poses: np.ndarray, frame_ids: np.ndarray, scores: np.ndarray | None = None, layout: str = "panoptic15"
) -> Predictions:
    """Group a flat list of poses (N,J,C) with their frame ids (N,) into :class:`Predictions`."""
    poses = np.asarray(poses, dtype=np.float64)
    frame_ids = np.asarray(frame_ids).astype(np.int64)
    unique, inverse, counts = np.unique(frame_ids, return_inverse=True, return_counts=True)
    F, M = unique.size, int(counts.max()) if counts.size else 0
    out = np.zeros((F, M) + poses.shape[1:])
    valid = np.zeros((F, M), bool)
    score = np.zeros((F, M))
    flat_scores = np.ones(len(poses)) if scores is None else np.asarray(scores, np.float64)
    slot = np.zeros(F, int)
    for n, f in enumerate(inverse):
        out[f, slot[f]] = poses[n]
        valid[f, slot[f]] = True
        score[f, slot[f]] = flat_scores[n]
        slot[f] += 1
    return Predictions(out, unique, valid, score, None, layout)


def save_predictions(path: str | Path, predictions: Predictions) -> Path:
    """Write a prediction NPZ."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays: dict[str, Any] = {
        "poses": predictions.poses,
        "frame_ids": predictions.frame_ids,
        "valid": predictions.valid,
        "scores": predictions.scores,
        "layout": np.array(predictions.layout),
    }
    if predictions.roots is not None:
        arrays["roots"] = predictions.roots
    if predictions.sequences is not None:
        arrays["sequences"] = np.asarray(predictions.sequences, dtype=str)
    with open(path, "wb") as fh:
        np.savez_compressed(fh, **arrays)
    return path


def load_npz(path: str | Path, what: str) -> Any:
    """``np.load`` of an NPZ (no pickles); an unreadable file is a DatasetError naming it and ``what`` it holds."""
    try:
        return np.load(Path(path), allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise DatasetError(f"{path}: cannot read {what} file ({exc})") from None


def load_predictions(path: str | Path) -> Predictions:
    """Read a prediction NPZ.

    Also accepts the flat form ``poses (N,J,C)`` + ``frame_ids (N,)`` (e.g. the Shelf fixture
    ``pred_4dassoc*.npz``): rows are grouped by frame and all are valid.
    """
    path = Path(path)
    data = load_npz(path, "prediction")
    with data:
        for key in ("poses", "frame_ids"):
            if key not in data.files:
                raise DatasetError(f"{path}: prediction file lacks '{key}' (has {data.files})")
        poses = np.asarray(data["poses"], dtype=np.float64)
        layout = (
            str(data["layout"]) if "layout" in data.files else ("coco17" if poses.shape[-2] == 17 else "panoptic15")
        )
        if layout not in LAYOUTS:
            raise DatasetError(f"{path}: field 'layout' = '{layout}', expected one of {LAYOUTS}")
        if poses.ndim == 3:
            scores = data["scores"] if "scores" in data.files else None
            return predictions_from_flat(poses, data["frame_ids"], scores, layout)
        if poses.ndim != 4:
            raise DatasetError(f"{path}: field 'poses' must be (F,M,J,3+) or (N,J,3+), got {poses.shape}")
        if "valid" in data.files:
            valid = np.asarray(data["valid"], bool)
        elif poses.shape[-1] >= 5:  # upstream layout: flag column 3 is 0 (kept) or -1
            valid = poses[:, :, 0, 3] >= 0
        else:
            valid = np.ones(poses.shape[:2], bool)
        scores = np.asarray(data["scores"], np.float64) if "scores" in data.files else default_scores(poses)
        roots = np.asarray(data["roots"], np.float64) if "roots" in data.files else None
        sequences = np.asarray(data["sequences"]).astype(str) if "sequences" in data.files else None
        try:
            return Predictions(
                poses, np.asarray(data["frame_ids"]).astype(np.int64), valid, scores, roots, layout, sequences
            )
        except DatasetError as exc:
            raise DatasetError(f"{path}: {exc}") from None


def _json_safe(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, np.ndarray):
        return _json_safe(value.tolist())
    if isinstance(value, (np.floating, float)):
        return float(value) if math.isfinite(float(value)) else None
    if isinstance(value, np.integer):
        return int(value)
    return value


def save_metrics(path: str | Path, metrics: Mapping[str, Any]) -> Path:
    """Write metrics as JSON (numpy values converted, inf/NaN as null)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(_json_safe(metrics), indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return path
