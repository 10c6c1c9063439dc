"""``selfpose3d overlay``: 3D skeletons reprojected into every camera image, side by side, as a
video: the quickest check that calibration and poses agree.

Examples::

    selfpose3d overlay --synthetic --out overlay.mp4          # the rig's synthetic world + its truth
    selfpose3d overlay --frames tcp://127.0.0.1:5555 --poses ipc:///tmp/selfpose3d-poses --out check.mp4
                                                              # a live or replayed stream + the engine's poses
    selfpose3d overlay --session take1/ --poses-file take1.jsonl --out check.mp4
                                                              # a recording (selfpose3d-live --record --export)
    selfpose3d overlay --images shots/ --calibration calib.json --predictions poses.json --out check/
                                                              # the input and output of `selfpose3d predict`
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from viz.live import DEFAULT_POSES_ENDPOINT

    parser.add_argument(
        "--rig",
        default=None,
        help="rig YAML (the images' calibration; default: the session's rig.yaml, else configs/rig.yaml)",
    )
    src = parser.add_mutually_exclusive_group()
    src.add_argument("--synthetic", action="store_true", help="the rig's synthetic world and its ground truth")
    src.add_argument(
        "--frames", metavar="ENDPOINT", help="frameset publisher (capture or replay), e.g. tcp://127.0.0.1:5555"
    )
    src.add_argument("--session", metavar="DIR", help="a recorded session folder (with --poses-file)")
    src.add_argument("--images", metavar="DIR", help="images of `selfpose3d predict` (with --predictions)")
    parser.add_argument("--predictions", metavar="FILE.json", help="output of `selfpose3d predict` (with --images)")
    parser.add_argument(
        "--calibration", metavar="FILE", help="calibration of --images (any calib format; default: --rig)"
    )
    parser.add_argument(
        "--poses-file", metavar="FILE.jsonl", help="poses exported by `selfpose3d-live --export` (with --session)"
    )
    parser.add_argument(
        "--poses",
        default=DEFAULT_POSES_ENDPOINT,
        metavar="ENDPOINT",
        help=f"poses publisher used with --frames (default {DEFAULT_POSES_ENDPOINT})",
    )
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
    from calib.common.skeleton import PANOPTIC15
    from viz.overlay import overlay_views

    spec = rig.config.synthetic
    world = SyntheticWorld(
        rig.cameras,
        num_people=spec.people if spec else 3,
        seed=spec.seed if spec else 0,
        fps=spec.fps if spec else 15.0,
        volume_center_mm=rig.volume.center_mm,
        volume_size_mm=rig.volume.size_mm,
    )
    for k in range(args.start, args.start + (args.count or 90)):
        people = world.people(k)
        pres = np.flatnonzero(people.present)
        poses = np.concatenate([people.joints_mm[pres], np.ones((len(pres), 15, 1))], axis=-1)
        writer.write(
            overlay_views(
                world.render(k),
                rig.cameras,
                poses,
                PANOPTIC15.edges,
                people.ids[pres],
                args.min_score,
                args.columns,
                args.tile_width,
            )
        )


def _stream(args, rig, writer) -> None:
    from capture.bus import Subscriber
    from capture.messages import FrameSet, Poses, topic_of
    from viz.overlay import FramePoseMatcher, frameset_images, overlay_views

    matcher = FramePoseMatcher()
    t0 = time.monotonic()
    with (
        Subscriber(args.frames, [topic_of("frameset", rig.name)], hwm=64) as frames,
        Subscriber(args.poses, [topic_of("poses", rig.name)], hwm=64) as poses_sub,
    ):
        while (args.count is None or writer.count < args.count) and (
            args.duration is None or time.monotonic() - t0 < args.duration
        ):
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
            writer.write(
                overlay_views(
                    frameset_images(fs, rig.cameras),
                    rig.cameras,
                    msg.poses,
                    msg.edges,
                    msg.track_ids,
                    args.min_score,
                    args.columns,
                    args.tile_width,
                )
            )
    if matcher.unmatched:
        log.warning("%d poses messages had no frameset (too old or never received)", matcher.unmatched)


def _record_poses(rec: dict):
    """(P,J,4) poses, (P,) ids and edges of one JSONL line (app.export.poses_to_record)."""
    import numpy as np

    from calib.common.skeleton import get_skeleton

    people = rec.get("people", [])
    J = len(rec["joints"])
    poses = np.zeros((len(people), J, 4), np.float32)
    for p, person in enumerate(people):
        poses[p, :, :3] = np.asarray(person["joints_mm"], dtype=np.float32).reshape(J, 3)
        poses[p, :, 3] = np.asarray(person.get("joint_scores", [person.get("score", 1.0)] * J), np.float32)
    ids = np.array([int(person.get("id", -1)) for person in people], dtype=np.int64)
    return poses, ids, get_skeleton(rec["skeleton"]).edges


def _session(args, rig, writer) -> None:
    from app.export import read_jsonl
    from capture.session import SessionReader
    from viz.overlay import overlay_views

    reader = SessionReader(args.session)
    by_seq = {s.seq: s for s in reader.sets}
    unmatched = 0
    try:
        for rec in read_jsonl(args.poses_file):
            if args.count is not None and writer.count >= args.count:
                break
            fs = by_seq.get(int(rec.get("frameset_seq", -1)))
            if fs is None:
                unmatched += 1
                continue
            images = {v.camera: reader.image(v) for v in fs.views}
            poses, ids, edges = _record_poses(rec)
            writer.write(
                overlay_views(
                    [images.get(n) for n in rig.names],
                    rig.cameras,
                    poses,
                    edges,
                    ids,
                    args.min_score,
                    args.columns,
                    args.tile_width,
                )
            )
    finally:
        reader.close()
    if unmatched:
        log.warning("%d poses lines have no frameset in %s (recorded in another run?)", unmatched, args.session)


def _predicted(args, cameras, writer) -> None:
    """Overlay `selfpose3d predict` output on its images; people get stable ids from the tracker."""
    import json

    import numpy as np

    from capture.image_framesets import decode_image, pair_image_folder
    from calib.common.skeleton import get_skeleton
    from engine.tracking import PoseTracker
    from viz.overlay import overlay_views

    data = json.loads(Path(args.predictions).read_text(encoding="utf-8"))
    frames = {fs.frame: fs.paths for fs in pair_image_folder(Path(args.images), cameras.names).framesets}
    fps = args.fps or 15.0
    tracker = None
    missing = 0
    for index, rec in enumerate(data.get("frames", [])):
        if args.count is not None and writer.count >= args.count:
            break
        paths = frames.get(rec["frame"])
        if paths is None:
            missing += 1
            continue
        images = [decode_image(p)[0] if p else None for p in paths]
        people = rec.get("people", [])
        skeleton = get_skeleton(rec["skeleton"]["name"])
        J = len(rec["skeleton"]["joints"])
        poses = np.zeros((len(people), J, 4), np.float32)
        for i, person in enumerate(people):
            poses[i, :, :3] = np.asarray(person["joints_mm"], np.float32).reshape(J, 3)
            poses[i, :, 3] = float(person.get("score", 1.0))
        # predict does not track: ids (hence colours) stable across frames come from the tracker.
        tracker = tracker or PoseTracker(min_hits=1, smoothing=None, skeleton=skeleton)
        t_s = (rec["frame"] if isinstance(rec["frame"], int) else index) / fps
        ids = tracker.update(poses[..., :3], poses[:, 0, 3], t_s).track_ids
        edges = [tuple(e) for e in rec["skeleton"]["edges"]]
        writer.write(overlay_views(images, cameras, poses, edges, ids, args.min_score, args.columns, args.tile_width))
    if missing:
        log.warning("%d predicted frames have no images in %s", missing, args.images)


def _rig_path(args) -> str:
    if args.rig:
        return args.rig
    if args.session:
        from capture.session import RIG_NAME

        candidate = Path(args.session) / RIG_NAME
        if candidate.is_file():
            return str(candidate)
    from app.config import DEFAULT_RIG

    return str(DEFAULT_RIG)


def run(args: argparse.Namespace) -> int:
    from calib.rig_config import load_rig

    if not (args.synthetic or args.frames or args.session or args.images):
        print(
            "error: choose a source: --synthetic, --frames ENDPOINT (with --poses ENDPOINT), "
            "--session DIR (with --poses-file FILE.jsonl) or --images DIR (with --predictions FILE.json)",
            file=sys.stderr,
        )
        return 2
    if args.session and not args.poses_file:
        print("error: --session needs --poses-file FILE.jsonl (from `selfpose3d-live --export`)", file=sys.stderr)
        return 2
    if args.images and not args.predictions:
        print("error: --images needs --predictions FILE.json (from `selfpose3d predict`)", file=sys.stderr)
        return 2
    if args.images and args.calibration:
        from calib.io import load_calibration

        return _write(args, lambda writer: _predicted(args, load_calibration(args.calibration), writer), 15.0)
    rig = load_rig(_rig_path(args))
    spec = rig.config.synthetic
    if args.images:
        return _write(args, lambda writer: _predicted(args, rig.cameras, writer), 15.0)
    source = _synthetic if args.synthetic else _session if args.session else _stream
    return _write(args, lambda writer: source(args, rig, writer), spec.fps if spec else 15.0)


def _write(args, produce, default_fps: float) -> int:
    from viz.offscreen import FrameWriter, RenderError

    try:
        with FrameWriter(args.out, args.fps or default_fps) as writer:
            try:
                produce(writer)
            except KeyboardInterrupt:
                log.info("interrupted")
    except (RenderError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"wrote {writer.count} frames to {args.out}")
    return 0 if writer.count > 0 else 1
