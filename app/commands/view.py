"""``selfpose3d view``: the live 3D viewer of the poses stream (window or headless video).

Examples::

    selfpose3d view                                  # window, subscribes to tcp://127.0.0.1:5556
    selfpose3d view --synthetic                      # window, the rig's synthetic people (no engine)
    selfpose3d view --synthetic --render demo.mp4    # headless MP4, no display needed
    selfpose3d view --poses tcp://10.0.0.5:5556 --status tcp://10.0.0.5:5557 --render frames/
"""

from __future__ import annotations

import argparse
import logging
import sys

from app.config import DEFAULT_RIG

log = logging.getLogger(__name__)


def _size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--size must look like 960x540, got '{text}'") from None
    if w < 16 or h < 16:
        raise argparse.ArgumentTypeError(f"--size {text}: too small")
    return w, h


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from viz.live import DEFAULT_POSES_ENDPOINT

    parser.add_argument("--rig", default=str(DEFAULT_RIG), help="rig YAML (cameras for the frusta, volume)")
    parser.add_argument(
        "--poses",
        default=DEFAULT_POSES_ENDPOINT,
        metavar="ENDPOINT",
        help=f"poses publisher to subscribe to (default {DEFAULT_POSES_ENDPOINT})",
    )
    parser.add_argument(
        "--status",
        action="append",
        default=[],
        metavar="ENDPOINT",
        help="status publisher(s) (missing cameras, errors); repeatable",
    )
    parser.add_argument(
        "--synthetic", action="store_true", help="show the rig's synthetic world (ground truth) instead of subscribing"
    )
    parser.add_argument(
        "--render",
        metavar="PATH",
        help="headless: write frames to PATH (.mp4, .avi or a folder of PNGs) instead of a window",
    )
    parser.add_argument("--frames", type=int, help="stop after this many frames (headless; --synthetic default 150)")
    parser.add_argument("--duration", type=float, metavar="S", help="stop (or close the window) after S seconds")
    parser.add_argument("--idle-timeout", type=float, metavar="S", help="stop when no poses arrive for S seconds")
    parser.add_argument(
        "--backend",
        default="auto",
        choices=("auto", "open3d", "software"),
        help="headless renderer (auto: Open3D if it renders here, else software)",
    )
    parser.add_argument("--size", type=_size, default=(960, 540), help="picture size WxH (default 960x540)")
    parser.add_argument("--fps", type=float, help="video frame rate (default: the rig's synthetic fps or 15)")
    parser.add_argument("--follow", action="store_true", help="start following the first person")
    parser.add_argument(
        "--from-camera",
        metavar="NAME",
        help="look through this rig camera (its own resolution; --backend software renders its lens distortion too)",
    )
    parser.add_argument("--min-score", type=float, default=0.0, help="hide joints below this score")


def _feed(args, rig):
    from viz.live import BusFeed, SyntheticFeed

    if not args.synthetic:
        return BusFeed(args.poses, rig.name, args.status)
    from capture.synthetic.world import SyntheticWorld

    spec = rig.config.synthetic
    world = SyntheticWorld(
        rig.cameras,
        num_people=spec.people if spec else 3,
        seed=spec.seed if spec else 0,
        fps=spec.fps if spec else 15.0,
        volume_center_mm=rig.volume.center_mm,
        volume_size_mm=rig.volume.size_mm,
    )
    return SyntheticFeed(world, rig.name, realtime=not args.render)


def run(args: argparse.Namespace) -> int:
    from viz.offscreen import RenderError
    from viz.window import DisplayUnavailable

    try:
        return _run(args)
    except (DisplayUnavailable, RenderError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


def _run(args: argparse.Namespace) -> int:
    from calib.rig_config import load_rig
    from viz.live import ViewSetup, run_headless

    rig = load_rig(args.rig)
    width, height = args.size
    setup = ViewSetup.from_rig(rig.cameras, rig.volume.center_mm, rig.volume.size_mm, width, height)
    if args.from_camera:
        setup.camera = rig.cameras[args.from_camera]  # CalibrationError names the cameras if unknown
    spec = rig.config.synthetic
    fps = args.fps or (spec.fps if spec else 15.0)
    feed = _feed(args, rig)
    if args.render:
        frames = args.frames
        if frames is None and args.duration is None and args.synthetic:
            frames = 150
        n = run_headless(
            feed,
            setup,
            args.render,
            fps=fps,
            max_frames=frames,
            duration_s=args.duration,
            backend=args.backend,
            min_score=args.min_score,
            follow=args.follow,
            idle_timeout_s=args.idle_timeout,
        )
        print(f"wrote {n} frames to {args.render}")
        return 0 if n > 0 else 1
    from viz.window import run_window

    return run_window(
        feed,
        setup,
        min_score=args.min_score,
        follow=args.follow,
        title=f"selfpose3d - {rig.name}",
        duration_s=args.duration,
    )
