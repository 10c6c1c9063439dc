"""``selfpose3d replay``: publish a recorded session or a CMU Panoptic sequence as a live stream.

Examples::

    selfpose3d replay sessions/take1                      # original speed, ipc, raw frames
    selfpose3d replay sessions/take1 --max-speed --lossless --wait-subscriber 5
    selfpose3d replay /data/panoptic/160906_pizza1 --cameras 00_03,00_06,00_12,00_13,00_23 --speed 0.5

Same framesets for the same input (original sequence numbers and view timestamps); only the
publish time is new. Topic ``frames/<rig>``: the session's rig name, or the sequence folder name.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from calib.common.errors import MissingInputError

log = logging.getLogger("selfpose3d.replay")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from capture.config import DEFAULT_ENDPOINT

    parser.add_argument("source", help="session folder or Panoptic sequence folder")
    parser.add_argument("--endpoint", default=DEFAULT_ENDPOINT, help=f"publish endpoint (default {DEFAULT_ENDPOINT})")
    parser.add_argument("--allow-remote", action="store_true", help="permit a non-loopback tcp bind")
    parser.add_argument("--cameras", default=None, help="comma-separated cameras (Panoptic default: VoxelPose's 5)")
    parser.add_argument(
        "--rig",
        default=None,
        metavar="RIG_YAML",
        help="publish as this rig (its name is the topic; its cameras, in its order, unless --cameras)",
    )
    parser.add_argument(
        "--write-rig",
        default=None,
        metavar="OUT_YAML",
        help="Panoptic: write a rig YAML for the replayed cameras from the sequence calibration",
    )
    parser.add_argument("--speed", type=float, default=1.0, help="playback rate (1 = original)")
    parser.add_argument("--max-speed", action="store_true", help="publish as fast as possible")
    parser.add_argument("--jpeg", action="store_true", help="JPEG views on the wire (default raw bgr8)")
    parser.add_argument("--frames", type=int, default=None, help="stop after this many framesets")
    parser.add_argument("--first-frame", type=int, default=None, help="Panoptic: first HD frame number")
    parser.add_argument("--last-frame", type=int, default=None, help="Panoptic: last HD frame number")
    parser.add_argument(
        "--wait-subscriber",
        type=float,
        default=0.0,
        metavar="S",
        help="wait up to S seconds for a subscriber before starting",
    )
    parser.add_argument(
        "--lossless", action="store_true", help="wait for slow subscribers instead of dropping (offline evaluation)"
    )


def _framesets(args: argparse.Namespace, encoding: str):
    from capture.session import SessionReader, is_session

    src = Path(args.source)
    cameras = [c for c in args.cameras.split(",") if c] if args.cameras else None
    rig_name = None
    if args.rig:
        from calib.rig_config import load_rig

        rig = load_rig(args.rig)
        rig_name, cameras = rig.name, cameras or rig.names
    if is_session(src):
        from capture.replay import session_framesets

        reader = SessionReader(src)
        if reader.truncated:
            log.warning("%s: ignored a truncated tail (recorder was interrupted)", src)
        frames = session_framesets(reader, encoding=encoding, cameras=cameras)
        if rig_name is not None:
            import dataclasses

            frames = (dataclasses.replace(fs, rig=rig_name) for fs in frames)
        return rig_name or reader.rig_name, frames
    if (src / "hdImgs").is_dir() or (src / "hdVideos").is_dir():
        from calib.io_panoptic import VOXELPOSE_HD_CAMERAS
        from capture.replay import panoptic_framesets
        from capture.sources.panoptic import panoptic_hd_cameras

        available = panoptic_hd_cameras(src)
        if cameras is None:
            cameras = [c for c in VOXELPOSE_HD_CAMERAS if c in available] or available
        rig_name = rig_name or src.name
        if args.write_rig:
            _write_panoptic_rig(src, cameras, rig_name, Path(args.write_rig))
        return rig_name, panoptic_framesets(
            src, cameras, rig=rig_name, encoding=encoding, first_frame=args.first_frame, last_frame=args.last_frame
        )
    raise MissingInputError(
        f"{src}: neither a session folder (index.msgpack) nor a Panoptic sequence (hdImgs/ or hdVideos/)"
    )


def _write_panoptic_rig(seq_dir: Path, cameras: list[str], name: str, out: Path) -> None:
    """A rig YAML for the sequence: its own calibration, Panoptic sources, the replayed cameras."""
    from calib.io_panoptic import load_panoptic_calibration
    from calib.rig_config import SourceConfig, save_rig
    from capture.sources.panoptic import panoptic_calibration_path

    cams = load_panoptic_calibration(panoptic_calibration_path(seq_dir), cameras)
    save_rig(cams, out, name=name, sources=[SourceConfig(kind="panoptic", uri=str(seq_dir.resolve())) for _ in cameras])
    log.info("wrote %s (cameras %s, calibration of %s)", out, cameras, seq_dir.name)


def run(args: argparse.Namespace) -> int:
    """Run the command (input errors are reported as one line by app.cli)."""
    from capture.bus import Publisher
    from capture.messages import Status, now_ns
    from capture.process import stop_on_signals
    from capture.replay import replay

    rig_name, framesets = _framesets(args, "jpeg" if args.jpeg else "bgr8")
    stop = stop_on_signals()
    process = f"replay-{rig_name}"
    with Publisher(args.endpoint, allow_remote=args.allow_remote) as pub:
        if args.wait_subscriber > 0 and not pub.wait_for_subscriber(args.wait_subscriber):
            log.warning("no subscriber after %.1f s; replaying anyway", args.wait_subscriber)
        pub.send(Status(process, "running", now_ns()))
        report = replay(
            framesets,
            pub,
            stop,
            speed=None if args.max_speed else args.speed,
            wait_ms=10_000.0 if args.lossless else 0.0,
            max_sets=args.frames,
            status_process=process,
        )
        pub.send(
            Status(process, "stopping", now_ns(), fps=report.sent / max(report.seconds, 1e-9), dropped=report.dropped),
            wait_ms=1000,
        )  # the last word should not be dropped
    print(
        json.dumps(
            {"rig": rig_name, "sent": report.sent, "dropped": report.dropped, "seconds": round(report.seconds, 3)}
        )
    )
    return 0
