"""The 3D part (root net + pose net, released config, fp32) against the ORIGINAL SelfPose3d code.

The original is imported from a checkout OUTSIDE this repository (its licence, CC BY-NC-SA, keeps
its code out of ours): pass ``--original PATH`` (the folder holding its ``lib/``); without it the
benchmark prints why and exits 0. Both sides get the same weights (random V2V convolutions with
realistic BN statistics), the same rendered heatmaps of 3 people and the same root-score bump
(random root nets propose nobody), and run their own projection, root net, NMS, per-person
pose net and soft-argmax. Variants are interleaved in rounds; medians and within-run ratios go to
the JSON with the CPU model and its bf16/AMX/AVX-512 flags. The project's older upstream-style
stand-in (``bench_engine.upstream_style_3d``) is timed in the same rounds.

    python benchmarks/bench_original.py --original /tmp/selfpose3d_original --threads 1 2
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import importlib
import json
import statistics
import sys
import time
import types
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from benchutil import environment  # noqa: E402
from bench_engine import BumpedStage, RIGS, people_bump, realistic_bn, render, upstream_style_3d  # noqa: E402
from calib.io import load_calibration  # noqa: E402
from engine.config import load_preset  # noqa: E402
from engine.model import build_model  # noqa: E402
from engine.project import image_scale  # noqa: E402
from engine.runtime import InferenceRuntime  # noqa: E402


def import_original(root: Path) -> types.SimpleNamespace:
    """The original's 3D modules, imported from ``root/lib`` without running its package
    ``__init__`` files (they pull in training-only dependencies: torchvision, vedo)."""
    lib = root / "lib"
    for pkg in ("models", "utils", "core"):
        mod = types.ModuleType(pkg)
        mod.__path__ = [str(lib / pkg)]
        sys.modules[pkg] = mod
    sys.modules.setdefault("vedo", types.SimpleNamespace(Volume=None, show=None))  # visualisation only
    return types.SimpleNamespace(
        v2v=importlib.import_module("models.v2v_net"),
        project=importlib.import_module("models.project_layer"),
        proposal=importlib.import_module("models.cuboid_proposal_net_soft"),
        posereg=importlib.import_module("models.pose_regression_net"),
    )


def original_config(cfg, space_size, space_center, threshold):
    """The original's cfg fields the 3D part reads, from our model config."""
    ns = types.SimpleNamespace
    return ns(
        NETWORK=ns(
            IMAGE_SIZE=list(cfg.backbone.image_size),
            HEATMAP_SIZE=list(cfg.backbone.heatmap_size),
            NUM_JOINTS=cfg.num_joints,
            BETA=cfg.pose_net.beta,
            ROOTNET_ROOTHM=True,
            ROOTNET_TRAIN_SYNTH=False,
            ROOTNET_SYN_RANGE=None,
        ),
        MULTI_PERSON=ns(
            SPACE_SIZE=list(space_size),
            SPACE_CENTER=list(space_center),
            INITIAL_CUBE_SIZE=list(cfg.root_net.bins),
            MAX_PEOPLE_NUM=cfg.root_net.max_people,
            THRESHOLD=threshold,
        ),
        DATASET=ns(ROOTIDX=cfg.root_joint),
        PICT_STRUCT=ns(GRID_SIZE=list(cfg.pose_net.cube_size_mm), CUBE_SIZE=list(cfg.pose_net.bins)),
        TRAIN=ns(BATCH_SIZE=1),
    )


def original_meta(rig, input_size):
    """Per view the batched meta dict the original's project layer reads (batch of 1)."""
    meta = []
    for cam in rig:
        k1, k2, p1, p2, k3 = (float(v) for v in cam.dist)
        meta.append(
            {
                "center": torch.tensor([[cam.width / 2.0, cam.height / 2.0]]),
                "scale": torch.tensor([image_scale(cam.width, cam.height, input_size)]),
                "rotation": torch.tensor([0.0]),
                "camera": {
                    "R": torch.tensor(cam.R, dtype=torch.float32)[None],
                    "T": torch.tensor(cam.center_mm, dtype=torch.float32).reshape(1, 3, 1),
                    "fx": torch.tensor([float(cam.K[0, 0])]),
                    "fy": torch.tensor([float(cam.K[1, 1])]),
                    "cx": torch.tensor([float(cam.K[0, 2])]),
                    "cy": torch.tensor([float(cam.K[1, 2])]),
                    "k": torch.tensor([[[k1], [k2], [k3]]]),
                    "p": torch.tensor([[[p1], [p2]]]),
                },
            }
        )
    return meta


