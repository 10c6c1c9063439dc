"""Stage ``validate`` of fit-rig: label-free figures of 3D engines on the held-out frames.

Every engine runs behind :class:`engine.estimator_route.EstimatorPredictor` exactly as the live
route runs it (people outside the rig's volume dropped), on the estimator's cached people:

* ``triangulate``: the out-of-the-box default route (COCO-17 in);
* a detection-route model file (the generic candidate, the ``rig`` stage's, the ``ssl`` stage's).

Figures per engine (no labels): people per frame; reprojection error per camera onto the
estimator's Panoptic-15 people (median px over the one-to-one pairs of
:func:`engine.reprojection.match_reprojection`); *confirmed* people (they reproject
onto an estimator person, median < 10 % of their image height, in >= ``confirm_views`` views) and
precision = confirmed / predicted; recall = min(confirmed, N) / N when the number N of people in the
volume is known; ghost rate = predicted people supported by fewer than 2 views / predicted; bone
stability = the median over tracks and bones of each bone length's standard deviation over time
(tracks: nearest root across consecutive held-out frames, < 500 mm). Where 3D truth exists (a
``selfpose3d synth`` scene's ``truth.npz``), also MPJPE and AP@100 (:mod:`training.metrics`).
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Sequence

import numpy as np

from calib.common.skeleton import PANOPTIC15
from engine.estimator_route import (
    EstimatorPredictor,
    LearnedDetectionEngine,
    StartedPeople,
    pixel_thresholds_for,
    support_check,
)
from engine.reprojection import confirmed_views
from engine.tracking import bone_lengths_mm
from training.fit_rig.labels import FrameSet
from training.runner import Progress

TRACK_MAX_MM = 500.0


def engine_predictor(name: str, cameras, center_mm, size_mm, model: str | Path | None = None) -> EstimatorPredictor:
    """The live route's predictor for an engine (``triangulate`` or a detection-route model file),
    without an estimator pool: :meth:`EstimatorPredictor.finish` gets the cached people."""
    if model is None:
        from engine.triangulate import Triangulator

        engine, layout, route = (
            Triangulator.from_rig(cameras, layout="coco17", **pixel_thresholds_for(cameras)),
            "coco17",
            "triangulate",
        )
    else:
        from engine.api import load_model

        predictor = load_model(
            str(model), cameras, backend="eager", device="cpu", volume_center_mm=center_mm, volume_size_mm=size_mm
        )
        engine, layout, route = LearnedDetectionEngine(predictor), "panoptic15", "learned"
    return EstimatorPredictor(
        None, engine, layout, route, volume_center_mm=center_mm, volume_size_mm=size_mm, **support_check(cameras, route)
    )


def run_engine(
    predictor: EstimatorPredictor, frames: Sequence[FrameSet]
) -> tuple[list[np.ndarray], list[np.ndarray], float]:
    """Per frame (P,15,3) poses mm and (P,) scores, and the engine's median ms per frameset."""
    poses, scores, ms = [], [], []
    for f in frames:
        people = f.coco17 if predictor.engine_layout == "coco17" else f.p15
        t0 = time.perf_counter()
        pred = predictor.finish(StartedPeople(list(people), np.ones(len(people), bool), {}))
        ms.append(1e3 * (time.perf_counter() - t0))
        poses.append(pred.poses_mm.astype(np.float64))
        scores.append(np.asarray(pred.scores, np.float64))
    return poses, scores, float(np.median(ms)) if ms else float("nan")


def bone_stability_mm(poses_per_frame: Sequence[np.ndarray]) -> float | None:
    """Median over tracks and bones of the bone length's std (mm) across the frames a track spans."""
    tracks: list[list[np.ndarray]] = []
    open_tracks: list[int] = []  # tracks continued in the previous frame
    root = PANOPTIC15.root
    for poses in poses_per_frame:
        used: set[int] = set()
        for p in poses:  # greedy, in the engine's output order
            cands = [(float(np.linalg.norm(tracks[k][-1][root] - p[root])), k) for k in open_tracks if k not in used]
            d, k = min(cands, default=(math.inf, -1))
            if d >= TRACK_MAX_MM:
                tracks.append([p])
                k = len(tracks) - 1
            else:
                tracks[k].append(p)
            used.add(k)
        open_tracks = sorted(used)
    stds = []
    for t in tracks:
        if len(t) >= 2:
            stds += bone_lengths_mm(np.stack(t)).std(0).tolist()  # (T,15,3) -> (T,E) -> per bone
    return round(float(np.median(stds)), 1) if stds else None


