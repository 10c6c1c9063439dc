"""Synthetic-world timings: rendering 5 views at 640x360 (target >= 15 fps for all 5), truth, detector.

Variants (full render, render without anti-aliasing, truth with labels, simulated detector) are
interleaved in rounds, because 2-core timings on this shared machine swing between minutes
(PLATFORM.md); medians, the best round and the load average are reported as JSON.

    .venv/bin/python benchmarks/bench_synth.py [--rig configs/rig.yaml] [--people 3] [--rounds 10]
        [--frames 15] [--sample out.png]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from calib.rig_config import load_rig  # noqa: E402
from capture.synthetic.detector import DetectorParams  # noqa: E402
from capture.synthetic.render import RenderOptions  # noqa: E402
from capture.synthetic.world import SyntheticWorld  # noqa: E402


def _world(rig, volume, people: int, options: RenderOptions) -> SyntheticWorld:
    return SyntheticWorld(
        rig.cameras,
        num_people=people,
        seed=0,
        fps=15.0,
        volume_center_mm=volume.center_mm,
        volume_size_mm=volume.size_mm,
        render_options=options,
    )


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rig", default=str(ROOT / "configs" / "rig.yaml"))
    ap.add_argument("--people", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--frames", type=int, default=15, help="frames per variant per round")
    ap.add_argument("--sample", default=None, help="write a 2x3 mosaic of one frame's views to this PNG")
    args = ap.parse_args(argv)

    rig = load_rig(args.rig)
    full = _world(rig, rig.volume, args.people, RenderOptions())
    no_aa = _world(rig, rig.volume, args.people, RenderOptions(antialias=False))
    for w in (full, no_aa):
        w.render(0)  # build backgrounds (one-time cost, reported separately)
    t0 = time.perf_counter()
    _ = _world(rig, rig.volume, args.people, RenderOptions()).renderer  # the property builds the renderer
    setup_s = time.perf_counter() - t0
    params = DetectorParams()
    variants = {
        "render_5views": lambda k: full.render(k),
        "render_5views_no_aa": lambda k: no_aa.render(k),
        "people_only": lambda k: SyntheticWorld.people(full, k),
        "truth_5views": lambda k: full.truth(k),
        "detect_soft_5views": lambda k: full.detect(k, params),
    }
    times = {name: [] for name in variants}
    frame = 1
    for _ in range(args.rounds):
        for name, fn in variants.items():
            t = time.perf_counter()
            for _ in range(args.frames):
                frame += 1
                fn(frame)  # a new frame each call: motion, layout and drawing are all timed
            times[name].append((time.perf_counter() - t) * 1e3 / args.frames)
    med = {n: statistics.median(v) for n, v in times.items()}
    cams = rig.cameras
    result = {
        "rig": str(args.rig),
        "cameras": len(cams),
        "resolution": [cams[0].width, cams[0].height],
        "people": args.people,
        "ms_per_frame_median": {n: round(v, 2) for n, v in med.items()},
        "ms_per_frame_best": {n: round(min(v), 2) for n, v in times.items()},
        "render_fps_median": round(1e3 / med["render_5views"], 1),
        "render_ms_per_view_median": round(med["render_5views"] / len(cams), 2),
        "aa_cost_ratio": round(med["render_5views"] / med["render_5views_no_aa"], 2),
        "meets_15fps_target": med["render_5views"] <= 1e3 / 15,
        "background_setup_s": round(setup_s, 2),
        "loadavg": [round(x, 2) for x in os.getloadavg()],
        "cpu_count": os.cpu_count(),
    }
    if args.sample:
        import cv2

        imgs = full.render(45)
        blank = np.zeros_like(imgs[0])
        tiles = imgs + [blank] * (6 - len(imgs))
        mosaic = np.vstack([np.hstack(tiles[:3]), np.hstack(tiles[3:6])])
        cv2.imwrite(args.sample, mosaic)
        result["sample"] = args.sample
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
