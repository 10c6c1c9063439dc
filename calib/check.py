"""Calibration check: per-camera reprojection error of a recorded take (or a board), bumped-camera flag.

Take file (NPZ), the input of ``selfpose3d calibrate check`` and ``calibrate refine``:

* ``poses_mm``      float (F,P,J,3): 3D joints in world mm per frame and person; NaN where absent;
* ``detections_2d`` float (F,V,N,J,2): 2D joints in distorted pixels per frame, camera and detection
  slot (in any order: detections are matched to 3D persons here); NaN where absent;
* ``scores``        float (F,V,N,J): 2D joint confidence in [0, 1] (0 = absent); optional (1 if missing);
* ``camera_names``  str (V,): the camera of each view, matched by name to the rig.

The check re-triangulates every matched joint with the rig (linear triangulation) and, for each
camera, measures the error of its own detection against the point triangulated from pairs of the
*other* cameras (leave-one-out; the best-agreeing pair counts). A camera whose error is far above the
others' is flagged as bumped: the 3D evidence of the other cameras no longer agrees with it.
The 3D poses in the take are used only to match detections to persons.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from calib.camera import CalibrationError, CameraRig
from calib.projection import project_points, undistort_points


# ------------------------------------------------------------------------------- take files
@dataclass(frozen=True, eq=False)
class PoseTake:
    """3D poses and 2D detections of a recorded take (see the module docstring for shapes)."""

    poses_mm: np.ndarray  # (F,P,J,3)
    detections_2d: np.ndarray  # (F,V,N,J,2)
    scores: np.ndarray  # (F,V,N,J)
    camera_names: tuple[str, ...]
    source: str = "<memory>"

    def __post_init__(self) -> None:
        p, d, s = self.poses_mm, self.detections_2d, self.scores
        where = f"{self.source}"
        if p.ndim != 4 or p.shape[-1] != 3:
            raise CalibrationError(f"{where}: 'poses_mm' must be (F,P,J,3), got {p.shape}")
        if d.ndim != 5 or d.shape[-1] != 2:
            raise CalibrationError(f"{where}: 'detections_2d' must be (F,V,N,J,2), got {d.shape}")
        if d.shape[0] != p.shape[0] or d.shape[3] != p.shape[2]:
            raise CalibrationError(f"{where}: frames/joints differ: poses_mm {p.shape} vs detections_2d {d.shape}")
        if s.shape != d.shape[:-1]:
            raise CalibrationError(f"{where}: 'scores' must be {d.shape[:-1]}, got {s.shape}")
        if len(self.camera_names) != d.shape[1]:
            raise CalibrationError(f"{where}: {len(self.camera_names)} camera_names for {d.shape[1]} views")

    @property
    def num_views(self) -> int:
        return self.detections_2d.shape[1]


def save_take(
    path: str | Path,
    poses_mm: np.ndarray,
    detections_2d: np.ndarray,
    camera_names: Sequence[str],
    scores: np.ndarray | None = None,
) -> Path:
    """Write a take NPZ (validated first)."""
    d = np.asarray(detections_2d, dtype=np.float32)
    if scores is None:
        s = np.where(np.isfinite(d[..., 0]), 1.0, 0.0).astype(np.float32)
    else:
        s = np.asarray(scores, np.float32)
    PoseTake(np.asarray(poses_mm, np.float32), d, s, tuple(camera_names), str(path))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(
        path,
        poses_mm=np.asarray(poses_mm, np.float32),
        detections_2d=d,
        scores=s,
        camera_names=np.asarray(list(camera_names)),
    )
    return path


def load_take(path: str | Path) -> PoseTake:
    """Read a take NPZ; missing keys or wrong shapes raise CalibrationError naming the file."""
    path = Path(path)
    if not path.is_file():
        raise CalibrationError(f"{path}: take file not found")
    with np.load(path, allow_pickle=False) as z:
        missing = [k for k in ("poses_mm", "detections_2d", "camera_names") if k not in z]
        if missing:
            raise CalibrationError(
                f"{path}: missing array(s) {missing}; a take holds poses_mm (F,P,J,3), "
                "detections_2d (F,V,N,J,2), scores (F,V,N,J), camera_names (V,)"
            )
        d = z["detections_2d"].astype(np.float64)
        s = z["scores"].astype(np.float64) if "scores" in z else np.where(np.isfinite(d[..., 0]), 1.0, 0.0)
        return PoseTake(z["poses_mm"].astype(np.float64), d, s, tuple(str(n) for n in z["camera_names"]), str(path))


# ------------------------------------------------------------------------------- matching
@dataclass(frozen=True, eq=False)
class Correspondences:
    """2D observations of 3D points.

    Attributes:
        points_w: (Q,3) initial 3D points (mm).
        point_idx: (M,) index into ``points_w`` of each observation.
        view_idx: (M,) rig camera index of each observation.
        uv: (M,2) observed distorted pixels.
        weight: (M,) confidence.
        labels: (Q,3) int frame, person, joint of each point.
    """

    points_w: np.ndarray
    point_idx: np.ndarray
    view_idx: np.ndarray
    uv: np.ndarray
    weight: np.ndarray
    labels: np.ndarray


def match_take(
    rig: CameraRig, take: PoseTake, gate_px: float = 80.0, min_score: float = 0.2, min_views: int = 2
) -> Correspondences:
    """Match each view's 2D detections to the take's 3D persons (Hungarian on median joint distance
    of the projected pose, gated at ``gate_px``) and list the joint observations.

    Only joints seen (score >= ``min_score``) by at least ``min_views`` cameras are kept.
    """
    from scipy.optimize import linear_sum_assignment

    missing = [n for n in take.camera_names if n not in rig.names]
    if missing:
        raise CalibrationError(
            f"{take.source}: camera(s) {missing} are not in the rig {rig.names}; use the rig the take was recorded with"
        )
    views = [rig.names.index(n) for n in take.camera_names]
    F, P, J, _ = take.poses_mm.shape
    obs_p, obs_v, obs_uv, obs_w = [], [], [], []
    for f in range(F):
        poses = take.poses_mm[f]  # (P,J,3)
        alive = np.nonzero(np.isfinite(poses).all(axis=-1).any(axis=-1))[0]
        if len(alive) == 0:
            continue
        for tv, v in enumerate(views):
            det = take.detections_2d[f, tv]  # (N,J,2)
            sc = np.where(np.isfinite(det[..., 0]), take.scores[f, tv], 0.0)  # (N,J)
            present = np.nonzero((sc >= min_score).any(axis=-1))[0]
            if len(present) == 0:
                continue
            proj = project_points(np.nan_to_num(poses[alive]), rig[v])  # (P',J,2)
            ok3 = np.isfinite(poses[alive]).all(axis=-1)  # (P',J)
            dist = np.linalg.norm(proj[:, None] - np.nan_to_num(det[present])[None], axis=-1)  # (P',N',J)
            valid = ok3[:, None, :] & (sc[present] >= min_score)[None]
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN rows: gated below
                cost = np.where(valid.sum(-1) >= 3, np.nanmedian(np.where(valid, dist, np.nan), axis=-1), 1e9)
            rows, cols = linear_sum_assignment(cost)
            for r, c in zip(rows, cols):
                if cost[r, c] > gate_px:
                    continue
                p, n = alive[r], present[c]
                joints = np.nonzero(valid[r, c])[0]
                obs_p += [(f * P + p) * J + j for j in joints]
                obs_v += [v] * len(joints)
                obs_uv.append(det[n, joints])
                obs_w.append(sc[n, joints])
    if not obs_p:
        raise CalibrationError(
            f"{take.source}: no 2D detection matches a 3D pose within {gate_px} px in any camera; "
            "check that the take and the rig belong together (camera names, units mm)"
        )
    key = np.asarray(obs_p)
    counts = np.bincount(key)
    keep = counts[key] >= min_views
    key, view = key[keep], np.asarray(obs_v)[keep]
    if len(key) == 0:
        raise CalibrationError(f"{take.source}: no joint is matched in {min_views} or more cameras")
    uniq, point_idx = np.unique(key, return_inverse=True)
    labels = np.stack(np.unravel_index(uniq, (F, P, J)), axis=1)
    points = take.poses_mm[labels[:, 0], labels[:, 1], labels[:, 2]]
    return Correspondences(points, point_idx, view, np.concatenate(obs_uv)[keep], np.concatenate(obs_w)[keep], labels)


def board_correspondences(rig: CameraRig, detections, spec) -> Correspondences:
    """Correspondences of board corners: {camera: per-frame BoardDetection or None} (synchronised
    frames) -> one 3D point per (frame, corner id) seen by at least two cameras."""
    if spec.kind != "charuco":
        raise CalibrationError("check with a board needs a ChArUco board (corner ids match across cameras)")
    missing = [n for n in detections if n not in rig.names]
    if missing:
        raise CalibrationError(f"board check: camera(s) {missing} are not in the rig {rig.names}")
    n_corners = spec.num_corners
    keys, views, uvs = [], [], []
    for name, dets in detections.items():
        for f, det in enumerate(dets):
            if det is None:
                continue
            keys.append(f * n_corners + det.ids)
            views.append(np.full(len(det), rig.names.index(name)))
            uvs.append(det.corners_px)
    if not keys:
        raise CalibrationError(f"board check: the board ({spec.describe()}) was not found in any image")
    key, view, uv = np.concatenate(keys), np.concatenate(views), np.concatenate(uvs)
    keep = np.bincount(key)[key] >= 2
    if not np.any(keep):
        raise CalibrationError("board check: no board corner is seen by two cameras in the same frame")
    uniq, point_idx = np.unique(key[keep], return_inverse=True)
    labels = np.stack([uniq // n_corners, np.zeros_like(uniq), uniq % n_corners], axis=1)
    corr = Correspondences(np.zeros((len(uniq), 3)), point_idx, view[keep], uv[keep], np.ones(int(keep.sum())), labels)
    dense_uv, dense_w = _dense(corr, len(rig))
    return Correspondences(
        triangulate_weighted(rig, dense_uv, dense_w), point_idx, view[keep], uv[keep], np.ones(int(keep.sum())), labels
    )


# ------------------------------------------------------------------------------- triangulation
def triangulate_weighted(rig: CameraRig, uv: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """Batched weighted linear triangulation.

    Args:
        rig: V cameras.
        uv: (Q,V,2) distorted pixels (any value where weight is 0).
        weight: (Q,V) >= 0; each point needs two views with positive weight.
    Returns:
        (Q,3) world mm (NaN where fewer than two views).
    """
    Q, V = weight.shape
    A = np.zeros((Q, 2 * V, 4))
    for v, cam in enumerate(rig):
        xy = undistort_points(np.nan_to_num(uv[:, v]), cam)  # (Q,2)
        P = np.concatenate([cam.R, cam.t_mm[:, None]], axis=1)
        A[:, 2 * v] = xy[:, 0:1] * P[2] - P[0]
        A[:, 2 * v + 1] = xy[:, 1:2] * P[2] - P[1]
    A /= np.maximum(np.linalg.norm(A, axis=-1, keepdims=True), 1e-12)  # equilibrate rows, then weight them
    A *= np.where(weight > 0, weight, 0.0).repeat(2, axis=1)[..., None]
    _, _, vt = np.linalg.svd(A)
    X = vt[:, -1]
    out = X[:, :3] / X[:, 3:4]
    out[(weight > 0).sum(axis=1) < 2] = np.nan
    return out


def _dense(corr: Correspondences, V: int) -> tuple[np.ndarray, np.ndarray]:
    Q = len(corr.points_w)
    uv = np.full((Q, V, 2), np.nan)
    w = np.zeros((Q, V))
    uv[corr.point_idx, corr.view_idx] = corr.uv
    w[corr.point_idx, corr.view_idx] = np.maximum(corr.weight, 1e-3)
    return uv, w


# ------------------------------------------------------------------------------- the check
@dataclass(frozen=True)
class CameraCheck:
    """Per-camera figures of a check."""

    name: str
    observations: int
    median_px: float
    rms_px: float
    bumped: bool


@dataclass(frozen=True)
class CheckReport:
    """Result of :func:`check_rig`."""

    cameras: tuple[CameraCheck, ...]
    threshold_px: float

    @property
    def bumped(self) -> list[str]:
        """Names of cameras flagged as bumped."""
        return [c.name for c in self.cameras if c.bumped]

    def text(self) -> str:
        """Human-readable table."""
        lines = [f"calibration check (leave-one-out reprojection error; flag above {self.threshold_px:.1f} px):"]
        for c in self.cameras:
            flag = "  <-- BUMPED? re-run `selfpose3d calibrate refine` or extrinsics" if c.bumped else ""
            lines.append(
                f"  {c.name:>12}: median {c.median_px:7.2f} px, RMS {c.rms_px:7.2f} px over "
                f"{c.observations} points{flag}"
            )
        if not self.bumped:
            lines.append("  all cameras agree")
        if len(self.cameras) < 4:
            lines.append("  note: with fewer than 4 cameras a knocked camera cannot be told apart from the others")
        return "\n".join(lines)


def leave_one_out_errors(rig: CameraRig, corr: Correspondences) -> np.ndarray:
    """(M,) px error of each observation against the other cameras' 3D evidence.

    For observation (point q, camera v), q is triangulated from every pair of *other* cameras that
    see it, projected into v, and the smallest error over those pairs is kept: a camera that agrees
    with at least one other pair is not blamed for a bumped neighbour, while a bumped camera
    disagrees with every pair. NaN where no other pair sees the point.
    """
    V = len(rig)
    uv, w = _dense(corr, V)
    err = np.full(len(corr.uv), np.nan)
    for v in range(V):
        rows = np.nonzero(corr.view_idx == v)[0]
        if len(rows) == 0:
            continue
        q = corr.point_idx[rows]
        others = [u for u in range(V) if u != v]
        for i, a in enumerate(others):
            for b in others[i + 1 :]:
                ok = (w[q, a] > 0) & (w[q, b] > 0)
                if not np.any(ok):
                    continue
                w_pair = np.zeros((int(ok.sum()), V))
                w_pair[:, a] = w_pair[:, b] = 1.0
                X = triangulate_weighted(rig, uv[q[ok]], w_pair)
                e = np.linalg.norm(project_points(X, rig[v]) - corr.uv[rows[ok]], axis=-1)
                err[rows[ok]] = np.fmin(err[rows[ok]], e)
    return err


def check_rig(rig: CameraRig, corr: Correspondences, min_px: float = 6.0, ratio: float = 3.0) -> CheckReport:
    """Per-camera leave-one-out reprojection error (:func:`leave_one_out_errors`); flag outliers.

    A camera is flagged when its median error exceeds ``max(min_px, ratio * median of the other
    cameras' medians)``.
    """
    err = leave_one_out_errors(rig, corr)
    med = {}
    for v in range(len(rig)):
        e = err[(corr.view_idx == v) & np.isfinite(err)]
        nan = float("nan")
        med[v] = (len(e), float(np.median(e)) if len(e) else nan, float(np.sqrt(np.mean(e**2))) if len(e) else nan)
    out = []
    thresholds = []
    for v, cam in enumerate(rig):
        others = [med[u][1] for u in med if u != v and np.isfinite(med[u][1])]
        limit = max(min_px, ratio * float(np.median(others))) if others else min_px
        thresholds.append(limit)
        n, m, r = med[v]
        out.append(CameraCheck(cam.name, n, m, r, bool(np.isfinite(m) and m > limit)))
    return CheckReport(tuple(out), float(np.min(thresholds)))