class OriginalThreeD:
    """The original's inference 3D part: root net + proposal layer, then one pose-net call per
    valid candidate (as its ``MultiPersonPoseNet.forward`` does at test time)."""

    def __init__(self, orig, ocfg, model, bump):
        self.project = orig.project.ProjectLayer(ocfg)
        self.root_v2v = orig.v2v.V2VNet(1, 1).eval()
        self.root_v2v.load_state_dict(model.root_net.v2v_net.state_dict())
        self.proposal = orig.proposal.ProposalLayerSoft(ocfg)
        self.pose = orig.posereg.PoseRegressionNet(ocfg).eval()
        self.pose.v2v_net.load_state_dict(model.pose_net.v2v_net.state_dict())
        self.ocfg, self.bump = ocfg, bump
        self.root_id = ocfg.DATASET.ROOTIDX

    def __call__(self, heatmaps, meta):
        # as shipped the original runs with the default FPU state; our eager stages switch the
        # calling thread to flush-to-zero, which would otherwise speed the original up too
        torch.set_flush_denormal(False)
        with torch.no_grad():
            hms = [heatmaps[v : v + 1] for v in range(heatmaps.shape[0])]  # per view (1,J,h,w)
            mp = self.ocfg.MULTI_PERSON
            root_hms = [h[:, self.root_id][:, None].clone() for h in hms]
            cubes, grids = self.project(root_hms, meta, mp.SPACE_SIZE, [mp.SPACE_CENTER], mp.INITIAL_CUBE_SIZE)
            root_cubes = self.root_v2v(cubes).squeeze(1) + self.bump
            centers = self.proposal(root_cubes, meta, grids)  # (1,K,5)
            K, J = mp.MAX_PEOPLE_NUM, self.ocfg.NETWORK.NUM_JOINTS
            pred = torch.zeros(1, K, J, 5)
            pred[:, :, :, 3:] = centers[:, :, 3:].reshape(1, -1, 1, 2)
            for n in range(K):
                if bool((pred[:, n, 0, 3] >= 0).any()):
                    pred[:, n, :, 0:3] = self.pose(hms, meta, centers[:, n])
        return pred[0]


def bench(original: Path, threads: int, rounds: int, compile_: bool, log) -> dict:
    torch.set_num_threads(threads)
    cfg = load_preset("released")
    rig = load_calibration(RIGS["released"])
    model = build_model(cfg)
    realistic_bn(model)
    pristine = copy.deepcopy(model)  # runtimes convert their modules to channels-last in place
    heatmaps = render(rig, cfg)
    orig = import_original(original)
    runtimes = {
        "ours_eager": InferenceRuntime(copy.deepcopy(pristine), rig, backend="eager", device="cpu", precision="fp32")
    }
    if compile_:
        runtimes["ours_compile"] = InferenceRuntime(
            copy.deepcopy(pristine), rig, backend="eager", device="cpu", precision="fp32", compile=True
        )
    rt0 = runtimes["ours_eager"]
    bump = people_bump(cfg, rt0.space_size_mm, rt0.space_center_mm)
    threshold = 500.0
    for rt in runtimes.values():
        rt.config = dataclasses.replace(cfg, root_net=dataclasses.replace(cfg.root_net, threshold=threshold))
        rt.stages["root_net"] = BumpedStage(rt.stages["root_net"], bump)
    ocfg = original_config(cfg, rt0.space_size_mm, rt0.space_center_mm, threshold)
    original_3d = OriginalThreeD(orig, ocfg, pristine, bump)
    meta = original_meta(rig, cfg.backbone.image_size)
    standin_model = copy.deepcopy(pristine)

    def standin():
        torch.set_flush_denormal(False)  # default FPU state, like the original
        return upstream_style_3d(
            standin_model, rig, heatmaps, cfg, rt0.space_size_mm, rt0.space_center_mm, threshold, bump
        )

    variants = {"original": lambda: original_3d(heatmaps, meta), "standin": standin}
    for name, rt in runtimes.items():
        variants[name] = lambda rt=rt: rt.from_heatmaps(heatmaps).candidates
    outs = {k: fn() for k, fn in variants.items()}  # warm-up (oneDNN primitives, compilation) + outputs
    samples = {k: [] for k in variants}
    for r in range(rounds):
        for k, fn in variants.items():
            t = time.perf_counter()
            fn()
            samples[k].append(time.perf_counter() - t)
        log(
            f"  {threads} thread(s) round {r + 1}/{rounds}: "
            + ", ".join(f"{k} {v[-1]:.2f}s" for k, v in samples.items())
        )
    med = {k: statistics.median(v) for k, v in samples.items()}
    ref = outs["original"]
    valid = ref[:, 0, 3] >= 0
    parity = {"people": int(valid.sum())}
    for k, out in outs.items():
        if k != "original":
            same = bool(torch.equal(out[:, 0, 3] >= 0, valid))
            parity[f"{k}_max_joint_diff_mm_vs_original"] = (
                float((out[valid, :, :3] - ref[valid, :, :3]).norm(dim=-1).max()) if same else None
            )
    return {
        "threads": threads,
        "rounds": rounds,
        "median_s": med,
        "samples_s": samples,
        "ratio_original_over": {k: med["original"] / v for k, v in med.items()},
        "parity": parity,
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--original", type=Path, help="checkout of the original SelfPose3d (folder holding lib/)")
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--no-compile", action="store_true", help="skip the torch.compile'd variant")
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks/results/original_3d_released.json")
    args = ap.parse_args(argv)
    log = lambda m: print(m, file=sys.stderr, flush=True)  # noqa: E731
    if args.original is None or not (args.original / "lib" / "models" / "v2v_net.py").is_file():
        log(
            f"skipped: no original SelfPose3d checkout given (--original {args.original}); "
            "pass the folder that holds its lib/models/v2v_net.py"
        )
        return 0
    result = {
        **environment(),
        "baseline": f"original SelfPose3d code from {args.original}",
        "config": "released (80x80x20 root grid, 64^3 pose cubes, 5 views, 3 people)",
        "weights": "random V2V convolutions, realistic BN statistics, identical on both sides",
        "runs": [],
    }
    for t in args.threads:
        result["runs"].append(bench(args.original, t, args.rounds, not args.no_compile, log))
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=1))
    for run in result["runs"]:
        log(
            f"== {run['threads']} thread(s): median s "
            + json.dumps({k: round(v, 3) for k, v in run["median_s"].items()})
        )
        log("   original / variant: " + json.dumps({k: round(v, 2) for k, v in run["ratio_original_over"].items()}))
        log(f"   parity {run['parity']}")
    log(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
