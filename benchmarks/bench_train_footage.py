"""Label-free figures of image-input model files on a footage run's held-out frames.

Reads a ``selfpose3d train`` footage run (``data.source: footage``): its resolved config gives the
rig, footage, pseudo labels and split; every model file given is scored on the same held-out frames
(:class:`training.ssl.footage.FootageValidation`: the engine runtime, reprojection onto the held-out
pseudo 2D, people per frame, ghost rate, bone-length std). Prints one JSON object.

    python benchmarks/bench_train_footage.py runs/footage_pose2sim/finetune \\
        models/light_synthetic.pt runs/footage_pose2sim/*/model_final.pt > benchmarks/results/train_footage_pose2sim.json
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.benchutil import environment  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("run", help="a stage folder of the footage run (holds config.resolved.yaml)")
    ap.add_argument("models", nargs="+", help="model files to score")
    ap.add_argument("--frames", type=int, default=0, help="cap on held-out frames (0 = all)")
    args = ap.parse_args(argv)

    from calib.configkit import load
    from engine.checkpoints import load_model_file
    from training.ssl.config import TrainConfig
    from training.ssl.data import ImageFolderSource
    from training.ssl.footage import FootageValidation, build_footage_data
    from training.ssl.trainer import load_training_rig

    run = Path(args.run)
    cfg = load(TrainConfig, run / "config.resolved.yaml", ())
    rig = load_training_rig(cfg)
    data = build_footage_data(cfg.data, rig, "soft", run.parent)
    sizes = {c.name: (c.width, c.height) for c in rig.cameras}
    val = FootageValidation(rig, data, ImageFolderSource(data.val_labels, "", sizes).image_rgb)
    out = {"run": str(run), "held_out_frames": len(data.val), "models": {}, "environment": environment()}
    for path in args.models:
        model, _ = load_model_file(path)
        t0 = time.perf_counter()
        m = val.evaluate(model, "cpu", args.frames)
        m["seconds"] = round(time.perf_counter() - t0, 1)
        out["models"][path] = {k: (None if math.isnan(v) else v) for k, v in m.items()}  # None: no figure
        print(
            path, {k: m[k] for k in ("people_per_frame_mean", "reproj_px", "ghost_rate", "precision")}, file=sys.stderr
        )
    print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
