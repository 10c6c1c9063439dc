"""``selfpose3d overlay``: 3D skeletons reprojected into every camera image, side by side, as a
video: the quickest check that calibration and poses agree.

Examples::

    selfpose3d overlay --synthetic --out overlay.mp4          # the rig's synthetic world + its truth
    selfpose3d overlay --frames tcp://127.0.0.1:5555 --poses tcp://127.0.0.1:5556 --out check.mp4
                                                              # a live or replayed stream + the engine's poses
"""

from __future__ import annotations

import argparse
import logging
import sys
import time

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from viz.live import DEFAULT_POSES_ENDPOINT

    parser.add_argument("--rig", default="configs/rig.yaml", help="rig YAML (the images' calibration)")
    src = parser.add_mutually_exclusive_group()
    src.add_argument("--synthetic", action="store_true", help="the rig's synthetic world and its ground truth")
    src.add_argument("--frames", metavar="ENDPOINT", help="frameset publisher (capture or replay), e.g. tcp://127.0.0.1:5555")
    parser.add_argument("--poses", default=DEFAULT_POSES_ENDPOINT, metavar="ENDPOINT",
                        help=f"poses publisher used with --frames (default {DEFAULT_POSES_ENDPOINT})")
    parser.add_argument("--out", default="overlay.mp4", help="output .mp4/.avi or a folder of PNGs")
    parser.add_argument("--count", type=int, help="number of output frames (--synthetic default 90)")
    parser.add_argument("--duration", type=float, metavar="S", help="stop after S seconds (stream mode)")
    parser.add_argument("--start", type=int, default=0, help="first synthetic frame index")
    parser.add_argument("--tile-width", type=int, default=640, help="width of each camera tile in px")
    parser.add_argument("--columns", type=int, help="tiles per row (default: about square)")
    parser.add_argument("--min-score", type=float, default=0.0, help="hide joints below this score")
    parser.add_argument("--fps", type=float, help="video frame rate (default: the rig's synthetic fps or 15)")


def _synthetic(args, rig, writer) -> None:
    import numpy as np

    from capture.synthetic.world import SyntheticWorld
    from engine.skeleton import PANOPTIC15
    from viz.overlay import overlay_views

    spec = rig.config.synthetic
    world = SyntheticWorld(rig.cameras, num_people=spec.people if spec else 3, seed=spec.seed if spec else 0,
                           fps=spec.fps if spec else 15.0, volume_center_mm=rig.volume.center_mm,
                           volume_size_mm=rig.volume.size_mm)
    for k in range(args.start, args.start + (args.count or 90)):
        people = world.people(k)
        pres = np.flatnonzero(people.present)
        poses = np.concatenate([people.joints_mm[pres], np.ones((len(pres), 15, 1))], axis=-1)
        writer.write(overlay_views(world.render(k), rig.cameras, poses, PANOPTIC15.edges, people.ids[pres],
                                   args.min_score, args.columns, args.tile_width))


def _stream(args, rig, writer) -> None:
    from capture.bus import Subscriber
    from capture.messages import FrameSet, Poses, topic_of
    from viz.overlay import FramePoseMatcher, frameset_images, overlay_views

    matcher = FramePoseMatcher()
    t0 = time.monotonic()
    with Subscriber(args.frames, [topic_of("frameset", rig.name)], hwm=64) as frames, \
            Subscriber(args.poses, [topic_of("poses", rig.name)], hwm=64) as poses_sub:
        while (args.count is None or writer.count < args.count) and \
                (args.duration is None or time.monotonic() - t0 < args.duration):
            while (fs := frames.recv(timeout_ms=0)) is not None:
                if isinstance(fs, FrameSet):
                    matcher.add_frameset(fs)
            msg = poses_sub.recv(timeout_ms=50)
            if not isinstance(msg, Poses):
                continue
            while (fs := frames.recv(timeout_ms=0)) is not None:  # its frameset may have just arrived
                if isinstance(fs, FrameSet):
                    matcher.add_frameset(fs)
            fs = matcher.match(msg)
            if fs is None:
                continue
            writer.write(overlay_views(frameset_images(fs, rig.cameras), rig.cameras, msg.poses, msg.edges,
                                       msg.track_ids, args.min_score, args.columns, args.tile_width))
    if matcher.unmatched:
        log.warning("%d poses messages had no frameset (too old or never received)", matcher.unmatched)


def run(args: argparse.Namespace) -> int:
    from calib.rig_config import load_rig
    from viz.offscreen import FrameWriter, RenderError

    if not args.synthetic and not args.frames:
        print("error: choose a source: --synthetic or --frames ENDPOINT (with --poses ENDPOINT)", file=sys.stderr)
        return 2
    rig = load_rig(args.rig)
    spec = rig.config.synthetic
    try:
        with FrameWriter(args.out, args.fps or (spec.fps if spec else 15.0)) as writer:
            try:
                (_synthetic if args.synthetic else _stream)(args, rig, writer)
            except KeyboardInterrupt:
                log.info("interrupted")
    except (RenderError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"wrote {writer.count} frames to {args.out}")
    return 0 if writer.count > 0 else 1
