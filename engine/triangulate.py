"""The triangulation engine: per-view grouped 2D people -> associated, robustly triangulated 3D people.

The classical route (Pose2Sim, FreeMoCap, 4D-Association, mvpose): numpy/scipy only, no model.
Per frame:

1. **undistort** every 2D joint with the camera model (:func:`calib.projection.undistort_points`)
   and back-project it to a world ray (2D people with fewer than ``min_shared_joints`` joints are
   ignored);
2. **associate** people across views (:mod:`engine.association`): pairwise median ray distance
   (mm), greedy constrained clustering, one person per view; a cluster needs ``min_views`` views,
   so a lone or inconsistent 2D person makes no 3D person;
3. **triangulate** every joint of every cluster at once: each pair of views gives a 2-view DLT
   hypothesis, the one most views reproject within ``joint_max_px`` of (ties: the larger summed
   score) picks the inlier views, then a score-weighted DLT on the inliers (undistorted normalised
   coordinates, rows equilibrated as :func:`calib.check.triangulate_weighted` does) drops its worst
   view while that exceeds ``joint_max_px`` and more than ``min_views`` remain; a joint left with
   fewer than ``min_views`` agreeing views is **missing**;
4. **check the views of each person**: a view whose median joint reprojection error exceeds
   ``view_max_px`` leaves the person (its 2D person is freed), and the person is re-triangulated;
5. **reassign** 2-view ghosts: a 2D person of a person seen by fewer views moves to a person seen by
   more views that lacks that view when it reprojects within ``view_max_px`` there (the wrong
   halves of two people can agree in two views); people left with one view go;
6. **adopt** freed or unassociated 2D people whose joints reproject within ``view_max_px`` of a 3D
   person that lacks their view (one per view, Hungarian on the median error), and re-triangulate;
7. people with fewer than ``min_views`` views or ``min_joints`` triangulated joints are dropped,
   and of two people closer than ``duplicate_mm`` (mean joint distance) the weaker is dropped.

Reprojection errors are in undistorted pixels (focal length × normalised error), which differs
from the distorted-image error only by the local distortion scale.

**Missing joints** are never NaN: a joint without ``min_views`` agreeing views sits at its
person's centre (the mean of the person's triangulated joints) with joint score 0 — a placeholder,
not an estimate. The joint scores are in ``TriangulationResult.joint_scores`` and in
``Prediction.candidates[..., 4]``.

Frame-to-frame tracking is not done here (:class:`engine.tracking.PoseTracker` runs after any route).
"""

from __future__ import annotations

import time
from itertools import combinations
from dataclasses import dataclass, field, fields
from typing import Sequence

import numpy as np
from scipy.optimize import linear_sum_assignment

from calib.camera import CameraRig
from calib.configkit import ConfigError, require
from calib.projection import undistort_points
from engine.api import Prediction
from engine.association import cluster_people, masked_median, ray_distance_costs
from calib.common.keypoint_maps import DERIVED, layout_names, panoptic15_indices
from calib.common.skeleton import PANOPTIC15

INPUT_LAYOUTS = ("panoptic15", "body25", "coco17", "coco18")


@dataclass(frozen=True)
class TriangulatorConfig:
    """Thresholds of the triangulation engine (pixels of the original images, world mm).

    Attributes:
        layout: joint layout of the 2D people (``panoptic15`` or a :mod:`calib.common.keypoint_maps`
            layout: ``body25``, ``coco17``, ``coco18``); output is always Panoptic-15.
        min_joint_score: 2D joints scoring at or below this are absent.
        pair_max_mm: association threshold: median joint ray distance of two 2D people of one person.
        min_shared_joints: joints two 2D people must both see to be compared.
        joint_max_px: per joint, views reprojecting further than this are dropped (outliers).
        view_max_px: per person, a view whose median joint reprojection error exceeds this leaves it.
        min_views: views a person (and each of its joints) needs; >= 2.
        min_joints: triangulated joints a person needs.
        duplicate_mm: two 3D people closer than this (mean joint distance) are one; the weaker goes.
    """

    layout: str = "panoptic15"
    min_joint_score: float = 0.05
    pair_max_mm: float = 120.0
    min_shared_joints: int = 4
    joint_max_px: float = 20.0
    view_max_px: float = 30.0
    min_views: int = 2
    min_joints: int = 6
    duplicate_mm: float = 150.0

    def __post_init__(self) -> None:
        require(self.layout in INPUT_LAYOUTS, "triangulate.layout", f"use one of {INPUT_LAYOUTS}, got '{self.layout}'")
        require(self.min_views >= 2, "triangulate.min_views", f"a 3D point needs >= 2 views, got {self.min_views}")
        for name in ("pair_max_mm", "joint_max_px", "view_max_px", "duplicate_mm"):
            require(getattr(self, name) > 0, f"triangulate.{name}", f"must be > 0, got {getattr(self, name)}")
        require(self.min_shared_joints >= 1, "triangulate.min_shared_joints", "must be >= 1")
        require(self.min_joints >= 1, "triangulate.min_joints", "must be >= 1")

    @property
    def num_joints(self) -> int:
        return len(PANOPTIC15.joints) if self.layout == "panoptic15" else len(layout_names(self.layout))


