"""``selfpose3d export TAKE.jsonl --format trc|csv|bvh [--track ID] --out FILE|DIR``: convert a
recorded take (the JSONL written by ``selfpose3d-live --export``) for other tools.

TRC (OpenSim marker trajectories, y up, mm) holds one person: ``--track`` picks the track id
(default: the longest track); CSV holds every tracked person, one row per person and frame.
BVH (Blender, MotionBuilder; app/bvh.py) writes one skeleton per person into the folder
``--out`` as ``<take stem>_id<N>.bvh`` (every track, or only ``--track``), in ``--units``.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import numpy as np

from calib.configkit import ConfigError

log = logging.getLogger("selfpose3d.export")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("take", help="JSONL take written by selfpose3d-live --export")
    parser.add_argument("--format", choices=["trc", "csv", "bvh"], required=True)
    parser.add_argument(
        "--track",
        type=int,
        default=None,
        help="TRC: track id (default: the longest track); BVH: only this track (default: all)",
    )
    parser.add_argument("--units", choices=["mm", "cm", "m"], default="mm", help="BVH length unit (default mm)")
    parser.add_argument("--out", required=True, help="output file (trc, csv) or folder (bvh)")


def _load_tracks(take: Path) -> tuple[np.ndarray, dict[int, np.ndarray], list[str]]:
    """``app.export.take_tracks`` with a malformed take reported as a ConfigError naming it."""
    from app.export import take_tracks

    try:
        times, tracks, joints = take_tracks(take)
    except (ValueError, KeyError, TypeError, IndexError) as exc:
        raise ConfigError(
            f"{take}: not a selfpose3d JSONL take ({type(exc).__name__}: {exc}); "
            "record one with selfpose3d-live --export TAKE.jsonl"
        ) from None
    if not tracks:
        raise ConfigError(f"{take}: no tracked person (ids are -1); nothing to export")
    return times, tracks, joints


def _csv(take: Path, out: str) -> int:
    import csv

    from app.export import read_jsonl

    rows = 0
    with open(out, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        joints = None
        try:
            for rec in read_jsonl(take):
                if joints is None:
                    joints = rec["joints"]
                    w.writerow(
                        ["seq", "t_capture_s", "track_id", "score"] + [f"{j}_{a}_mm" for j in joints for a in "xyz"]
                    )
                for p in rec["people"]:
                    w.writerow(
                        [rec["seq"], f"{rec['t_capture_ns'] / 1e9:.6f}", p["id"], p["score"]]
                        + [f"{v:.2f}" for v in np.asarray(p["joints_mm"]).reshape(-1)]
                    )
                    rows += 1
        except (KeyError, TypeError) as exc:
            raise ConfigError(
                f"{take}: not a selfpose3d JSONL take (missing {exc}); "
                "record one with selfpose3d-live --export TAKE.jsonl"
            ) from None
    print(f"wrote {rows} rows to {out}")
    return 0


def _bvh(take: Path, args: argparse.Namespace) -> int:
    from app.bvh import BvhError, export_take_bvh

    if Path(args.out).is_file():
        raise ConfigError(f"--out {args.out}: BVH export writes one file per person into a folder; give a folder")
    times, tracks, joints = _load_tracks(take)
    ids = None if args.track is None else [args.track]
    try:
        written = export_take_bvh(times, tracks, joints, args.out, take.stem, units=args.units, track_ids=ids)
    except BvhError as exc:
        raise ConfigError(f"{take}: {exc}") from None
    for path, motion in written:
        held = int(motion.held.sum())
        print(
            f"wrote {path} ({len(motion.held)} frames at {1 / motion.frame_time_s:.2f} fps, "
            f"{held} held while the person was absent)"
        )
    return 0


def run(args: argparse.Namespace) -> int:
    from app.export import write_trc

    take = Path(args.take)
    if not take.is_file():
        raise ConfigError(f"{take}: take not found (record one with selfpose3d-live --export TAKE.jsonl)")
    if args.format == "csv":
        return _csv(take, args.out)
    if args.format == "bvh":
        return _bvh(take, args)
    times, tracks, joints = _load_tracks(take)
    if args.track is None:
        track = max(tracks, key=lambda t: int(np.isfinite(tracks[t][:, 0, 0]).sum()))
    elif args.track in tracks:
        track = args.track
    else:
        raise ConfigError(f"{take}: no track {args.track}; tracks: {sorted(tracks)}")
    traj = tracks[track]
    present = np.flatnonzero(np.isfinite(traj[:, 0, 0]))
    span = slice(present[0], present[-1] + 1)
    write_trc(args.out, times[span] - times[span][0], traj[span], joints)
    print(f"wrote track {track} ({len(present)} frames) to {args.out}")
    return 0
