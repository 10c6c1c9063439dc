"""Pseudo labels from a user's footage with a bundled 2D estimator (SelfPose3d's first step).

Writes, for an output prefix ``OUT``:
* ``OUT_detections.jsonl``: the estimator's raw COCO-17 people per image, one line per image, flushed
  as it goes: it is also the resume cache (a re-run skips the images already in it; a truncated last
  line from a crash is ignored);
* ``OUT_soft.npz`` / ``OUT_hard.npz``: Panoptic-15 pseudo labels in the project's format
  (:mod:`training.pseudo_labels.store`), SelfPose3d's soft (raw scores) and hard (thresholded) variants;
* ``OUT_summary.json``: per camera frames, undecodable frames (named), people, mean person score.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from training.pseudo_labels.footage import Footage
from training.pseudo_labels.mapping import harden, to_panoptic15
from training.pseudo_labels.store import LabelEntry, PseudoLabelSet

# MoveNet's keypoint scores are calibrated differently from HRNet's (SPEC's 0.05): a joint of the hard
# variant needs this score (docs/estimator.md, the error model: below it most joints are wrong).
HARD_MIN_SCORE_MOVENET = 0.3


@dataclass
class CameraCounts:
    frames: int = 0
    undecodable: int = 0
    people: int = 0
    person_score_sum: float = 0.0
    bad_frames: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {
            "frames": self.frames,
            "undecodable": self.undecodable,
            "people": self.people,
            "people_per_frame": round(self.people / max(self.frames - self.undecodable, 1), 3),
            "mean_person_score": round(self.person_score_sum / max(self.people, 1), 4),
            "undecodable_frames": self.bad_frames[:50],
        }


def output_paths(out: str | Path) -> dict[str, Path]:
    """The files a run with output prefix ``out`` writes (``x.npz`` and ``x`` name the same prefix)."""
    out = Path(out)
    stem = out.with_suffix("") if out.suffix == ".npz" else out
    return {
        k: stem.parent / f"{stem.name}_{k}{ext}"
        for k, ext in (("detections", ".jsonl"), ("soft", ".npz"), ("hard", ".npz"), ("summary", ".json"))
    }


def _read_cache(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    records = []
    for line in path.read_text().splitlines():
        try:
            records.append(json.loads(line))
        except ValueError:
            break  # a line cut by a crash: that image is simply done again
    return records


def _entry(rec: dict, variant: str, hard_min_score: float) -> LabelEntry:
    kp = np.asarray(rec["keypoints"], dtype=np.float64).reshape(-1, 17, 3)
    size = tuple(rec["size"])
    if variant == "hard":
        kp = harden(kp, None, size, min_score=hard_min_score)
    return LabelEntry(
        rec["sequence"], int(rec["frame"]), rec["camera"], to_panoptic15(kp, "coco17"), rec["source"], size
    )


def generate(
    footage: Footage,
    detect: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]],
    out: str | Path,
    *,
    every: int = 1,
    max_frames: int | None = None,
    hard_min_score: float = HARD_MIN_SCORE_MOVENET,
    source_name: str = "movenet",
    progress: Callable[[int, int, str], None] | None = None,
) -> dict:
    """Run ``detect(image_bgr) -> (keypoints (N,17,3), scores (N,))`` over ``footage``; write the files.

    Returns:
        the summary dict (also written to ``OUT_summary.json``).
    """
    paths = output_paths(out)
    paths["detections"].parent.mkdir(parents=True, exist_ok=True)
    cached = _read_cache(paths["detections"])
    done = {(r["sequence"], int(r["frame"]), r["camera"]) for r in cached}
    every = max(1, every)
    total = sum(min(-(-footage.frame_count(s) // every), max_frames or 10**12) for s in footage.streams)
    counts: dict[str, CameraCounts] = {}
    records = list(cached)
    t0 = time.perf_counter()
    n = len(done)
    if cached:  # rewrite the cache without a line a crash may have cut
        paths["detections"].write_text("".join(json.dumps(r) + "\n" for r in cached))
    with paths["detections"].open("a") as cache:
        for item in footage.frames(every=every, max_frames=max_frames, skip=done):
            if item.image is None:
                rec = {
                    "sequence": item.sequence,
                    "frame": item.frame,
                    "camera": item.camera,
                    "source": item.source,
                    "size": [-1, -1],
                    "keypoints": [],
                    "scores": [],
                    "undecodable": True,
                    "problem": item.problem or "does not decode",
                }
            else:
                kp, scores = detect(item.image)
                h, w = item.image.shape[:2]
                rec = {
                    "sequence": item.sequence,
                    "frame": item.frame,
                    "camera": item.camera,
                    "source": item.source,
                    "size": [w, h],
                    "keypoints": np.round(kp, 2).tolist(),
                    "scores": np.round(scores, 4).tolist(),
                }
            cache.write(json.dumps(rec) + "\n")
            cache.flush()
            records.append(rec)
            n += 1
            if progress is not None:
                progress(n, max(total, n), f"{item.camera} frame {item.frame}")
    for rec in records:
        c = counts.setdefault(rec["camera"], CameraCounts())
        c.frames += 1
        if rec.get("undecodable"):
            c.undecodable += 1
            c.bad_frames.append(rec["source"])
            continue
        c.people += len(rec["scores"])
        c.person_score_sum += float(np.sum(rec["scores"]))
    good = [r for r in records if not r.get("undecodable")]
    for variant in ("soft", "hard"):
        entries = [_entry(r, variant, hard_min_score) for r in good]
        PseudoLabelSet(entries, variant=variant, source=f"{source_name}:{footage.path}").save(paths[variant])
    summary = {
        "footage": str(footage.path),
        "estimator": source_name,
        "every": every,
        "images": len(records),
        "undecodable": sum(c.undecodable for c in counts.values()),
        "seconds_this_run": round(time.perf_counter() - t0, 1),
        "hard_min_score": hard_min_score,
        "cameras": {k: v.to_dict() for k, v in sorted(counts.items())},
        "files": {k: str(v) for k, v in paths.items()},
    }
    paths["summary"].write_text(json.dumps(summary, indent=1))
    return summary
