"""Viz timings: scene building, headless rendering per backend, 2D overlay of a 5-camera frameset.

Backends are interleaved in rounds (2-thread timings on this machine swing between minutes;
see PLATFORM.md) and medians are reported with ratios.

    .venv/bin/python benchmarks/bench_viz.py [--rounds 15] [--size 960x540]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path


sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from calib.rig_config import load_rig  # noqa: E402
from calib.common.skeleton import PANOPTIC15  # noqa: E402
from viz import offscreen  # noqa: E402
from viz.live import SyntheticFeed, ViewSetup  # noqa: E402
from viz.overlay import overlay_views  # noqa: E402


def _ms(fn, repeat: int) -> float:
    t0 = time.perf_counter()
    for _ in range(repeat):
        fn()
    return (time.perf_counter() - t0) * 1e3 / repeat


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rig", default="configs/rig.yaml")
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--repeat", type=int, default=5, help="calls per round")
    ap.add_argument("--size", default="960x540")
    args = ap.parse_args(argv)
    import cv2

    cv2.setNumThreads(1)
    width, height = (int(v) for v in args.size.split("x"))
    rig = load_rig(args.rig)
    from capture.synthetic.world import SyntheticWorld

    spec = rig.config.synthetic
    world = SyntheticWorld(
        rig.cameras,
        num_people=spec.people,
        seed=spec.seed,
        fps=spec.fps,
        volume_center_mm=rig.volume.center_mm,
        volume_size_mm=rig.volume.size_mm,
    )
    feed = SyntheticFeed(world, rig.name, realtime=False, start_frame=30)
    setup = ViewSetup.from_rig(rig.cameras, rig.volume.center_mm, rig.volume.size_mm, width, height)
    state = setup.scene()
    msg, _ = feed.poll(0)
    state.update_poses(msg)
    images = world.render(30)

    renderers = {"software": offscreen.make_renderer(setup.camera, "software")}
    ok, reason = offscreen.probe_open3d()
    if ok:
        renderers["open3d"] = offscreen.make_renderer(setup.camera, "open3d")
    else:
        print(f"open3d skipped: {reason}", file=sys.stderr)
    tasks = {
        "scene_frame": lambda: state.frame(),
        **{f"render_{k}": (lambda r=r: r.render(state.frame(), setup.camera)) for k, r in renderers.items()},
        "overlay_5x640x360": lambda: overlay_views(images, rig.cameras, msg.poses, PANOPTIC15.edges, msg.track_ids),
    }
    for fn in tasks.values():  # warm-up (first Open3D frame compiles shaders)
        fn()
    samples = {k: [] for k in tasks}
    for _ in range(args.rounds):
        for name, fn in tasks.items():
            samples[name].append(_ms(fn, args.repeat))
    med = {k: statistics.median(v) for k, v in samples.items()}
    for r in renderers.values():
        r.close()
    result = {
        "size": f"{width}x{height}",
        "people": int(len(msg.poses)),
        "rounds": args.rounds,
        "median_ms": {k: round(v, 3) for k, v in med.items()},
        "min_ms": {k: round(min(v), 3) for k, v in samples.items()},
    }
    if "render_open3d" in med:
        result["software_over_open3d"] = round(med["render_software"] / med["render_open3d"], 2)
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
