"""2D error of a model's backbone on its own training scenes and on held-out scenes (generalisation).

For each checkpoint, the backbone runs on frames spread evenly over (a) the held-out scenes of the
light recipe (``data.val_seeds``) and (b) the checkpoint's own training scenes (read from the
training config stored in the checkpoint; ``--train-config`` for files without one). Error: for
every true joint not within 6 heatmap px of another person's same joint, the distance from its true
heatmap position to the heatmap maximum within ±3 px, refined to sub-pixel by a parabola (the 3D
truth is only used to measure). A large gap between (a) and (b) means the backbone learned its
training people rather than people.

    python benchmarks/backbone_2d_error.py --checkpoint models/light_synthetic.pt --json-out r.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.diag_synthetic_errors import heatmap_errors_px, to_heatmap_px, true_2d  # noqa: E402
from engine.checkpoints import load_model_file  # noqa: E402
from engine.runtime import InferenceRuntime  # noqa: E402


def _train_data(path: str, fallback: str):
    """The ``data`` section a checkpoint was trained with (or the fallback config's)."""
    from training.ssl.config import SyntheticDataConfig, load_train_config
    from calib.configkit import from_dict

    meta = torch.load(path, map_location="cpu", weights_only=True).get("meta", {})
    if meta.get("train_config"):
        return from_dict(SyntheticDataConfig, json.loads(meta["train_config"])["data"]), "checkpoint"
    return load_train_config(fallback).data, fallback


def scene_errors(runtime: InferenceRuntime, scenes, frames: int) -> dict[str, float]:
    """Sub-pixel 2D error statistics (heatmap px) over ``frames`` frames spread over ``scenes``."""
    geo = runtime.projector.geometry
    affine = geo.affine_hm.numpy()
    picked = scenes.frames[:: max(1, len(scenes.frames) // frames)][:frames]
    errs: list[float] = []
    for seq, frame in picked:
        gt = scenes.ground_truth(seq, frame)
        gt = gt[np.isfinite(gt).all(axis=(1, 2))]
        with torch.inference_mode():
            heatmaps = runtime.heatmaps(runtime.preprocessor(scenes.images_bgr(seq, frame))).numpy()
        errs += heatmap_errors_px(heatmaps, to_heatmap_px(true_2d(scenes.rig, gt), affine), subpixel=True)
    e = np.asarray(errs)
    return {
        "median_hm_px": float(np.median(e)),
        "mean_hm_px": float(e.mean()),
        "p90_hm_px": float(np.percentile(e, 90)),
        "within_1px": float((e < 1).mean()),
        "joints": int(e.size),
        "frames": len(picked),
    }


def main(argv: list[str] | None = None) -> int:
    from training.ssl.data import SyntheticScenes
    from training.ssl.synthetic_eval import held_out_scenes

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--checkpoint", nargs="+", default=[str(REPO / "models" / "light_synthetic.pt")])
    ap.add_argument("--frames", type=int, default=20, help="frames per scene set")
    ap.add_argument(
        "--train-config",
        default="light_backbone",
        help="training config whose scenes are (b) for checkpoints that do not store theirs",
    )
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json-out", help="write the results here")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    held = held_out_scenes()
    rows = []
    for path in args.checkpoint:
        model, _ = load_model_file(path)
        rt = InferenceRuntime(
            model.eval(),
            held.rig,
            backend="eager",
            device="cpu",
            refine_radius_mm=0.0,
            space_size_mm=held.key["size"],
            space_center_mm=held.key["center"],
        )
        d, source = _train_data(path, args.train_config)
        train = SyntheticScenes(
            held.rig,
            d.train_seeds,
            d.frames_per_scene,
            d.frame_interval,
            d.people,
            d.fps,
            held.key["center"],
            held.key["size"],
        )
        row = {
            "checkpoint": path,
            "train_scenes": len(d.train_seeds),
            "train_frames": len(train.frames),
            "train_data_from": source,
            "held_out": scene_errors(rt, held, args.frames),
            "training_scenes": scene_errors(rt, train, args.frames),
        }
        row["held_out_over_training"] = row["held_out"]["median_hm_px"] / row["training_scenes"]["median_hm_px"]
        rows.append(row)
        print(
            f"{path}: {row['train_scenes']} training scenes ({row['train_frames']} frames); median 2D error "
            f"held-out {row['held_out']['median_hm_px']:.2f} / training scenes "
            f"{row['training_scenes']['median_hm_px']:.2f} heatmap px (ratio {row['held_out_over_training']:.2f}); "
            f"p90 {row['held_out']['p90_hm_px']:.2f} / {row['training_scenes']['p90_hm_px']:.2f}"
        )
    W = held.rig[0].width / rt.projector.geometry.heatmap_wh[0]
    result = {"benchmark": "backbone_2d_error", "image_px_per_heatmap_px": float(W), "results": rows}
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
