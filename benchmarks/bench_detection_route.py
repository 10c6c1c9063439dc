"""The rig-agnostic learned detection route (issue 20): accuracy on rigs it never saw.

Three measurements, each for the model and a baseline (default ``models/shelf_ssl.pt``):

* held-out synthetic scenes through random rigs and volumes never drawn in training
  (``training.detection_route.evaluate.held_out_scenes``): AP@25..150, recall, MPJPE, ghosts,
  per root threshold;
* Shelf's real OpenPose detections (``selfpose3d eval shelf --checkpoint``): PCP, all 301 frames;
* the real Pose2Sim Demo_MultiPerson footage (``configs/rigs/pose2sim_multiperson.yaml``) through the
  bundled estimator (MoveNet, 256 px): people per frame (2 real people in the volume), likely ghosts
  (3D people not matched by an estimator person within 40 px in >= 2 cameras) and the reprojection
  error of the 3D joints onto the estimator's 2D people, per camera (px, median joint error per pair).

    python benchmarks/bench_detection_route.py --json benchmarks/results/detection_route.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.benchutil import environment  # noqa: E402
from training.detection_route.evaluate import (  # noqa: E402
    estimator_people_on_footage,
    evaluate_footage,
    evaluate_synthetic,
    held_out_scenes,
    with_root_threshold,
)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoint", default=str(REPO / "models/detection_generic_candidate.pt"))
    ap.add_argument("--baseline", default=str(REPO / "models/shelf_ssl.pt"), help="'' to skip")
    ap.add_argument("--synthetic-scenes", type=int, default=60)
    ap.add_argument("--thresholds", default="0.1,0.2,0.3,0.4,0.5", help="root thresholds swept on synthetic")
    ap.add_argument("--frames", default="0,10,20,30,40,50,60,70,80,90,99", help="Pose2Sim framesets")
    ap.add_argument("--rig", default=str(REPO / "configs/rigs/pose2sim_multiperson.yaml"))
    ap.add_argument("--shelf", default=str(REPO.parent / "shared/data/shelf"), help="Shelf data folder ('' to skip)")
    ap.add_argument(
        "--shelf-baseline",
        action="store_true",
        help="also score the baseline on Shelf (85.8 PCP for shelf_ssl.pt, docs/shelf.md)",
    )
    ap.add_argument("--json", default=str(REPO / "benchmarks/results/detection_route.json"))
    args = ap.parse_args(argv)
    import tempfile

    import torch

    torch.set_num_threads(1)
    models = {"model": args.checkpoint, **({"baseline": args.baseline} if args.baseline else {})}
    result: dict = {"environment": environment(), "torch_threads": 1, "models": models}
    thresholds = [float(t) for t in args.thresholds.split(",")]

    t0 = time.time()
    scenes = held_out_scenes(args.synthetic_scenes)
    result["synthetic"] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, path in models.items():
            low = with_root_threshold(path, min(thresholds), Path(tmp) / f"{name}.pt")
            result["synthetic"][name] = evaluate_synthetic(low, scenes, thresholds)
            for t, m in result["synthetic"][name]["by_threshold"].items():
                print(
                    f"synthetic {name} t={t}: AP25 {m['ap25']:.3f} AP50 {m['ap50']:.3f} AP100 {m['ap100']:.3f} "
                    f"MPJPE {m['mpjpe_mm']:.1f} mm recall500 {m['recall500']:.3f} ghosts {m['ghosts_500mm']}/{m['predicted_people']}",
                    flush=True,
                )
    result["synthetic_s"] = round(time.time() - t0, 1)

    frames = [int(f) for f in args.frames.split(",")]
    rig, people, est_ms = estimator_people_on_footage(args.rig, frames)
    result["pose2sim"] = {
        "frames": frames,
        "estimator": "movenet 256",
        "estimator_ms_per_frameset": round(est_ms, 1),
        "estimator_people_per_view": [[len(p) for p in v] for v in people],
    }
    for name, path in models.items():
        r = evaluate_footage(path, rig, people)
        result["pose2sim"][name] = r
        print(
            f"pose2sim {name}: people/frame {r['people_per_frame']} ghosts {r['likely_ghosts']} "
            f"reprojection median px {r['reprojection_px_median_per_camera']}",
            flush=True,
        )

    if args.shelf and Path(args.shelf).is_dir():
        from training.shelf.evaluate import evaluate_shelf_checkpoint

        result["shelf"] = {}
        for name, path in models.items():
            if name == "baseline" and not args.shelf_baseline:
                continue
            m = evaluate_shelf_checkpoint(path, args.shelf)
            print(f"shelf {name}:\n{m['table']}", flush=True)
            result["shelf"][name] = m
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(result, indent=1, default=float))
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
