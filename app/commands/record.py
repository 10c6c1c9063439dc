"""``selfpose3d record``: record a rig's streams to a session folder.

Examples::

    selfpose3d record sessions/take1 --seconds 30                  # embedded rig, its own sources
    selfpose3d record sessions/take2 --rig lab.yaml --codec png     # lossless
    selfpose3d record sessions/take3 --connect ipc:///tmp/selfpose3d-frames   # from a running capture

The session (per-camera MJPEG/PNG stream + msgpack index + rig.yaml, docs/stream_format.md) is
readable even if the recorder is killed. Replay it with ``selfpose3d replay SESSION``.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys

from app.config import DEFAULT_RIG

log = logging.getLogger("selfpose3d.record")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("out", help="new session folder")
    parser.add_argument("--rig", default=str(DEFAULT_RIG), help="rig YAML (default: configs/rig.yaml)")
    parser.add_argument("--rig-set", dest="rig_overrides", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--cameras", default=None, help="comma-separated cameras to record (default: all)")
    parser.add_argument(
        "--connect",
        default=None,
        metavar="ENDPOINT",
        help="record framesets from a running capture stream instead of the rig's sources",
    )
    parser.add_argument("--codec", choices=("jpeg", "png"), default="jpeg")
    parser.add_argument("--jpeg-quality", type=int, default=95)
    parser.add_argument("--max-speed", action="store_true", help="media sources: as fast as possible")
    parser.add_argument("--seconds", type=float, default=None, help="stop after this long")
    parser.add_argument("--frames", type=int, default=None, help="stop after this many framesets")
    parser.add_argument("--deadline-ms", type=float, default=100.0, help="sync deadline for absent cameras")
    parser.add_argument(
        "--resize",
        action="store_true",
        help="scale media frames to the calibration's image size when they differ (same aspect)",
    )
    parser.add_argument(
        "--curve-server-key",
        default=None,
        metavar="FILE",
        help="with --connect to a CURVE tcp stream: the publisher's public key file (STEM.key)",
    )
    parser.add_argument(
        "--curve-keys",
        default=None,
        metavar="STEM",
        help="with --curve-server-key: this recorder's key pair STEM.key / STEM.key_secret",
    )
    parser.add_argument(
        "--max-gb",
        type=float,
        default=None,
        metavar="GB",
        help="stop cleanly once the session holds this much (default: keep 5%% of the disk free)",
    )


def run(args: argparse.Namespace) -> int:
    """Run the command (input errors are reported as one line by app.cli)."""
    from calib.rig_config import load_rig
    from capture.source import SourceError
    from capture.process import LiveRig, lockstep, rig_fps, stop_on_signals
    from capture.recorder import (
        DiskBudget,
        DiskMeter,
        Recorder,
        check_disk_space,
        estimate_bytes_per_s,
        record_live,
        record_stream,
    )

    rig = load_rig(args.rig, args.rig_overrides)
    cameras = [c for c in args.cameras.split(",") if c] if args.cameras else rig.names
    budget = DiskBudget.for_path(args.out, args.max_gb)
    check_disk_space(args.out, estimate_bytes_per_s(rig, cameras, args.codec), budget, what="record")
    limits = {"budget": budget, "on_progress": lambda *a: print(DiskMeter.line(*a), file=sys.stderr)}
    from capture.bus import curve_client_from_files

    curve = curve_client_from_files(args.curve_keys, args.curve_server_key) if args.curve_server_key else None
    stop = stop_on_signals()
    with Recorder(args.out, rig, cameras, codec=args.codec, jpeg_quality=args.jpeg_quality) as rec:
        if args.connect:
            from capture.bus import Subscriber
            from capture.messages import topic_of

            with Subscriber(args.connect, [topic_of("frameset", rig.name)], hwm=64, curve=curve) as sub:
                report = record_stream(rec, sub, stop, max_sets=args.frames, duration_s=args.seconds, **limits)
        else:
            from capture.sources.factory import build_sources

            sources = build_sources(
                rig, cameras, stop=stop, realtime=False if args.max_speed else None, resize=args.resize
            )
            replay = lockstep(sources)  # media: one frame index for every camera, all sets complete
            live = LiveRig(
                sources,
                tolerance_ms=500.0 / rig_fps(rig, cameras),
                deadline_ms=args.deadline_ms,
                lossless=args.max_speed or replay,
                lockstep=replay,
                frame_shapes={c: (rig.cameras[c].height, rig.cameras[c].width, 3) for c in cameras},
            )
            report = record_live(rec, live, stop, max_sets=args.frames, duration_s=args.seconds, **limits)
    if report.stopped:
        print(
            f"record: stopped, {report.stopped}: {report.sets} framesets kept in {args.out} (readable)", file=sys.stderr
        )
    print(json.dumps({"session": str(args.out), **report.summary()}))
    if report.sets == 0 and not report.failed:
        reason = live.size_error if not args.connect and live.size_error else "no frameset arrived"
        raise SourceError(f"record: nothing recorded: {reason}")
    return 1 if report.failed else 0
