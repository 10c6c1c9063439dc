"""Both real-image engines on the real Pose2Sim footage (Demo_MultiPerson: 4 cameras, two people).

For every ``--every``-th frame of the four videos: the bundled estimator (input ``--input-size``)
then each engine (``triangulate``, ``learned`` with ``--model``). Reports per engine: people per frame,
recall/precision of the two people in the volume, reprojection error per camera (px, median over
the joints the estimator sees with score >= 0.3), and ms per stage. There are no labels: a predicted
person is counted real when at least 3 of the 4 views hold an estimator person its joints reproject
onto (median < 10 % of the person's height in the image; one-to-one pairing per view,
``engine.reprojection.match_reprojection``); the two people are the ones present
throughout (the man and the second person), so recall = min(real, 2) / 2 and precision = real / predicted.

    python benchmarks/bench_real_route.py --json benchmarks/results/real_route_pose2sim.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.benchutil import environment  # noqa: E402
from calib.common.keypoint_maps import keypoints_to_panoptic15  # noqa: E402
from calib.rig_config import load_rig  # noqa: E402
from engine.estimator_route import build_estimator_predictor  # noqa: E402
from engine.estimators import EstimatorConfig  # noqa: E402
from engine.reprojection import confirmed_views  # noqa: E402

PEOPLE_IN_VOLUME = 2


def read_framesets(rig, every: int) -> list[list[np.ndarray]]:
    caps = [cv2.VideoCapture(str(rig.source(n).uri)) for n in rig.names]
    sets, index = [], 0
    while True:
        views = []
        for cap in caps:
            ok, img = cap.read()
            views.append(img if ok else None)
        if any(v is None for v in views):
            break
        if index % every == 0:
            sets.append(views)
        index += 1
    return sets


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rig", default=str(REPO / "configs" / "rigs" / "pose2sim_multiperson.yaml"))
    ap.add_argument("--every", type=int, default=2)
    ap.add_argument("--input-size", type=int, default=256)
    ap.add_argument(
        "--model", default=str(REPO / "models" / "detection_generic_candidate.pt"), help="learned engine model"
    )
    ap.add_argument("--engines", nargs="+", default=["triangulate", "learned"])
    ap.add_argument("--json")
    args = ap.parse_args(argv)
    rig = load_rig(args.rig)
    sets = read_framesets(rig, args.every)
    est_cfg = EstimatorConfig(input_long_side_px=args.input_size)
    results = {}
    for engine in args.engines:
        if engine == "learned" and not Path(args.model).is_file():
            print(f"learned: {args.model} not found, skipped", file=sys.stderr)
            continue
        pred = build_estimator_predictor(
            rig.cameras,
            engine,
            est_cfg,
            workers=2,
            model=args.model if engine == "learned" else None,
            volume_center_mm=rig.volume.center_mm,
            volume_size_mm=rig.volume.size_mm,
        )
        counts, real, per_cam, ms = [], [], {n: [] for n in rig.names}, {}
        for views in sets:
            started = pred.start_images(views)
            out = pred.finish(started)
            people_2d = started.people_2d
            if pred.engine_layout == "coco17":  # the triangulator takes COCO-17; compare in Panoptic-15
                people_2d = [
                    keypoints_to_panoptic15(p, "coco17") if len(p) else np.zeros((0, 15, 3)) for p in people_2d
                ]
            views_ok, pair = confirmed_views(out.poses_mm, people_2d, rig.cameras)
            n_real = int((views_ok >= 3).sum())
            for v, name in enumerate(rig.names):
                per_cam[name] += [float(e) for e in pair[:, v] if np.isfinite(e)]
            counts.append(out.num_people)
            real.append(n_real)
            for k, v in out.timings_ms.items():
                ms.setdefault(k, []).append(v)
        predicted = sum(counts)
        results[engine] = {
            "framesets": len(sets),
            "people_per_frame": dict(zip(*np.unique(counts, return_counts=True))),
            "recall": round(float(np.mean([min(r, PEOPLE_IN_VOLUME) / PEOPLE_IN_VOLUME for r in real])), 4),
            "precision": round(float(sum(real) / predicted), 4) if predicted else None,
            "frames_with_both": int(sum(min(r, 2) == 2 for r in real)),
            "reprojection_px_median_per_camera": {
                k: round(float(np.median(v)), 1) if v else None for k, v in per_cam.items()
            },
            "ms_median": {k: round(statistics.median(v), 1) for k, v in ms.items()},
        }
        results[engine]["people_per_frame"] = {int(k): int(v) for k, v in results[engine]["people_per_frame"].items()}
        print(engine, json.dumps(results[engine]))
    out = {
        "benchmark": "bench_real_route",
        "date": time.strftime("%Y-%m-%d"),
        "environment": environment(),
        "rig": args.rig,
        "every": args.every,
        "estimator_input_px": args.input_size,
        "engines": results,
        "note": "no labels: 'real' = confirmed by >= 3 of 4 views (see the module docstring)",
    }
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
