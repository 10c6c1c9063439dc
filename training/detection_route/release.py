"""Release a detection-route run as ``models/detection_generic.pt`` (float16 weights, the root
threshold chosen on held-out synthetic scenes, held-out metrics in its meta).

    python -m training.detection_route.release runs/detection_generic/model.pt \
        --out models/detection_generic.pt --threshold 0.3 --scenes 60
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from engine.checkpoints import read_file
from training.ssl.release import release_model

REPRODUCE = (
    "selfpose3d train-detection --config detection_generic --out runs/detection_generic && "
    "python -m training.detection_route.release runs/detection_generic/model.pt --out models/detection_generic.pt"
)


def release(source: str | Path, out: str | Path, threshold: float | None = None, scenes: int = 60) -> dict:
    """Write ``out`` from ``source``; returns the held-out synthetic metrics of the written file."""
    from training.detection_route.evaluate import evaluate_synthetic, held_out_scenes, with_root_threshold

    out = Path(out)
    release_model(source, out, half=True, evaluate=False, reproduce=REPRODUCE)
    if threshold is not None:
        with_root_threshold(out, threshold, out)
    obj = dict(read_file(out))
    obj["meta"] = dict(
        obj["meta"], input="detections", trainer="training.detection_route"
    )  # engine.checkpoints.model_input
    torch.save(obj, out)
    metrics = {}
    if scenes:
        t = read_file(out)["config"]["root_net"]["threshold"]
        metrics = evaluate_synthetic(out, held_out_scenes(scenes), (t,))
        obj = dict(read_file(out))
        obj["meta"] = dict(obj["meta"], heldout_metrics=json.dumps(metrics))
        torch.save(obj, out)
    return metrics


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model", type=Path)
    ap.add_argument("--out", type=Path, default=Path("models/detection_generic.pt"))
    ap.add_argument("--threshold", type=float, default=None, help="root score threshold of the release")
    ap.add_argument("--scenes", type=int, default=60, help="held-out synthetic scenes scored into the meta (0 = none)")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    metrics = release(args.model, args.out, args.threshold, args.scenes)
    print(json.dumps(metrics.get("by_threshold", {}), indent=1))
    print(f"wrote {args.out} ({args.out.stat().st_size / 1e6:.2f} MB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