def footage_figures(
    poses: Sequence[np.ndarray],
    frames: Sequence[FrameSet],
    cameras,
    expected_people: int = 0,
) -> dict:
    """The label-free figures of one engine's poses on ``frames`` (see the module docstring)."""
    V = len(cameras)
    confirm = max(2, math.ceil(0.75 * V)) if V > 2 else V
    counts, confirmed, ghosts = [], [], 0
    per_cam: list[list[float]] = [[] for _ in range(V)]
    for p, f in zip(poses, frames):
        views_ok, pair = confirmed_views(p, f.p15, cameras)
        for v in range(V):
            per_cam[v] += [float(e) for e in pair[:, v] if np.isfinite(e)]
        counts.append(len(p))
        confirmed.append(int((views_ok >= confirm).sum()))
        ghosts += int((views_ok < 2).sum())
    predicted = int(sum(counts))
    out = {
        "frames": len(frames),
        "people_per_frame_mean": round(float(np.mean(counts)), 3) if counts else None,
        "people_per_frame": {int(k): int(n) for k, n in zip(*np.unique(counts, return_counts=True))},
        "predicted": predicted,
        "confirmed": int(sum(confirmed)),
        "confirm_views": confirm,
        "precision": round(sum(confirmed) / predicted, 4) if predicted else None,
        "ghost_rate": round(ghosts / predicted, 4) if predicted else None,
        "reprojection_px_median_per_camera": {
            c.name: (round(float(np.median(e)), 1) if e else None) for c, e in zip(cameras, per_cam)
        },
        "reprojection_px_median_all": round(float(np.median(sum(per_cam, []))), 1) if any(per_cam) else None,
        "bone_length_std_mm": bone_stability_mm(poses),
    }
    if expected_people:
        out["recall"] = round(float(np.mean([min(c, expected_people) / expected_people for c in confirmed])), 4)
    return out


def truth_figures(
    poses: Sequence[np.ndarray], scores: Sequence[np.ndarray], frames: Sequence[FrameSet], truth
) -> dict | None:
    """MPJPE / AP@100 against 3D truth (``truth``: frame -> (G,15,3) mm), None without truth."""
    if truth is None:
        return None
    from training.metrics import match_to_ground_truth, panoptic_metrics

    gt = [truth.get(f.key[1], np.zeros((0, 15, 3))) for f in frames]
    m = panoptic_metrics(match_to_ground_truth(list(poses), list(scores), gt))
    keys = ("ap25", "ap50", "ap100", "ap150", "mpjpe_mm", "recall500")
    return {k: (round(float(m[k]), 4) if np.isfinite(m[k]) else None) for k in keys}  # None: nothing matched


def load_truth(footage_path: Path) -> dict[int, np.ndarray] | None:
    """3D truth of a ``selfpose3d synth`` scene (``truth.npz`` in or above the footage folder)."""
    folder = footage_path if footage_path.is_dir() else footage_path.parent
    for cand in (folder / "truth.npz", *sorted(folder.glob("*/truth.npz"))):
        if cand.is_file():
            d = np.load(cand)
            return {int(fr): d["joints_mm"][i][d["present"][i]].astype(np.float64) for i, fr in enumerate(d["frame"])}
    return None


def validate(
    engines: dict[str, EstimatorPredictor], frames: Sequence[FrameSet], cameras, expected_people: int, truth
) -> dict:
    """Figures of every engine on the same held-out ``frames``."""
    out = {}
    bar = Progress(len(engines), "[validate]")
    for i, (name, predictor) in enumerate(engines.items(), 1):
        poses, scores, ms = run_engine(predictor, frames)
        fig = footage_figures(poses, frames, cameras, expected_people)
        fig["engine_ms_per_frameset_median"] = round(ms, 1)
        # the learned route's ghost check (EstimatorPredictor.support_views) already removed these:
        # what the nets proposed that no two views back, so a ghost rate of 0 after it is not hidden
        fig["dropped_by_support_check"] = int(predictor.unsupported)
        t = truth_figures(poses, scores, frames, truth)
        if t is not None:
            fig["truth"] = t
        out[name] = fig
        bar.update(i, name)
    return out
