"""How the per-frameset cost grows with views (1-8), people (0-10) and the room volume.

Light preset (the live model's network), random weights with realistic BN statistics, fp32 eager,
640x360 images on a ring of cameras. People are placed by adding known peaks to the root net's
real output (random root nets propose nobody), so each point does the work of a P-person
frameset. Each point is the median of interleaved rounds of a whole frameset (images -> 3D) with
its stage times, all points interleaved in rounds; the JSON records the CPU model and flags, threads, load and date.

    python benchmarks/bench_scaling.py --threads 1 --out benchmarks/results/scaling_light_1thread.json
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from bench_engine import BumpedStage, realistic_bn  # noqa: E402
from benchutil import environment  # noqa: E402
from calib.camera import Camera, CameraRig  # noqa: E402
from engine.config import load_preset  # noqa: E402
from engine.model import build_model  # noqa: E402
from engine.runtime import InferenceRuntime  # noqa: E402


def ring_rig(n: int, width: int = 640, height: int = 360) -> CameraRig:
    """n cameras on a 4.5 m ring, 2 m high, looking at the room centre (0, 0, 0.9 m)."""
    cams = []
    for i, yaw in enumerate(np.deg2rad(np.arange(n) * 360.0 / n + 10.0)):
        center = np.array([4500.0 * np.cos(yaw), 4500.0 * np.sin(yaw), 2000.0])
        z = np.array([0.0, 0.0, 900.0]) - center
        z /= np.linalg.norm(z)
        x = np.cross(z, [0.0, 0.0, 1.0])
        x /= np.linalg.norm(x)
        K = np.array([[0.6 * width, 0, width / 2], [0, 0.6 * width, height / 2], [0, 0, 1.0]])
        cams.append(
            Camera.from_center(
                f"cam{i}",
                width,
                height,
                K,
                np.zeros(5),
                np.stack([x, np.cross(z, x), z]),
                center,
                source="bench_scaling",
            )
        )
    return CameraRig(tuple(cams))


def bump_for(people: int, bins, space_size, space_center) -> torch.Tensor:
    """(1,X,Y,Z) root-score peaks at ``people`` voxels spread over the room (≥ 3 voxels apart)."""
    bump = torch.zeros(1, *bins)
    X, Y, Z = bins
    for k in range(people):
        ix = 2 + (k * 5) % max(1, X - 4)
        iy = 2 + ((k * 5) // max(1, X - 4)) * 4 + (k % 2) * 2
        bump[0, ix % X, iy % Y, Z // 2] = 1000.0 - k
    return bump


def build_point(views: int, people: int, room_m: float, model, cfg):
    """(runtime, images, description) of one grid point (250 mm root voxels, 8 high)."""
    size = (room_m * 1000.0, room_m * 1000.0, 2000.0)
    side = int(round(room_m * 4)) // 4 * 4
    bins = (side, side, 8)
    c = dataclasses.replace(
        cfg, root_net=dataclasses.replace(cfg.root_net, bins=bins, threshold=500.0, max_people=max(10, people))
    )
    model.config = c
    rig = ring_rig(views)
    rt = InferenceRuntime(
        model,
        rig,
        backend="eager",
        device="cpu",
        precision="fp32",
        space_size_mm=size,
        space_center_mm=(0.0, 0.0, 800.0),
    )
    rt.stages["root_net"] = BumpedStage(rt.stages["root_net"], bump_for(people, bins, size, (0.0, 0.0, 800.0)))
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 255, (cam.height, cam.width, 3), dtype=np.uint8) for cam in rig]
    return rt, images, {"views": views, "people": people, "room_m": room_m, "root_bins": list(bins)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks/results/scaling_light.json")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    cfg = load_preset("light")
    model = build_model(cfg)
    realistic_bn(model)
    grid = (
        [(v, 3, 8.0) for v in (1, 2, 3, 4, 5, 6, 8)]
        + [(5, p, 8.0) for p in (0, 1, 2, 5, 10)]
        + [(5, 3, r) for r in (4.0, 12.0, 16.0)]
    )
    result = {
        **environment(),
        "baseline": "none (absolute cost of this version)",
        "model": "light preset, random weights",
        "precision": "fp32 eager",
        "rounds": args.rounds,
        "points": [],
    }
    points = [build_point(v, p, r, model, cfg) for v, p, r in grid]
    times = [[] for _ in points]
    stages = [[] for _ in points]
    with torch.inference_mode():
        for rt, images, desc in points:  # warm-up; people found
            desc["people_found"] = int((rt.from_images(images).proposals[:, 3] >= 0).sum())
        for r in range(args.rounds):  # every point once per round: machine load spreads over all points
            for i, (rt, images, _) in enumerate(points):
                t = time.perf_counter()
                out = rt.from_images(images)
                times[i].append(time.perf_counter() - t)
                stages[i].append(out.timings_ms)
            print(f"round {r + 1}/{args.rounds}", file=sys.stderr, flush=True)
    for (_rt, _images, desc), ts, st in zip(points, times, stages):
        keys = sorted({k for s in st for k in s})
        q = {
            **desc,
            "frame_ms": 1e3 * statistics.median(ts),
            "frame_ms_min": 1e3 * min(ts),
            "stage_ms": {k: statistics.median(s.get(k, 0.0) for s in st) for k in keys},
        }
        result["points"].append(q)
        print(
            f"views {q['views']} people {q['people']} ({q['people_found']} found) room {q['room_m']:.0f} m "
            f"{q['root_bins']}: {q['frame_ms']:.1f} ms/frameset (min {q['frame_ms_min']:.1f})  "
            + " ".join(f"{k} {t:.1f}" for k, t in q["stage_ms"].items()),
            flush=True,
        )
    result["loadavg_after"] = list(__import__("os").getloadavg())
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
