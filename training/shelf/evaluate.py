"""Run a checkpoint on Shelf's detections through the engine and score it (PCP, SPEC §5.2)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Sequence

import numpy as np

from training.datasets.shelf_campus import SHELF, load_ground_truth
from training.evaluate import evaluate_shelf_campus, pcp_metrics
from training.results_io import Predictions, save_predictions
from training.shelf.data import ShelfDetections


def predict_shelf(
    checkpoint: str | Path,
    data: ShelfDetections,
    frame_ids: Sequence[int],
    device: str = "cpu",
    sigma_px: float = 3.0,
    refine_radius_mm: float | None = None,
) -> tuple[Predictions, float]:
    """Predictions (poses (F,M,15,5) mm: x, y, z, flag, root score) of every frame, and seconds per frame.

    Each frame goes through ``Predictor.predict_detections`` with the ungrouped Panoptic-15
    candidate rows of every view (the live detection path).
    """
    from engine.api import load_model

    predictor = load_model(str(checkpoint), data.rig, backend="eager", device=device, refine_radius_mm=refine_radius_mm)
    K = predictor.config.root_net.max_people
    poses = np.zeros((len(frame_ids), K, 15, 5))
    valid = np.zeros((len(frame_ids), K), bool)
    roots = np.zeros((len(frame_ids), K, 3))
    t0 = time.perf_counter()
    for i, f in enumerate(frame_ids):
        pred = predictor.predict_detections(data.input_rows(f), sigma_px=sigma_px)
        poses[i] = pred.candidates
        valid[i] = pred.candidates[:, 0, 3] >= 0
        roots[i] = pred.proposals[:, :3]
    per_frame = (time.perf_counter() - t0) / max(1, len(frame_ids))
    preds = Predictions(poses, np.asarray(frame_ids, np.int64), valid, poses[:, :, 0, 4].copy(), roots, "panoptic15")
    return preds, per_frame


def evaluate_shelf_checkpoint(
    checkpoint: str | Path,
    data_root: str | Path,
    frame_ids: Sequence[int] | None = None,
    gt_path: str | Path | None = None,
    save_to: str | Path | None = None,
    device: str = "cpu",
    detections: str | Path | None = None,
    refine_radius_mm: float | None = None,
) -> dict:
    """PCP of a checkpoint on Shelf frames (default all 301); optionally saves the prediction NPZ.

    Returns the metrics dict of :func:`training.evaluate.pcp_metrics` plus ``frames``,
    ``seconds_per_frame`` and ``table`` (the printable PCP table).
    """
    data = ShelfDetections(data_root, detections)
    frames = list(frame_ids) if frame_ids is not None else data.frame_ids
    preds, per_frame = predict_shelf(checkpoint, data, frames, device, refine_radius_mm=refine_radius_mm)
    if save_to:
        save_predictions(save_to, preds)
    gt = load_ground_truth(gt_path or data_root, SHELF).select(frames)
    result = evaluate_shelf_campus(preds, gt)
    metrics = pcp_metrics(result)
    metrics.update(
        {
            "frames": f"{frames[0]}-{frames[-1]}",
            "num_frames": len(frames),
            "seconds_per_frame": round(per_frame, 4),
            "checkpoint": str(checkpoint),
            "table": result.table(),
        }
    )
    return metrics
