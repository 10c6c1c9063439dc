"""The live app on a 4-camera 60 fps video rig (issue 23 item 1): time to ready, framesets per
second, complete ratio, source frames skipped per camera, peak RSS of the process tree, disk
written with ``--record``.

Usage::

    python benchmarks/bench_media_replay.py [--rig RIG.yaml] [--seconds 60] [--record]

Without ``--rig`` it writes a rig for ``../shared/data/pose2sim_demos/Demo_MultiPerson/videos``
(1088x1920 portrait H.264, 60 fps, 100 frames, ``loop: true``) under a stand-in calibration of
the embedded rig's cameras scaled to 1088x1920: capture, sync and transport are measured; the
poses are meaningless until the real (Qualisys) calibration is imported. Prints one JSON line
and writes ``benchmarks/results/media_replay.json``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parents[1]
DEMO = REPO.parent / "shared" / "data" / "pose2sim_demos" / "Demo_MultiPerson" / "videos"


def stand_in_rig(folder: Path) -> Path:
    from calib.camera import CameraRig
    from calib.io import scale_intrinsics
    from calib.rig_config import SourceConfig, load_rig, save_rig

    from app.config import DEFAULT_RIG

    base = load_rig(DEFAULT_RIG)
    names = [f"cam0{i}" for i in range(1, 5)]
    cams = []
    for name, cam in zip(names, list(base.cameras)[:4]):
        c = scale_intrinsics(cam, 1088, 1920)
        cams.append(dataclasses.replace(c, name=name))
    sources = [SourceConfig(kind="file", uri=str(DEMO / f"{n}.mp4"), loop=True) for n in names]
    return save_rig(
        CameraRig(tuple(cams)), folder / "rig.yaml", name="pose2sim_multiperson", sources=sources, volume=base.volume
    )


def tree_rss_mb(proc: psutil.Process) -> float:
    total = 0
    for p in [proc, *proc.children(recursive=True)]:
        try:
            total += p.memory_info().rss
        except psutil.Error:
            pass
    return total / 2**20


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rig", default=None)
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--record", action="store_true")
    ap.add_argument("--model", default="light")
    ap.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="live config override passed on (e.g. worker.compile=false)",
    )
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-media-"))
    rig = Path(args.rig) if args.rig else stand_in_rig(work)
    tag = uuid.uuid4().hex[:8]
    cmd = [
        sys.executable,
        "-m",
        "app.cli_live",
        "--no-viewer",
        "--rig",
        str(rig),
        "--model",
        args.model,
        "--duration",
        str(args.seconds),
        "--out",
        str(work),
        "--set",
        f"poses_endpoint=ipc:///tmp/sp3d-poses-{tag}",
        "--set",
        f"status_endpoint=ipc:///tmp/sp3d-status-{tag}",
        "--set",
        f"capture.stream.endpoint=ipc:///tmp/sp3d-frames-{tag}",
    ]
    for kv in args.overrides:
        cmd += ["--set", kv]
    if args.record:
        cmd += ["--record", str(work / "take")]
    t0 = time.monotonic()
    proc = subprocess.Popen(
        cmd,
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    ps = psutil.Process(proc.pid)
    peak = 0.0
    while proc.poll() is None:
        peak = max(peak, tree_rss_mb(ps))
        time.sleep(0.5)
    stdout, stderr = proc.communicate()
    wall = time.monotonic() - t0
    summary = json.loads(stdout.strip().splitlines()[-1])
    cap = summary.get("capture", {})
    ready = summary.get("ready_after_s")
    run_s = wall - (ready or 0.0)
    disk = sum(f.stat().st_size for f in (work / "take").rglob("*") if f.is_file()) if args.record else None
    result = {
        "cpu": "Intel Xeon (model 167, Sapphire Rapids class), 2 threads, shared",
        "rig": str(rig),
        "overrides": args.overrides,
        "seconds": args.seconds,
        "rc": proc.returncode,
        "ready_after_s": ready,
        "framesets_published": cap.get("published"),
        "framesets_per_s": round(cap.get("published", 0) / run_s, 2),
        "complete_ratio": round(cap["complete"] / cap["published"], 4) if cap.get("published") else None,
        "skipped_per_camera": cap.get("skipped"),
        "slipped_s": cap.get("slipped_ms", 0) / 1000,
        "dropped": cap.get("dropped"),
        "poses_fps": summary.get("fps"),
        "peak_rss_mb": round(peak),
        "record_mb": None if disk is None else round(disk / 2**20),
        "startup_lines": [line for line in stderr.splitlines() if line.startswith("starting (")][:5],
    }
    print(json.dumps(result))
    out = REPO / "benchmarks" / "results" / "media_replay.json"
    out.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
