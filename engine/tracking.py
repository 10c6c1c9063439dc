"""Multi-person 3D tracking: stable ids across frames, re-identification, One-Euro smoothing.

Pure numpy + scipy (no torch), so the live worker can run it after any backend.

Per frame:
1. every live track predicts its pose at the frame time with a constant-velocity model;
2. detections are assigned to tracks by the Hungarian algorithm on the mean per-joint distance
   (mm) between prediction and detection, gated at ``gate_mm``;
3. unmatched detections start tentative tracks, confirmed after ``min_hits`` matches; a track
   unmatched for ``max_missing_s`` is lost; a lost track whose bone-length signature and
   plausible displacement match a new detection within ``reid_window_s`` is revived with its
   old id (re-entry), otherwise the detection gets a new id;
4. each confirmed track's joints are smoothed by a One-Euro filter (causal; its lag is the
   price of lower jitter, measured in ``benchmarks/bench_tracking.py``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import linear_sum_assignment

from calib.common.poses import pairwise_mpjpe_mm
from calib.common.skeleton import PANOPTIC15, Skeleton


class OneEuroFilter:
    """One-Euro filter (Casiez et al., CHI 2012) over an array of any shape, variable rate.

    Args:
        min_cutoff_hz: cutoff at zero speed (lower = smoother when still).
        beta: speed coefficient (higher = less lag when moving).
        d_cutoff_hz: cutoff for the derivative estimate.
    """

    def __init__(self, min_cutoff_hz: float = 1.0, beta: float = 0.005, d_cutoff_hz: float = 1.0) -> None:
        if min_cutoff_hz <= 0 or d_cutoff_hz <= 0 or beta < 0:
            raise ValueError("OneEuroFilter: cutoffs must be > 0 and beta >= 0")
        self.min_cutoff_hz = min_cutoff_hz
        self.beta = beta
        self.d_cutoff_hz = d_cutoff_hz
        self._x: np.ndarray | None = None
        self._dx: np.ndarray | None = None
        self._t: float | None = None

    @staticmethod
    def _alpha(cutoff_hz: np.ndarray | float, dt_s: float) -> np.ndarray | float:
        tau = 1.0 / (2.0 * np.pi * cutoff_hz)
        return 1.0 / (1.0 + tau / dt_s)

    def reset(self) -> None:
        self._x = self._dx = self._t = None

    def __call__(self, x: np.ndarray, t_s: float) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        if self._x is None or self._t is None or t_s <= self._t:
            self._x, self._dx, self._t = x.copy(), np.zeros_like(x), t_s
            return x.copy()
        dt = t_s - self._t
        dx = (x - self._x) / dt
        a_d = self._alpha(self.d_cutoff_hz, dt)
        self._dx = a_d * dx + (1.0 - a_d) * self._dx
        cutoff = self.min_cutoff_hz + self.beta * np.abs(self._dx)
        a = self._alpha(cutoff, dt)
        self._x = a * x + (1.0 - a) * self._x
        self._t = t_s
        return self._x.copy()


def bone_lengths_mm(poses_mm: np.ndarray, skeleton: Skeleton = PANOPTIC15) -> np.ndarray:
    """(...,J,3) -> (...,E) length of every skeleton edge in mm."""
    edges = np.asarray(skeleton.edges)
    return np.linalg.norm(poses_mm[..., edges[:, 0], :] - poses_mm[..., edges[:, 1], :], axis=-1)


@dataclass
class Track:
    """One tracked person."""

    track_id: int
    pose_mm: np.ndarray  # (J,3) last raw detection
    smoothed_mm: np.ndarray  # (J,3)
    velocity_mm_s: np.ndarray  # (J,3)
    last_t_s: float
    first_t_s: float
    hits: int = 1
    confirmed: bool = False
    score: float = 0.0
    bones_mm: np.ndarray = field(default_factory=lambda: np.zeros(0))  # running mean (E,)
    filter: OneEuroFilter | None = None

    def predict(self, t_s: float) -> np.ndarray:
        """(J,3) constant-velocity prediction at ``t_s``."""
        return self.pose_mm + self.velocity_mm_s * (t_s - self.last_t_s)


@dataclass(frozen=True)
class TrackedFrame:
    """Tracker output for one frame, aligned with the input detections.

    Attributes:
        track_ids: (P,) id per input detection (-1: tentative, not yet confirmed).
        poses_mm: (P,J,3) smoothed poses (raw for tentative tracks).
    """

    track_ids: np.ndarray
    poses_mm: np.ndarray


class PoseTracker:
    """Assigns stable ids to per-frame 3D detections and smooths them.

    Args:
        gate_mm: largest mean per-joint distance for a detection to continue a track.
        min_hits: matches needed before a track is confirmed (and reported with an id).
        max_missing_s: a track unmatched this long is lost.
        reid_window_s: a lost track may be revived (same id) within this time.
        reid_bone_tol_mm: largest mean bone-length difference for a revival.
        max_speed_mm_s: largest plausible root speed for a revival.
        min_score: detections scoring below are ignored.
        smoothing: One-Euro parameters (min_cutoff_hz, beta, d_cutoff_hz) or None.
        skeleton: joint/bone definition.
    """

    def __init__(
        self,
        gate_mm: float = 400.0,
        min_hits: int = 2,
        max_missing_s: float = 0.5,
        reid_window_s: float = 5.0,
        reid_bone_tol_mm: float = 15.0,
        max_speed_mm_s: float = 2000.0,
        min_score: float = 0.0,
        smoothing: tuple[float, float, float] | None = (1.0, 0.005, 1.0),
        skeleton: Skeleton = PANOPTIC15,
    ) -> None:
        self.gate_mm = gate_mm
        self.min_hits = min_hits
        self.max_missing_s = max_missing_s
        self.reid_window_s = reid_window_s
        self.reid_bone_tol_mm = reid_bone_tol_mm
        self.max_speed_mm_s = max_speed_mm_s
        self.min_score = min_score
        self.smoothing = smoothing
        self.skeleton = skeleton
        self.tracks: list[Track] = []
        self.lost: list[Track] = []
        self._next_id = 0

    def reset(self) -> None:
        self.tracks, self.lost, self._next_id = [], [], 0

    def update(self, poses_mm: np.ndarray, scores: np.ndarray, t_s: float) -> TrackedFrame:
        """Track one frame.

        Args:
            poses_mm: (P,J,3) detections in world mm.
            scores: (P,) detection confidences.
            t_s: frame time in seconds (monotonic).
        """
        poses_mm = np.asarray(poses_mm, dtype=np.float64).reshape(-1, self.skeleton.num_joints, 3)
        scores = np.asarray(scores, dtype=np.float64).reshape(-1)
        P = len(poses_mm)
        ids = np.full(P, -1, dtype=np.int64)
        out = poses_mm.copy()
        keep = np.flatnonzero(scores >= self.min_score)
        self._expire(t_s)  # tracks unseen too long become 'lost' (revivable) before matching

        matched_tracks: set[int] = set()
        assigned: dict[int, Track] = {}
        if self.tracks and keep.size:
            pred = np.stack([tr.predict(t_s) for tr in self.tracks])  # (T,J,3)
            cost = pairwise_mpjpe_mm(pred, poses_mm[keep])  # (T,K)
            # Gate before solving: otherwise a far-away stale track can steal a detection by
            # lowering the *total* cost of the assignment.
            gated = np.where(cost <= self.gate_mm, cost, 1e9)
            rows, cols = linear_sum_assignment(gated)
            for r, c in zip(rows, cols):
                if cost[r, c] <= self.gate_mm:
                    assigned[int(keep[c])] = self.tracks[r]
                    matched_tracks.add(r)

        for det in keep:
            det = int(det)
            track = assigned.get(det)
            if track is None:
                track = self._revive_or_create(poses_mm[det], scores[det], t_s)
            else:
                self._advance(track, poses_mm[det], scores[det], t_s)
            if track.confirmed:
                ids[det] = track.track_id
                out[det] = track.smoothed_mm
        return TrackedFrame(track_ids=ids, poses_mm=out)

    # -- internals -------------------------------------------------------------------------
    def _new_filter(self) -> OneEuroFilter | None:
        return OneEuroFilter(*self.smoothing) if self.smoothing else None

    def _advance(self, track: Track, pose: np.ndarray, score: float, t_s: float) -> None:
        dt = t_s - track.last_t_s
        if dt > 0:
            new_v = (pose - track.pose_mm) / dt
            track.velocity_mm_s = 0.5 * track.velocity_mm_s + 0.5 * new_v if track.hits > 1 else new_v
        track.pose_mm = pose.copy()
        track.last_t_s = t_s
        track.hits += 1
        track.score = float(score)
        bones = bone_lengths_mm(pose, self.skeleton)
        track.bones_mm = track.bones_mm + (bones - track.bones_mm) / min(track.hits, 50)
        track.smoothed_mm = track.filter(pose, t_s) if track.filter else pose.copy()
        if track.hits >= self.min_hits:
            track.confirmed = True

    def _revive_or_create(self, pose: np.ndarray, score: float, t_s: float) -> Track:
        bones = bone_lengths_mm(pose, self.skeleton)
        root = self.skeleton.root
        best, best_err = None, np.inf
        for lost in self.lost:
            gap = t_s - lost.last_t_s
            if gap > self.reid_window_s:
                continue
            err = float(np.abs(lost.bones_mm - bones).mean())
            reach = self.max_speed_mm_s * max(gap, 1e-3)
            if err <= self.reid_bone_tol_mm and np.linalg.norm(pose[root] - lost.pose_mm[root]) <= reach:
                if err < best_err:
                    best, best_err = lost, err
        if best is not None:
            self.lost.remove(best)
            best.velocity_mm_s = np.zeros_like(pose)
            best.filter = self._new_filter()
            best.hits = max(best.hits, self.min_hits - 1)
            self.tracks.append(best)
            self._advance(best, pose, score, t_s)
            return best
        track = Track(
            track_id=self._next_id,
            pose_mm=pose.copy(),
            smoothed_mm=pose.copy(),
            velocity_mm_s=np.zeros_like(pose),
            last_t_s=t_s,
            first_t_s=t_s,
            score=float(score),
            bones_mm=bones,
            filter=self._new_filter(),
        )
        self._next_id += 1
        if track.filter:
            track.filter(pose, t_s)
        track.confirmed = self.min_hits <= 1
        self.tracks.append(track)
        return track

    def _expire(self, t_s: float) -> None:
        alive = []
        for tr in self.tracks:
            if t_s - tr.last_t_s > self.max_missing_s:
                if tr.confirmed:
                    self.lost.append(tr)
            else:
                alive.append(tr)
        self.tracks = alive
        self.lost = [tr for tr in self.lost if t_s - tr.last_t_s <= self.reid_window_s]


def count_id_switches(true_ids: list[np.ndarray], pred_ids: list[np.ndarray]) -> int:
    """CLEAR-MOT style id switches: times a true person's predicted id changes to another id.

    Args:
        true_ids: per frame, (P,) true identity of each detection.
        pred_ids: per frame, (P,) tracker id of the same detections (-1 = unconfirmed, ignored).
    """
    last: dict[int, int] = {}
    switches = 0
    for t_ids, p_ids in zip(true_ids, pred_ids):
        for t, p in zip(np.asarray(t_ids).tolist(), np.asarray(p_ids).tolist()):
            if p < 0:
                continue
            if t in last and last[t] != p:
                switches += 1
            last[t] = p
    return switches


def jitter_mm(poses_mm: np.ndarray) -> float:
    """Mean norm of the second difference of a (F,J,3) trajectory, in mm (acceleration x dt^2)."""
    if len(poses_mm) < 3:
        return 0.0
    acc = poses_mm[2:] - 2 * poses_mm[1:-1] + poses_mm[:-2]
    return float(np.linalg.norm(acc, axis=-1).mean())
