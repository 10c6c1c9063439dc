"""Measure a detection-route model: held-out synthetic scenes through random rigs, and real
footage through the bundled 2D estimator (people per frame, reprojection error per camera).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Sequence

import numpy as np

from calib.camera import CameraRig
from engine.reprojection import match_reprojection
from training.detection_route.config import DetectionTrainConfig, load_config
from training.detection_route.scenes import Scene, detector_params, sample_scene
from training.detection_route.trainer import pose_bank
from training.metrics import match_to_ground_truth, panoptic_metrics

HELD_OUT_SEED = 1_000_003  # scenes (rigs, volumes, people, estimator draws) never drawn in training


def held_out_scenes(num: int, cfg: DetectionTrainConfig | None = None, seed: int = HELD_OUT_SEED) -> list[Scene]:
    """``num`` random scenes from a seed the trainer never uses (so rigs it never saw)."""
    cfg = cfg or load_config("detection_generic")
    rng = np.random.default_rng(seed)
    bank = pose_bank(cfg)  # the same motion model; poses are re-drawn, turned and placed per scene
    params = detector_params(cfg.estimator)
    return [sample_scene(rng, bank, cfg.rigs, cfg.scene, params, cfg.estimator) for _ in range(num)]


def with_root_threshold(checkpoint: str | Path, threshold: float, out: str | Path) -> Path:
    """A copy of our model file whose root threshold is ``threshold`` (for threshold sweeps)."""
    import torch

    from engine.checkpoints import read_file

    obj = dict(read_file(checkpoint))
    cfg = dict(obj["config"])
    cfg["root_net"] = dict(cfg["root_net"], threshold=float(threshold))
    obj["config"] = cfg
    torch.save(obj, out)
    return Path(out)


def predictor_for(checkpoint: str | Path, rig: CameraRig, volume_center_mm, volume_size_mm):
    """``engine.api.load_model`` for a rig and its volume (eager, CPU)."""
    from engine.api import load_model

    return load_model(
        str(checkpoint),
        rig,
        backend="eager",
        device="cpu",
        volume_center_mm=volume_center_mm,
        volume_size_mm=volume_size_mm,
    )


def evaluate_synthetic(checkpoint: str | Path, scenes: Sequence[Scene], thresholds: Sequence[float] = (0.3,)) -> dict:
    """Panoptic metrics (AP@25..150, recall, MPJPE) and people counts on ``scenes``, per root threshold.

    Every scene goes through ``Predictor.predict_detections`` with its simulated estimator people.
    A prediction farther than 500 mm (MPJPE) from every target is a ghost. Thresholds below
    the checkpoint's own root threshold see only what that threshold keeps.
    """
    per_t: dict[float, dict] = {t: {"pred": [], "score": [], "gt": [], "ghosts": 0, "found": 0} for t in thresholds}
    t0 = time.perf_counter()
    for sc in scenes:
        pred = predictor_for(checkpoint, sc.rig, sc.volume.center_mm, sc.volume.size_mm).predict_detections(sc.poses_2d)
        cand = pred.candidates  # (K,J,5): x, y, z, flag, score
        gt = sc.target_poses_mm.astype(np.float64)
        for t in thresholds:
            keep = (cand[:, 0, 3] >= 0) & (cand[:, 0, 4] >= t)
            poses, scores = cand[keep, :, :3], cand[keep, 0, 4]
            acc = per_t[t]
            acc["pred"].append(poses)
            acc["score"].append(scores)
            acc["gt"].append(gt)
            if len(poses):
                err = (
                    np.linalg.norm(poses[:, None] - gt[None], axis=-1).mean(-1)
                    if len(gt)
                    else np.full((len(poses), 1), np.inf)
                )
                acc["ghosts"] += int((err.min(1) >= 500).sum())
                acc["found"] += len(poses)
    seconds = (time.perf_counter() - t0) / max(1, len(scenes))
    n_gt = int(sum(len(s.target_poses_mm) for s in scenes))
    out = {
        "scenes": len(scenes),
        "target_people": n_gt,
        "seconds_per_scene": round(seconds, 3),
        "views_per_scene": float(np.mean([len(s.rig) for s in scenes])),
        "by_threshold": {},
    }
    for t, acc in per_t.items():
        m = panoptic_metrics(match_to_ground_truth(acc["pred"], acc["score"], acc["gt"]))
        m = {k: round(float(v), 4) for k, v in m.items()}
        m.update(
            predicted_people=acc["found"],
            ghosts_500mm=acc["ghosts"],
            ghost_rate=round(acc["ghosts"] / max(1, acc["found"]), 4),
        )
        out["by_threshold"][str(t)] = m
    return out


# ------------------------------------------------------------------------------------------ real footage


def read_framesets(videos: Sequence[str | Path], frame_indices: Sequence[int]) -> list[list[np.ndarray]]:
    """Per frame index the list of per-camera BGR images (videos read sequentially)."""
    import cv2

    want = sorted(set(int(f) for f in frame_indices))
    per_cam: list[dict[int, np.ndarray]] = []
    for path in videos:
        cap = cv2.VideoCapture(str(path))
        if not cap.isOpened():
            raise FileNotFoundError(f"{path}: cannot open the video (check the rig's source path)")
        frames, k = {}, 0
        while k <= want[-1]:
            ok, img = cap.read()
            if not ok:
                break
            if k in want:
                frames[k] = img
            k += 1
        cap.release()
        missing = [f for f in want if f not in frames]
        if missing:
            raise FileNotFoundError(f"{path}: frames {missing} not in the video ({k} frames)")
        per_cam.append(frames)
    return [[cam[f] for cam in per_cam] for f in frame_indices]


def estimator_people_on_footage(rig_path: str | Path, frame_indices: Sequence[int], input_long_side_px: int = 256):
    """The rig (``calib.rig_config.Rig``) and per frameset the bundled estimator's per-view
    Panoptic-15 people (N,15,3) on the rig's video files, plus the estimator's ms per frameset."""
    from calib.rig_config import load_rig
    from engine.estimators import EstimatorConfig, build_estimator

    rig = load_rig(rig_path)
    videos = [rig.source(name).uri for name in rig.names]
    framesets = read_framesets(videos, frame_indices)
    estimator = build_estimator(EstimatorConfig(input_long_side_px=input_long_side_px))
    people, ms = [], []
    for images in framesets:
        t0 = time.perf_counter()
        found = estimator.detect(images)
        ms.append(1000 * (time.perf_counter() - t0))
        people.append([p.to_panoptic15() for p in found])
    return rig, people, float(np.median(ms))


def evaluate_footage(
    checkpoint: str | Path, rig, people_2d: Sequence[Sequence[np.ndarray]], supported_px: float = 40.0
) -> dict:
    """Run a model on the estimator's people of real framesets; people per frame and reprojection.

    A 3D person is *supported* in a camera when it pairs with an estimator person there at a
    median joint error below ``supported_px``; people supported in fewer than 2 cameras are
    counted as likely ghosts (there is no 3D truth for this footage).
    """
    predictor = predictor_for(checkpoint, rig.cameras, rig.volume.center_mm, rig.volume.size_mm)
    V = len(rig.cameras)
    counts, in_volume, per_cam, ghosts, ms, frames = [], [], [[] for _ in range(V)], 0, [], []
    lo, hi = np.asarray(rig.volume.min_mm), np.asarray(rig.volume.max_mm)
    for views in people_2d:
        t0 = time.perf_counter()
        pred = predictor.predict_detections(list(views))
        ms.append(1000 * (time.perf_counter() - t0))
        poses = pred.poses_mm
        cams, pair = match_reprojection(poses, views, rig.cameras)
        for v in range(V):
            per_cam[v] += cams[v]
        support = (pair < supported_px).sum(1) if len(poses) else np.zeros(0)
        ghosts += int((support < 2).sum())
        roots = poses[:, 2] if len(poses) else np.zeros((0, 3))
        counts.append(int(len(poses)))
        in_volume.append(int(np.all((roots >= lo) & (roots <= hi), axis=1).sum()))
        frames.append(
            {
                "people": int(len(poses)),
                "scores": pred.scores.round(3).tolist(),
                "estimator_people_per_view": [int(len(p)) for p in views],
                "reprojection_px_per_person_view": np.round(pair, 1).tolist(),
                "supported_views": support.tolist(),
            }
        )
    names = list(rig.names)
    return {
        "framesets": len(people_2d),
        "people_per_frame": counts,
        "mean_people_per_frame": float(np.mean(counts)) if counts else 0.0,
        "people_in_volume_per_frame": in_volume,
        "likely_ghosts": ghosts,
        "reprojection_px_median_per_camera": {
            n: (round(float(np.median(e)), 1) if e else None) for n, e in zip(names, per_cam)
        },
        "reprojection_px_mean_per_camera": {
            n: (round(float(np.mean(e)), 1) if e else None) for n, e in zip(names, per_cam)
        },
        "reprojection_px_median_all": round(float(np.median(sum(per_cam, []))), 1) if any(per_cam) else None,
        "model_ms_per_frameset_median": round(float(np.median(ms)), 1) if ms else None,
        "frames": frames,
    }
