"""Both 3D engines on held-out synthetic scenes through random rigs they have never seen.

The scenes of ``training/detection_route/evaluate.py`` (random rigs of 2-8 cameras incl. portrait,
synthetic people, the bundled estimator's measured error model simulated): the triangulation engine
and the learned detection-route model get the same simulated 2D people; AP@25..150, recall@500,
MPJPE (training/metrics.py) and ghosts (predictions > 500 mm from every target).

    python benchmarks/bench_synthetic_engines.py --scenes 60 --json benchmarks/results/synthetic_engines.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.benchutil import environment  # noqa: E402
from engine.estimator_route import pixel_thresholds_for  # noqa: E402
from engine.triangulate import Triangulator  # noqa: E402
from engine.estimator_route import StartedPeople  # noqa: E402
from training.detection_route.evaluate import evaluate_synthetic, held_out_scenes  # noqa: E402
from training.fit_rig.validate import engine_predictor  # noqa: E402
from training.metrics import match_to_ground_truth, panoptic_metrics  # noqa: E402


def _triangulate(sc):
    tri = Triangulator.from_rig(sc.rig, **pixel_thresholds_for(sc.rig))
    return lambda: tri.predict_people(sc.poses_2d)


def _learned_route(model: str):
    """The learned route as the product runs it (``EstimatorPredictor``: the model, people outside
    the volume dropped, then the >= 2-view support check), on the scene's simulated estimator people."""

    def build(sc):
        route = engine_predictor("learned", sc.rig, sc.volume.center_mm, sc.volume.size_mm, model=model)
        started = StartedPeople(list(sc.poses_2d), np.ones(len(sc.rig), bool), {})
        return lambda: route.finish(started)

    return build


def engine_scenes(scenes, build) -> dict:
    """``build(scene) -> run()``: the engine is built (model loaded) outside the timed call."""
    preds, scores, gts, ghosts, found, ms = [], [], [], 0, 0, []
    for sc in scenes:
        run = build(sc)
        t0 = time.perf_counter()
        pred = run()
        ms.append((time.perf_counter() - t0) * 1e3)
        c, h = np.asarray(sc.volume.center_mm), np.asarray(sc.volume.size_mm) / 2 + 250.0
        root = pred.poses_mm[:, 2] if len(pred.poses_mm) else np.zeros((0, 3))
        keep = np.all((root >= c - h) & (root <= c + h), axis=1)  # the route's volume filter
        poses, s = pred.poses_mm[keep].astype(np.float64), pred.scores[keep]
        gt = sc.target_poses_mm.astype(np.float64)
        preds.append(poses)
        scores.append(s)
        gts.append(gt)
        if len(poses):
            err = (
                np.linalg.norm(poses[:, None] - gt[None], axis=-1).mean(-1)
                if len(gt)
                else np.full((len(poses), 1), np.inf)
            )
            ghosts += int((err.min(1) >= 500).sum())
            found += len(poses)
    m = {k: round(float(v), 4) for k, v in panoptic_metrics(match_to_ground_truth(preds, scores, gts)).items()}
    m.update(
        predicted_people=found,
        ghosts_500mm=ghosts,
        ghost_rate=round(ghosts / max(1, found), 4),
        ms_per_scene_median=round(float(np.median(ms)), 2),
    )
    return m


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scenes", type=int, default=60)
    ap.add_argument("--model", default=str(REPO / "models" / "detection_generic_candidate.pt"))
    ap.add_argument("--json")
    args = ap.parse_args(argv)
    scenes = held_out_scenes(args.scenes)
    result = {
        "benchmark": "bench_synthetic_engines",
        "environment": environment(),
        "scenes": len(scenes),
        "target_people": int(sum(len(s.target_poses_mm) for s in scenes)),
        "triangulate": engine_scenes(scenes, _triangulate),
    }
    if Path(args.model).is_file():
        result["learned"] = evaluate_synthetic(args.model, scenes)["by_threshold"]
        result["learned_support_checked"] = engine_scenes(scenes, _learned_route(args.model))
    print(json.dumps({k: v for k, v in result.items() if k != "environment"}, indent=1))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
