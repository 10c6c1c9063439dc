"""Fixtures for the viz tests: a known standing person and a poses-like message."""

from __future__ import annotations

import time
from types import SimpleNamespace

import numpy as np
import pytest

from calib.common.skeleton import PANOPTIC15

# A standing person in Panoptic-15 order, feet on the floor, mm, z up, facing -y.
STANDING_MM = np.array(
    [
        [0, 0, 1500],
        [0, -80, 1650],
        [0, 0, 950],
        [-180, 0, 1450],
        [-260, -60, 1180],
        [-300, -120, 930],
        [-100, 0, 950],
        [-110, 0, 500],
        [-110, 0, 80],
        [180, 0, 1450],
        [260, -60, 1180],
        [300, -120, 930],
        [100, 0, 950],
        [110, 0, 500],
        [110, 0, 80],
    ],
    dtype=np.float64,
)


def make_poses(offsets_mm, scores=0.9) -> np.ndarray:
    """(P,15,4) people at the given (x, y) floor offsets."""
    P = len(offsets_mm)
    poses = np.zeros((P, 15, 4), np.float32)
    for p, (x, y) in enumerate(offsets_mm):
        poses[p, :, :3] = STANDING_MM + [x, y, 0.0]
    poses[..., 3] = scores
    return poses


def make_message(poses, track_ids, seq=1, latency_ms=25.0, missing=()):
    """Duck-typed stand-in for capture.messages.Poses (only the fields the scene reads)."""
    return SimpleNamespace(
        seq=seq,
        t_capture_ns=time.time_ns() - int(latency_ms * 1e6),
        timings_ms={"backbone": 10.0},
        poses=poses,
        edges=PANOPTIC15.edges,
        track_ids=np.asarray(track_ids),
        joints=PANOPTIC15.joints,
    )


@pytest.fixture
def two_people():
    return make_poses([(-800.0, 0.0), (900.0, 300.0)]), np.array([3, 8])


@pytest.fixture
def ipc_endpoints():
    """Two fresh short ``ipc://`` endpoints under /tmp (poses, status)."""
    import shutil
    import tempfile
    from pathlib import Path

    d = Path(tempfile.mkdtemp(prefix="sp3dviz-", dir="/tmp"))
    yield f"ipc://{d}/poses", f"ipc://{d}/status"
    shutil.rmtree(d, ignore_errors=True)


def wire_poses(seq, poses, track_ids, rig="toy"):
    """A real capture.messages.Poses."""
    from capture.messages import Poses, now_ns

    t = now_ns()
    return Poses(
        rig,
        seq,
        seq,
        t - 20_000_000,
        t,
        PANOPTIC15.name,
        PANOPTIC15.joints,
        PANOPTIC15.edges,
        np.asarray(poses, np.float32),
        np.asarray(track_ids, np.int64),
        {"backbone": 9.0},
    )