@dataclass
class TriangulationResult:
    """3D people of one frame in the input layout (before the Panoptic-15 mapping).

    Attributes:
        poses_mm: (P,J,3) world mm; missing joints at the person's centre (see module docstring).
        joint_scores: (P,J) mean 2D score of the agreeing views; 0 = missing joint.
        scores: (P,) person score: mean of ``joint_scores`` (missing joints count 0), descending.
        members: (P,V) index of each person's 2D person in every view (-1: not seen there).
        views: (P,) number of views of each person.
        timings_ms: wall time per stage.
    """

    poses_mm: np.ndarray
    joint_scores: np.ndarray
    scores: np.ndarray
    members: np.ndarray
    views: np.ndarray
    timings_ms: dict[str, float] = field(default_factory=dict)

    @property
    def num_people(self) -> int:
        return int(len(self.poses_mm))


def _dlt(xy: np.ndarray, w: np.ndarray, P_m: np.ndarray) -> np.ndarray:
    """Weighted linear triangulation of Q points on normalised undistorted coordinates.

    Args:
        xy: (Q,V,2) normalised coordinates (any value where w is 0).
        w: (Q,V) weights (0 = view unused).
        P_m: (V,3,4) [R | t] with t in metres (better conditioned than mm).
    Returns:
        (Q,3) world points in metres (garbage where fewer than 2 weights are positive).
    """
    rows = np.concatenate(
        [
            xy[..., 0:1, None] * P_m[None, :, 2:3] - P_m[None, :, 0:1],
            xy[..., 1:2, None] * P_m[None, :, 2:3] - P_m[None, :, 1:2],
        ],
        axis=2,
    )  # (Q,V,2,4)
    rows /= np.maximum(np.linalg.norm(rows, axis=-1, keepdims=True), 1e-12)
    A = (rows * w[..., None, None]).reshape(len(xy), -1, 4)
    _, _, vt = np.linalg.svd(A)
    X = vt[:, -1]
    h = X[:, 3:4]
    return X[:, :3] / np.where(np.abs(h) > 1e-12, h, 1e-12)


