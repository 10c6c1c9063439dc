"""``selfpose3d capture``: run a capture process that publishes time-synced framesets.

Examples::

    selfpose3d capture                                     # embedded synthetic rig, ipc, raw frames
    selfpose3d capture configs/rigs/lab.yaml --cameras cam0,cam1 --endpoint tcp://127.0.0.1:5555 --jpeg
    selfpose3d capture --set sync.deadline_ms=50 --seconds 10

Publishes ``frames/<rig>`` and ``status/<process>`` on one endpoint (docs/stream_format.md).
Ctrl-C stops in order. Cameras that fail are retried with backoff while the others stream.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging

from app.config import DEFAULT_RIG
from calib.configkit import load
from app.commands import add_set_option

log = logging.getLogger("selfpose3d.capture")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("rig", nargs="?", default=str(DEFAULT_RIG), help="rig YAML (default: configs/rig.yaml)")
    parser.add_argument("--config", default=None, help="capture config YAML (capture.config.CaptureConfig)")
    add_set_option(parser, "a capture config value", "--set stream.hwm=4")
    parser.add_argument(
        "--rig-set",
        dest="rig_overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a rig YAML value (repeatable)",
    )
    parser.add_argument("--cameras", default=None, help="comma-separated rig cameras this process captures")
    parser.add_argument("--endpoint", default=None, help="publish endpoint (ipc://PATH or tcp://HOST:PORT)")
    parser.add_argument("--jpeg", action="store_true", help="JPEG-encode views (for tcp across hosts)")
    parser.add_argument(
        "--shm",
        action="store_true",
        help="pixels in same-host shared memory, only handles on the wire (lowest latency)",
    )
    parser.add_argument("--max-speed", action="store_true", help="media sources: as fast as possible")
    parser.add_argument("--seconds", type=float, default=None, help="stop after this long")
    parser.add_argument("--frames", type=int, default=None, help="stop after this many framesets")


def build_config(args: argparse.Namespace):
    """The resolved CaptureConfig of the command line."""
    from capture.config import CaptureConfig

    cfg = load(CaptureConfig, args.config, args.overrides)
    stream = cfg.stream
    if args.endpoint:
        stream = dataclasses.replace(stream, endpoint=args.endpoint)
    if args.jpeg or args.shm:
        stream = dataclasses.replace(stream, encoding="jpeg" if args.jpeg else "shm")
    changes = {"stream": stream}
    if args.cameras:
        changes["cameras"] = tuple(c for c in args.cameras.split(",") if c)
    if args.max_speed:
        changes["realtime"] = False
    return dataclasses.replace(cfg, **changes)


def run(args: argparse.Namespace) -> int:
    """Run the command (input errors are reported as one line by app.cli)."""
    from calib.rig_config import load_rig
    from capture.process import build_capture, stop_on_signals

    rig = load_rig(args.rig, args.rig_overrides)
    cfg = build_config(args)
    stop = stop_on_signals()
    proc, pub = build_capture(rig, cfg, stop=stop)
    log.info(
        "capturing rig '%s' cameras %s -> %s (%s)",
        rig.name,
        list(cfg.cameras) or rig.names,
        cfg.stream.endpoint,
        cfg.stream.encoding,
    )
    try:
        report = proc.run(stop, max_sets=args.frames, duration_s=args.seconds)
    finally:
        pub.close()
    lat = sorted(report.latency_ms)
    summary = {
        "sets": report.sets,
        "complete": report.complete,
        "fps": round(report.fps, 2),
        "dropped_publish": report.dropped_publish,
        "dropped_frames": report.dropped_frames,
        "overwritten": report.overwritten,
        "latency_p50_ms": round(lat[len(lat) // 2], 2) if lat else None,
    }
    print(json.dumps(summary))
    return 0
