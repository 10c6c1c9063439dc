"""``selfpose3d demo``: the live app on the embedded default, headless, for a fixed time.

Runs ``selfpose3d-live --rig configs/rig.yaml --no-viewer --render OUT/demo.mp4 --export
OUT/poses.jsonl --duration S``: 5 synthetic cameras -> ZeroMQ -> inference -> tracking -> poses
stream -> headless 3D render + JSONL export, printing live fps/latency/error and a JSON summary.
It uses the committed light model when there is one; otherwise it says so loudly and runs the
untrained ``light`` preset (the plumbing is real, the poses are not).
"""

from __future__ import annotations

import argparse
import logging
import shutil
from pathlib import Path

from app.commands import live

log = logging.getLogger("selfpose3d.demo")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--duration", type=float, default=30.0, help="seconds of poses after start-up (default 30)")
    parser.add_argument("--out", default="outputs/demo", help="output folder (video, poses, summary)")
    parser.add_argument("--model", default=None, help="model to run (default: the committed light model)")
    parser.add_argument("--rig", default=str(live.DEFAULT_RIG), help="rig YAML (default: the embedded one)")


def run(args: argparse.Namespace) -> int:
    from app.route import resolve_model
    from calib.common.paths import DEFAULT_MODEL
    from calib.configkit import ConfigError

    out = Path(args.out)
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    model = args.model
    if model is None:
        try:
            model = resolve_model(str(DEFAULT_MODEL))
        except ConfigError:  # no committed model file: only that case falls back
            model = "light"
            log.warning(
                "no trained light model is committed yet (%s): running the UNTRAINED 'light' preset. "
                "Capture, transport, inference, tracking and rendering are real; the poses are not.",
                DEFAULT_MODEL,
            )
    live_args = argparse.Namespace(
        rig=args.rig,
        config=None,
        overrides=["worker.max_age_ms=2000"],
        model=model,
        backend=None,
        precision=None,
        no_viewer=True,
        render=str(out / "demo.mp4"),
        record=None,
        export=str(out / "poses.jsonl"),
        duration=None,
        run_for=args.duration,  # poses time: a cold first compile must not eat the demo
        out=str(out),
    )
    rc = live.run(live_args)
    print(
        f"demo outputs in {out}/: demo.mp4 (3D view), poses.jsonl (every poses frame), "
        "live_summary.json, live.resolved.yaml"
    )
    return rc