class Triangulator:
    """Grouped 2D people of V calibrated views -> 3D people (see the module docstring).

    Args:
        rig: the cameras, in view order (the order of ``poses_2d``).
        config: thresholds (defaults measured on Shelf, see docs/engine.md).
    """

    def __init__(self, rig: CameraRig, config: TriangulatorConfig = TriangulatorConfig()) -> None:
        self.rig = rig
        self.config = config
        self.R = rig.R  # (V,3,3)
        self.t_m = rig.t_mm / 1000.0  # (V,3)
        self.P_m = np.concatenate([self.R, self.t_m[:, :, None]], axis=2)  # (V,3,4)
        self.centers_mm = rig.centers_mm  # (V,3)
        self.focal_px = rig.K[:, [0, 1], [0, 1]].mean(axis=1)  # (V,)
        J = config.num_joints
        if config.layout == "panoptic15":
            self._p15_src = np.arange(15)
        else:
            self._p15_src = panoptic15_indices(config.layout)
        names = PANOPTIC15.joints if config.layout == "panoptic15" else layout_names(config.layout)
        self._derived = {
            j: tuple(names.index(n) for n in DERIVED[PANOPTIC15.joints[j]]) for j in np.flatnonzero(self._p15_src < 0)
        }
        self._num_joints = J

    @classmethod
    def from_rig(cls, rig: CameraRig, **thresholds) -> "Triangulator":
        """``Triangulator.from_rig(rig, pair_max_mm=150, layout="coco17", ...)``: keyword thresholds
        of :class:`TriangulatorConfig` (a bad value raises ``ConfigError`` naming the field)."""
        known = {f.name for f in fields(TriangulatorConfig)}
        unknown = sorted(set(thresholds) - known)
        if unknown:
            raise ConfigError(f"triangulate: unknown setting(s) {unknown}; known: {sorted(known)}")
        return cls(rig, TriangulatorConfig(**thresholds))

    # ------------------------------------------------------------------ input
    def _flatten(self, poses_2d: Sequence[np.ndarray], views_present: Sequence[bool] | None):
        V, J = len(self.rig), self._num_joints
        if len(poses_2d) != V:
            raise ValueError(f"poses_2d: {len(poses_2d)} views given, the rig has {V} cameras ({self.rig.names})")
        present = np.ones(V, bool) if views_present is None else np.asarray(views_present, bool).reshape(-1)
        if present.shape != (V,):
            raise ValueError(f"views_present: expected {V} flags, got {present.shape[0]}")
        uv, score, view, index = [], [], [], []
        for v, people in enumerate(poses_2d):
            arr = np.asarray(people, dtype=np.float64)
            if arr.size == 0:
                continue
            if arr.ndim != 3 or arr.shape[1:] != (J, 3):
                raise ValueError(
                    f"poses_2d[{v}] ({self.rig.names[v]}): expected (N,{J},3) x px, y px, score "
                    f"in layout '{self.config.layout}', got {arr.shape}"
                )
            if not present[v]:
                continue
            s = np.where(np.isfinite(arr).all(-1), arr[..., 2], 0.0)
            s = np.where(s > self.config.min_joint_score, s, 0.0)
            uv.append(np.nan_to_num(arr[..., :2]))
            score.append(s)
            view.append(np.full(len(arr), v))
            index.append(np.arange(len(arr)))
        if not uv:
            return np.zeros((0, J, 2)), np.zeros((0, J)), np.zeros(0, np.int64), np.zeros(0, np.int64)
        return np.concatenate(uv), np.concatenate(score), np.concatenate(view), np.concatenate(index)

    def _undistort(self, uv: np.ndarray, view: np.ndarray) -> np.ndarray:
        xy = np.zeros_like(uv)
        for v in np.unique(view):
            sel = view == v
            cam = self.rig[int(v)]
            xy[sel] = undistort_points(uv[sel], cam, iterations=20 if np.any(cam.dist) else 0)
        return xy

    # ------------------------------------------------------------------ geometry
    def _reprojection_px(self, X_m: np.ndarray, xy: np.ndarray) -> np.ndarray:
        """(Q,3) metres vs (Q,V,2) normalised -> (Q,V) px error (inf behind a camera)."""
        Xc = np.einsum("vij,qj->qvi", self.R, X_m) + self.t_m[None]
        z = Xc[..., 2]
        proj = Xc[..., :2] / np.where(z > 1e-9, z, 1e-9)[..., None]
        err = np.linalg.norm(proj - xy, axis=-1) * self.focal_px[None]
        return np.where(z > 1e-9, err, np.inf)

    def triangulate_points(self, xy: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Robust weighted DLT of Q points with outlier views dropped.

        Args:
            xy: (Q,V,2) normalised undistorted coordinates.
            w: (Q,V) weights (2D scores; 0 = not seen).
        Returns:
            X_mm (Q,3), inlier (Q,V) bool, ok (Q,) bool: the point has >= ``min_views`` inlier views
            all within ``joint_max_px`` (X of a point that is not ok is meaningless).
        """
        cfg = self.config
        Q, V = w.shape
        if Q == 0:
            return np.zeros((0, 3)), np.zeros((0, V), bool), np.zeros(0, bool)
        seen = w > 0
        # Hypotheses: every pair of views; keep the one most views agree with (then the most weight).
        best_key = np.full(Q, -np.inf)
        active = seen.copy()
        for a, b in combinations(range(V), 2):
            both = seen[:, a] & seen[:, b]
            if not both.any():
                continue
            q = np.flatnonzero(both)
            pair = [a, b]
            X = _dlt(xy[q][:, pair], w[q][:, pair], self.P_m[pair])
            inl = seen[q] & (self._reprojection_px(X, xy[q]) <= cfg.joint_max_px)
            key = inl.sum(1) * 1e3 + (w[q] * inl).sum(1)
            better = key > best_key[q]
            best_key[q[better]] = key[better]
            active[q[better]] = inl[better]
        # Refit on the agreeing views; drop the worst while it still exceeds the threshold.
        for _ in range(V):
            X = _dlt(xy, w * active, self.P_m)
            err = np.where(active, self._reprojection_px(X, xy), -1.0)
            worst = np.argmax(err, axis=1)
            drop = (err[np.arange(Q), worst] > cfg.joint_max_px) & (active.sum(1) > cfg.min_views)
            if not drop.any():
                break
            active[np.flatnonzero(drop), worst[drop]] = False
        err = np.where(active, self._reprojection_px(X, xy), -1.0)
        ok = (active.sum(1) >= cfg.min_views) & (err.max(1) <= cfg.joint_max_px)
        return X * 1000.0, active, ok

    def _triangulate_people(self, members: np.ndarray, xy: np.ndarray, score: np.ndarray):
        """members (P,V) -> poses_mm (P,J,3), joint scores (P,J), per-view median error (P,V) px."""
        P, V = members.shape
        J = self._num_joints
        idx = np.maximum(members, 0)
        seen = members >= 0
        pxy = xy[idx].transpose(0, 2, 1, 3)  # (P,J,V,2)
        pw = (score[idx] * seen[..., None]).transpose(0, 2, 1)  # (P,J,V)
        X, inlier, ok = self.triangulate_points(pxy.reshape(P * J, V, 2), pw.reshape(P * J, V))
        X, inlier, ok = X.reshape(P, J, 3), inlier.reshape(P, J, V), ok.reshape(P, J)
        wsum = (pw * inlier).sum(-1)
        jscore = np.where(ok, wsum / np.maximum(inlier.sum(-1), 1), 0.0)
        # Per-view consistency: every seen joint of a view against the 3D joints that are ok.
        err = self._reprojection_px(X.reshape(-1, 3) / 1000.0, pxy.reshape(P * J, V, 2)).reshape(P, J, V)
        usable = (pw > 0) & ok[..., None]
        view_err = masked_median(np.minimum(err, 1e6), usable, axis=1)  # (P,V)
        view_err = np.where(usable.any(1), view_err, np.inf)
        return X, jscore, np.where(seen, view_err, np.nan)

    # ------------------------------------------------------------------ main calls
    def solve(self, poses_2d: Sequence[np.ndarray], views_present: Sequence[bool] | None = None) -> TriangulationResult:
        """3D people in the input layout (see :class:`TriangulationResult`).

        Args:
            poses_2d: per view an (N_v,J,3) array of 2D people: x, y px in the camera's original
                (distorted) image, score (<= ``min_joint_score``: joint absent); J joints of
                ``config.layout``; an empty array when a view sees nobody.
            views_present: optional (V,) flags; people of absent views are ignored.
        """
        cfg = self.config
        V, J = len(self.rig), self._num_joints
        t0 = time.perf_counter()
        uv, score, view, index = self._flatten(poses_2d, views_present)
        visible = score > 0
        keep = visible.sum(1) >= min(cfg.min_shared_joints, J)
        uv, score, view, index, visible = uv[keep], score[keep], view[keep], index[keep], visible[keep]
        xy = self._undistort(uv, view)
        t1 = time.perf_counter()
        d_c = np.concatenate([xy, np.ones_like(xy[..., :1])], axis=-1)
        rays = np.einsum("dji,dik->djk", d_c, self.R[view])  # R^T d_c
        rays /= np.linalg.norm(rays, axis=-1, keepdims=True)
        cost = ray_distance_costs(self.centers_mm[view], rays, visible, view, cfg.min_shared_joints)
        clusters = cluster_people(cost, view, cfg.pair_max_mm)
        members = np.full((len(clusters), V), -1, np.int64)
        for p, c in enumerate(clusters):
            members[p, view[c]] = c
        t2 = time.perf_counter()
        poses, jscore, members = self._refine(members, xy, score, view)
        t3 = time.perf_counter()
        order = np.argsort(-jscore.mean(1), kind="stable") if len(poses) else np.zeros(0, np.int64)
        poses, jscore, members = poses[order], jscore[order], members[order]
        out_members = np.where(members >= 0, index[np.maximum(members, 0)], -1)
        times = {"undistort": 1e3 * (t1 - t0), "association": 1e3 * (t2 - t1), "triangulation": 1e3 * (t3 - t2)}
        return TriangulationResult(
            poses, jscore, jscore.mean(1) if len(poses) else np.zeros(0), out_members, (members >= 0).sum(1), times
        )

    def _refine(self, members: np.ndarray, xy: np.ndarray, score: np.ndarray, view: np.ndarray):
        """Triangulate clusters, expel inconsistent views, adopt free 2D people, drop weak/duplicate people."""
        cfg = self.config
        V, J = len(self.rig), self._num_joints
        empty = (np.zeros((0, J, 3)), np.zeros((0, J)), np.zeros((0, V), np.int64))
        if not len(members):
            return empty
        for _ in range(3):  # expel views that disagree with the person, re-triangulate
            poses, jscore, view_err = self._triangulate_people(members, xy, score)
            expel = (members >= 0) & ~(view_err <= cfg.view_max_px)
            if not expel.any():
                break
            # expel only the worst view per person per round (the others may be fine once it goes)
            worst = np.argmax(np.where(expel, np.nan_to_num(view_err, nan=1e9, posinf=1e9), -1.0), axis=1)
            rows = np.flatnonzero(expel.any(1))
            members[rows, worst[rows]] = -1
            alive = (members >= 0).sum(1) >= cfg.min_views
            members = members[alive]
            if not len(members):
                return empty
        else:
            poses, jscore, view_err = self._triangulate_people(members, xy, score)
        members, moved = self._reassign(members, poses, jscore, xy, score)
        if not len(members):
            return empty
        if moved:
            poses, jscore, view_err = self._triangulate_people(members, xy, score)
        members, adopted = self._adopt(members, poses, jscore, xy, score, view)
        if adopted:
            poses, jscore, view_err = self._triangulate_people(members, xy, score)
        good = ((members >= 0).sum(1) >= cfg.min_views) & ((jscore > 0).sum(1) >= cfg.min_joints)
        poses, jscore, members = poses[good], jscore[good], members[good]
        keep = self._suppress_duplicates(poses, jscore)
        poses, jscore, members = poses[keep], jscore[keep], members[keep]
        return self._fill_missing(poses, jscore), jscore, members

    def _fit_px(
        self,
        v: int,
        dets: np.ndarray,
        people: np.ndarray,
        poses: np.ndarray,
        jscore: np.ndarray,
        xy: np.ndarray,
        score: np.ndarray,
    ) -> np.ndarray:
        """(F,L) median reprojection error (px) of 2D people ``dets`` of view v against 3D ``people``
        over the joints both have (1e9 where fewer than ``min_shared_joints``)."""
        Xc = poses[people] / 1000.0 @ self.R[v].T + self.t_m[v]  # (L,J,3)
        z = Xc[..., 2]
        proj = Xc[..., :2] / np.where(z > 1e-9, z, 1e-9)[..., None]
        err = np.linalg.norm(proj[None] - xy[dets][:, None], axis=-1) * self.focal_px[v]  # (F,L,J)
        both = (score[dets][:, None] > 0) & (jscore[people] > 0)[None] & (z[None] > 1e-9)
        med = masked_median(np.minimum(err, 1e6), both)
        return np.where((both.sum(-1) >= self.config.min_shared_joints) & np.isfinite(med), med, 1e9)

    def _reassign(self, members, poses, jscore, xy, score):
        """2-view ghosts: a 2D person of a person seen by fewer views moves to a person seen by more
        views that lacks that view when it reprojects within view_max_px there (two people's wrong
        halves can agree in two views; the larger people explain them better)."""
        counts = (members >= 0).sum(1)
        moved = False
        for p in np.argsort(counts, kind="stable"):
            for v in np.flatnonzero(members[p] >= 0):
                hosts = np.flatnonzero((members[:, v] < 0) & (counts > counts[p]))
                if not len(hosts):
                    continue
                fit = self._fit_px(int(v), members[p, v : v + 1], hosts, poses, jscore, xy, score)[0]
                best = int(np.argmin(fit))
                if fit[best] <= self.config.view_max_px:
                    members[hosts[best], v], members[p, v] = members[p, v], -1
                    moved = True
        return members[(members >= 0).sum(1) >= self.config.min_views], moved

    def _adopt(self, members, poses, jscore, xy, score, view):
        """Give free 2D people to 3D people lacking their view when they reproject within view_max_px."""
        used = np.zeros(len(view), bool)
        used[members[members >= 0]] = True
        adopted = False
        for v in np.unique(view[~used]):
            free = np.flatnonzero(~used & (view == v))
            lacking = np.flatnonzero(members[:, v] < 0)
            if not len(free) or not len(lacking):
                continue
            med = self._fit_px(int(v), free, lacking, poses, jscore, xy, score)
            rows, cols = linear_sum_assignment(med)
            for r, c in zip(rows, cols):
                if med[r, c] <= self.config.view_max_px:
                    members[lacking[c], v] = free[r]
                    used[free[r]] = True
                    adopted = True
        return members, adopted

    def _suppress_duplicates(self, poses: np.ndarray, jscore: np.ndarray) -> np.ndarray:
        """Indices of the people kept: of two closer than duplicate_mm, the one with the lower score goes."""
        P = len(poses)
        if P < 2:
            return np.arange(P)
        ok = jscore > 0
        both = ok[:, None] & ok[None]
        d = np.linalg.norm(poses[:, None] - poses[None], axis=-1)
        mean = (d * both).sum(-1) / np.maximum(both.sum(-1), 1)
        mean = np.where(both.sum(-1) >= 3, mean, np.inf)
        keep = np.ones(P, bool)
        for i in np.argsort(-jscore.mean(1), kind="stable"):
            if not keep[i]:
                continue
            close = (mean[i] < self.config.duplicate_mm) & keep
            close[i] = False
            keep[close] = False
        return np.flatnonzero(keep)

    @staticmethod
    def _fill_missing(poses: np.ndarray, jscore: np.ndarray) -> np.ndarray:
        ok = jscore > 0
        centre = (poses * ok[..., None]).sum(1) / np.maximum(ok.sum(1), 1)[:, None]
        return np.where(ok[..., None], poses, centre[:, None])

    def to_panoptic15(self, result: TriangulationResult) -> tuple[np.ndarray, np.ndarray]:
        """Map a result to Panoptic-15: poses (P,15,3) mm and joint scores (P,15).

        A joint the layout lacks (COCO's neck, mid-hip) is the mean of its two 3D source joints,
        missing unless both are triangulated.
        """
        src = self._p15_src
        poses = result.poses_mm[:, np.maximum(src, 0)].copy()
        jscore = result.joint_scores[:, np.maximum(src, 0)].copy()
        for j, (a, b) in self._derived.items():
            poses[:, j] = 0.5 * (result.poses_mm[:, a] + result.poses_mm[:, b])
            jscore[:, j] = np.minimum(result.joint_scores[:, a], result.joint_scores[:, b])
        if self._derived:
            poses = self._fill_missing(poses, jscore)
        return poses, jscore

    def predict_people(self, poses_2d: Sequence[np.ndarray], views_present: Sequence[bool] | None = None) -> Prediction:
        """3D people of one frameset, as the learned route returns them.

        Args:
            poses_2d: per view an (N_v,J,3) array: x, y px in the camera's original (distorted)
                image and a score (<= ``min_joint_score``: joint absent), J joints of
                ``config.layout`` (Panoptic-15 by default; map other detectors with
                :func:`calib.common.keypoint_maps.keypoints_to_panoptic15` or set the layout).
            views_present: optional (V,) flags (a stalled camera's people are ignored).
        Returns:
            :class:`engine.api.Prediction`: ``poses_mm`` (P,15,3) float32 world mm, best first;
            ``scores`` (P,) mean joint score (missing joints count 0); ``proposals`` (P,5) the
            mid-hip x, y, z mm, flag 0, score; ``candidates`` (P,15,5) x, y, z mm, flag 0, **joint
            score** (0 = missing joint, placed at the person's centre); ``timings_ms`` per stage.
        """
        t0 = time.perf_counter()
        res = self.solve(poses_2d, views_present)
        poses, jscore = self.to_panoptic15(res)
        P = len(poses)
        candidates = np.zeros((P, 15, 5), np.float32)
        candidates[..., :3] = poses
        candidates[..., 4] = jscore
        proposals = np.zeros((P, 5), np.float32)
        proposals[:, :3] = poses[:, PANOPTIC15.root]
        proposals[:, 4] = res.scores
        timings = dict(res.timings_ms)
        timings["total"] = 1e3 * (time.perf_counter() - t0)
        return Prediction(
            poses_mm=np.ascontiguousarray(poses, dtype=np.float32),
            scores=np.asarray(res.scores, np.float32),
            proposals=proposals,
            candidates=candidates,
            timings_ms=timings,
            skeleton=PANOPTIC15,
        )
