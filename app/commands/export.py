"""``selfpose3d export TAKE.jsonl --format trc|csv [--track ID] --out FILE``: convert a recorded
take (the JSONL written by ``selfpose3d-live --export``) for other tools.

TRC (OpenSim marker trajectories, y up, mm) holds one person: ``--track`` picks the track id
(default: the longest track); CSV holds every tracked person, one row per person and frame.
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
    parser.add_argument("--format", choices=["trc", "csv"], required=True)
    parser.add_argument("--track", type=int, default=None, help="TRC: track id (default: the longest track)")
    parser.add_argument("--out", required=True, help="output file")


def run(args: argparse.Namespace) -> int:
    from app.export import read_jsonl, take_tracks, write_trc

    take = Path(args.take)
    if not take.is_file():
        raise ConfigError(f"{take}: take not found (record one with selfpose3d-live --export TAKE.jsonl)")
    if args.format == "csv":
        import csv

        rows = 0
        with open(args.out, "w", newline="", encoding="utf-8") as f:
            w = csv.writer(f)
            joints = None
            for rec in read_jsonl(take):
                if joints is None:
                    joints = rec["joints"]
                    w.writerow(["seq", "t_capture_s", "track_id", "score"]
                               + [f"{j}_{a}_mm" for j in joints for a in "xyz"])
                for p in rec["people"]:
                    w.writerow([rec["seq"], f"{rec['t_capture_ns'] / 1e9:.6f}", p["id"], p["score"]]
                               + [f"{v:.2f}" for v in np.asarray(p["joints_mm"]).reshape(-1)])
                    rows += 1
        print(f"wrote {rows} rows to {args.out}")
        return 0
    times, tracks, joints = take_tracks(take)
    if not tracks:
        raise ConfigError(f"{take}: no tracked person (ids are -1); nothing to export as TRC")
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
