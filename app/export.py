"""Exports of the poses stream: JSONL (one line per frame), CSV (one row per person and frame),
and TRC (OpenSim marker trajectories) of a recorded JSONL take.

Every writer flushes per frame, so a killed process leaves a readable file (at most the line
being written is lost). Units are mm; JSONL/CSV keep our world frame (z up), TRC converts to
OpenSim's y-up frame.
"""

from __future__ import annotations

import csv
import json
import logging
from pathlib import Path
from typing import Iterator

import numpy as np

from calib.configkit import ConfigError
from capture.messages import Poses

EXPORT_SUFFIXES = (".jsonl", ".csv")

log = logging.getLogger(__name__)


def poses_to_record(msg: Poses) -> dict:
    """Plain dict of a poses message (the JSONL line)."""
    return {
        "rig": msg.rig,
        "seq": msg.seq,
        "frameset_seq": msg.frameset_seq,
        "t_capture_ns": msg.t_capture_ns,
        "t_publish_ns": msg.t_publish_ns,
        "skeleton": msg.skeleton_name,
        "joints": list(msg.joints),
        "people": [
            {
                "id": int(tid),
                "score": round(float(p[0, 3]), 4),
                "joints_mm": np.round(p[:, :3], 2).tolist(),
                "joint_scores": np.round(p[:, 3], 4).tolist(),
            }
            for p, tid in zip(msg.poses, msg.track_ids)
        ],
        "timings_ms": dict(msg.timings_ms),
        "extra": dict(msg.extra),
    }


class JsonlWriter:
    """One JSON object per line per published frame."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._f = open(self.path, "a", encoding="utf-8")
        self.count = 0

    def write(self, msg: Poses) -> None:
        self._f.write(json.dumps(poses_to_record(msg), separators=(",", ":")) + "\n")
        self._f.flush()
        self.count += 1

    def close(self) -> None:
        self._f.close()


class CsvWriter:
    """One row per tracked person per frame: seq, time, id, score, then x,y,z of every joint."""

    def __init__(self, path: str | Path, joints: tuple[str, ...]) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        new = not self.path.exists() or self.path.stat().st_size == 0
        self._f = open(self.path, "a", encoding="utf-8", newline="")
        self._w = csv.writer(self._f)
        self.joints = joints
        if new:
            self._w.writerow(
                ["seq", "t_capture_s", "track_id", "score"] + [f"{j}_{a}_mm" for j in joints for a in "xyz"]
            )
        self.count = 0

    def write(self, msg: Poses) -> None:
        t = msg.t_capture_ns / 1e9
        for p, tid in zip(msg.poses, msg.track_ids):
            self._w.writerow(
                [msg.seq, f"{t:.6f}", int(tid), f"{p[0, 3]:.4f}"] + [f"{v:.2f}" for v in p[:, :3].reshape(-1)]
            )
        self._f.flush()
        self.count += 1

    def close(self) -> None:
        self._f.close()


def open_writer(path: str | Path, joints: tuple[str, ...]):
    """A writer chosen by the file extension (.jsonl or .csv)."""
    suffix = Path(path).suffix.lower()
    if suffix == ".jsonl":
        return JsonlWriter(path)
    if suffix == ".csv":
        return CsvWriter(path, joints)
    raise ConfigError(
        f"--export {path}: unknown extension '{suffix}'; use .jsonl or .csv "
        "(TRC comes from a recorded take: selfpose3d export TAKE.jsonl --format trc)"
    )


def read_jsonl(path: str | Path) -> Iterator[dict]:
    """Records of a JSONL take; unreadable lines (a killed writer's truncated last line, a corrupt
    line in the middle) are skipped with one warning, so one bad line never loses the rest."""
    bad: list[int] = []
    with open(path, encoding="utf-8", errors="replace") as f:
        for number, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                bad.append(number)
                continue
            if isinstance(record, dict):
                yield record
            else:
                bad.append(number)
    if bad:
        log.warning("%s: skipped %d unreadable line(s) (first: line %d)", path, len(bad), bad[0])


def take_tracks(path: str | Path) -> tuple[np.ndarray, dict[int, np.ndarray], list[str]]:
    """A JSONL take as per-track trajectories.

    Returns:
        times_s: (F,) frame capture times relative to the first frame.
        tracks: id -> (F,J,3) mm, NaN where the track is absent.
        joints: joint names.
    """
    records = list(read_jsonl(path))
    if not records:
        raise ValueError(f"{path}: no frames (is it a selfpose3d JSONL export?)")
    joints = records[0]["joints"]
    t0 = records[0]["t_capture_ns"]
    times = np.array([(r["t_capture_ns"] - t0) / 1e9 for r in records])
    ids = sorted({p["id"] for r in records for p in r["people"] if p["id"] >= 0})
    tracks = {i: np.full((len(records), len(joints), 3), np.nan) for i in ids}
    for f, r in enumerate(records):
        for p in r["people"]:
            if p["id"] >= 0:
                tracks[p["id"]][f] = np.asarray(p["joints_mm"])
    return times, tracks, joints


# OpenSim is y-up: (x, y, z)_opensim = (x, z, -y)_ours.
ZUP_TO_YUP = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]])


def write_trc(path: str | Path, times_s: np.ndarray, joints_mm: np.ndarray, joint_names: list[str]) -> Path:
    """Write one person's trajectory (F,J,3) mm as an OpenSim TRC file (y up; gaps left empty)."""
    path = Path(path)
    F, J, _ = joints_mm.shape
    rate = (F - 1) / (times_s[-1] - times_s[0]) if F > 1 and times_s[-1] > times_s[0] else 0.0
    yup = joints_mm @ ZUP_TO_YUP.T
    lines = [
        f"PathFileType\t4\t(X/Y/Z)\t{path.name}",
        "DataRate\tCameraRate\tNumFrames\tNumMarkers\tUnits\tOrigDataRate\tOrigDataStartFrame\tOrigNumFrames",
        f"{rate:.3f}\t{rate:.3f}\t{F}\t{J}\tmm\t{rate:.3f}\t1\t{F}",
        "Frame#\tTime\t" + "\t\t\t".join(joint_names),
        "\t\t" + "\t".join(f"X{i + 1}\tY{i + 1}\tZ{i + 1}" for i in range(J)),
    ]
    for f in range(F):
        vals = ["" if not np.isfinite(v) else f"{v:.2f}" for v in yup[f].reshape(-1)]
        lines.append(f"{f + 1}\t{times_s[f]:.5f}\t" + "\t".join(vals))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def exporter_child(name: str, status_endpoint: str, *, poses_endpoint: str, rig_name: str, path: str) -> None:
    """Supervised process: write every poses message of the stream to ``path``."""
    from app.process import ChildContext
    from capture.bus import Subscriber
    from calib.common.skeleton import PANOPTIC15

    with ChildContext(name, status_endpoint) as ctx:
        writer = open_writer(path, PANOPTIC15.joints)
        try:
            with Subscriber(poses_endpoint, [f"poses/{rig_name}".encode()], hwm=1000) as sub:
                ctx.report("ready")
                while not ctx.stopping:
                    msg = sub.recv(timeout_ms=100)
                    if isinstance(msg, Poses):
                        writer.write(msg)
                    ctx.heartbeat(dropped=sub.stats.gaps)
        finally:
            writer.close()
