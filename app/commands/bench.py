"""``selfpose3d bench precision --model M``: joint deviation and speed of each precision.

Runs the model's own test inputs through fp32, mixed bf16 (:mod:`engine.precision`) and full bf16
runtimes, interleaved in rounds, and prints per precision the median seconds per frame, the
speed-up over fp32 and the joint deviation against fp32 (p50 / p99 / max mm, unmatched people).
Inputs: a Shelf model (config ``shelf``) runs on Shelf detections (``predict_detections``), any
other on held-out synthetic framesets (images, as ``selfpose3d eval synthetic``); a preset name
(``light``, ``released``) runs random weights on the same synthetic framesets, compared on the
pose stage with identical cubes at the true people (random root nets propose nobody).
``--write-meta`` stores the mixed-bf16 figure in the model file's meta (``bf16_check``, read by
``--precision auto``); the weights are left bit-identical.
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import time
from pathlib import Path
from types import SimpleNamespace

from calib.common.paths import SHARED_DATA_DIR

log = logging.getLogger(__name__)

DEFAULT_SHELF = SHARED_DATA_DIR / "shelf"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("what", choices=["precision"], help="what to benchmark")
    parser.add_argument("--model", required=True, help="model file (ours) or preset name (random weights)")
    parser.add_argument(
        "--inputs",
        choices=["auto", "synthetic", "shelf"],
        default="auto",
        help="test inputs (auto: shelf for a Shelf model, else held-out synthetic framesets)",
    )
    parser.add_argument("--frames", type=int, default=20, help="framesets to compare (default 20)")
    parser.add_argument("--rounds", type=int, default=3, help="timing rounds, precisions interleaved (default 3)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    parser.add_argument("--shelf", type=Path, default=DEFAULT_SHELF, help="Shelf data folder (detections.npz)")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument(
        "--write-meta",
        action="store_true",
        help="store the mixed-bf16 deviation in the model file's meta (weights unchanged)",
    )


def run(args: argparse.Namespace) -> int:
    import torch

    from engine.device import cpu_info

    torch.set_num_threads(args.threads)
    result = bench_precision(args.model, args.inputs, args.frames, args.rounds, args.shelf)
    result.update(cpu=cpu_info(), threads=args.threads, date=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()))
    print(
        f"{args.model}: {result['inputs']} ({result['frames']} framesets), {result['cpu']['model']}, "
        f"native bf16 {result['cpu']['native_bf16']}, {args.threads} threads"
    )
    print(
        f"{'precision':12s} {'s/frame':>9s} {'speed-up':>9s} {'p50 mm':>8s} {'p99 mm':>8s} {'max mm':>8s} {'unmatched':>9s}"
    )
    for name, r in result["precisions"].items():
        d = r["deviation"]
        print(
            f"{name:12s} {r['median_s']:9.4f} {r['speedup_vs_fp32']:9.2f} {d['p50_mm']:8.3f} {d['p99_mm']:8.3f} "
            f"{d['max_mm']:8.3f} {d['unmatched_people']:9d}"
        )
    mixed = result["precisions"]["bf16"]["deviation"]
    print(
        f"mixed bf16 {'passes' if mixed['passed'] else 'FAILS'} the {mixed['bar_mm']} mm p99 bar "
        f"(auto picks bf16 only where it passes and the CPU has native bf16)"
    )
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=1))
    if args.write_meta:
        if result["random_weights"]:
            from engine.errors import CheckpointError

            raise CheckpointError(f"--write-meta needs a model file, got the preset '{args.model}'")
        write_bf16_check(args.model, mixed)
        print(f"wrote meta['bf16_check'] into {args.model} (weights unchanged)")
    return 0


def _inputs(model, kind: str, frames: int, shelf: Path):
    """(rig, runtime kwargs, list of inputs, 'images' | 'heatmaps', description)."""
    if kind == "auto":
        kind = "shelf" if model.config.name == "shelf" else "synthetic"
    if kind == "shelf":
        from training.shelf.data import ShelfDetections

        data = ShelfDetections(shelf)
        step = max(1, len(data.frame_ids) // frames)
        ids = data.frame_ids[::step][:frames]
        return (
            data.rig,
            {},
            [data.input_rows(f) for f in ids],
            "detections",
            f"Shelf detections, frames {ids[0]}..{ids[-1]} every {step}",
        )
    from training.ssl.synthetic_eval import held_out_scenes

    scenes = held_out_scenes()
    chosen = scenes.frames[:frames]
    kw = {"space_size_mm": scenes.key["size"], "space_center_mm": scenes.key["center"]}
    truth = [scenes.ground_truth(s, f) for s, f in chosen]
    return (
        scenes.rig,
        kw,
        [scenes.images_bgr(s, f) for s, f in chosen],
        "images",
        f"held-out synthetic framesets (seeds {list(scenes.seeds)})",
        truth,
    )


def bench_precision(model_ref: str, inputs: str, frames: int, rounds: int, shelf: Path) -> dict:
    """Deviation against fp32 and timing of fp32, mixed bf16 and full bf16 (see module doc)."""
    import numpy as np
    import torch

    from engine.backends.eager import EagerStage
    from engine.checkpoints import load_model_file
    from engine.config import load_preset, preset_names
    from engine.detections import render_input_heatmaps
    from engine.model import build_model
    from engine.posenet import soft_argmax
    from engine.precision import compare_runs
    from engine.runtime import InferenceRuntime

    random_weights = model_ref in preset_names() and not Path(model_ref).is_file()
    if random_weights:
        model = build_model(load_preset(model_ref))
        torch.manual_seed(0)
        for m in model.modules():  # random convs, but BN statistics that keep activations in range
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                m.running_var.uniform_(0.5, 1.5)
                m.running_mean.uniform_(-0.1, 0.1)
        inputs = "synthetic"
    else:
        model, _ = load_model_file(model_ref)
    rig, kw, xs, kind, desc, *rest = _inputs(model, inputs, frames, shelf)
    runtimes = {
        p: InferenceRuntime(model, rig, backend="eager", device="cpu", precision=p, **kw) for p in ("fp32", "bf16")
    }
    full = InferenceRuntime(model, rig, backend="eager", device="cpu", precision="bf16", **kw)
    full.stages = {
        n: EagerStage(m, 5 if n != "backbone" else 4, full.device, torch.bfloat16, True, stage="whole")
        for n, m in (("backbone", model.backbone), ("root_net", model.root_net), ("pose_net", model.pose_net))
    }
    runtimes["bf16-full"] = full
    if kind == "detections":
        g = runtimes["fp32"].projector.geometry
        xs = [torch.from_numpy(render_input_heatmaps(x, g.affine_hm.numpy(), g.heatmap_wh, 3.0, True)) for x in xs]

    def frame(rt, x):
        return rt.from_images(x) if kind == "images" else rt.from_heatmaps(x)

    if random_weights:  # pose stage on identical cubes at the true people (computed once, fp32)
        cfg = model.config
        rt0 = runtimes["fp32"]
        with torch.inference_mode():
            cubes = []
            for x, people in zip(xs, rest[0]):
                centers = torch.as_tensor(people[:, cfg.root_joint], dtype=torch.float32)
                cubes.append((rt0.projector.person_cubes(rt0.heatmaps(rt0.preprocessor(x)), centers).clone(), centers))
        xs = cubes

        def frame(rt, x):
            joints = soft_argmax(rt.stages["pose_net"](x[0]), x[1], rt0.projector.cube_axes, cfg.pose_net.beta)
            cand = torch.zeros((len(x[1]), cfg.num_joints, 5))
            cand[:, :, :3] = joints
            return SimpleNamespace(candidates=cand)

    with torch.inference_mode():
        outs = {p: [frame(rt, x).candidates.numpy() for x in xs] for p, rt in runtimes.items()}  # also warm-up
        samples = {p: [] for p in runtimes}
        for _ in range(rounds):
            for p, rt in runtimes.items():
                t = time.perf_counter()
                for x in xs:
                    frame(rt, x)
                samples[p].append((time.perf_counter() - t) / len(xs))
    med = {p: statistics.median(v) for p, v in samples.items()}
    precisions = {}
    for p in runtimes:
        dev = compare_runs(outs["fp32"], outs[p]).to_meta(desc)
        precisions[p] = {
            "median_s": med[p],
            "samples_s": samples[p],
            "speedup_vs_fp32": med["fp32"] / med[p],
            "deviation": dev,
        }
    people = int(sum((np.asarray(o)[:, 0, 3] >= 0).sum() for o in outs["fp32"]))
    return {
        "model": model_ref,
        "config": model.config.name,
        "random_weights": random_weights,
        "inputs": desc,
        "frames": len(xs),
        "people_fp32": people,
        "rounds": rounds,
        "what_is_timed": "pose stage on identical cubes" if random_weights else "whole frameset",
        "precisions": precisions,
    }


def write_bf16_check(path: str | Path, check: dict) -> None:
    """Set ``meta['bf16_check']`` (JSON) of a model file; every weight stays bit-identical (checked)."""
    import torch

    from engine.checkpoints import read_file
    from engine.errors import CheckpointError

    path = Path(path)
    obj = read_file(path)
    if not isinstance(obj, dict) or "meta" not in obj:
        raise CheckpointError(f"{path}: not a selfpose3d model file; only our release files carry meta")
    obj["meta"] = dict(obj["meta"], bf16_check=json.dumps(check))
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(obj, tmp)
    again = read_file(tmp)
    same = all(
        torch.equal(v, again["state_dict"][k]) and v.dtype == again["state_dict"][k].dtype
        for k, v in obj["state_dict"].items()
    )
    if not same or again["state_dict"].keys() != obj["state_dict"].keys():
        tmp.unlink()
        raise CheckpointError(f"{path}: rewriting the meta changed weights; file left as it was")
    tmp.replace(path)
