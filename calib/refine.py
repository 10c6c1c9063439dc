"""Refine a rig's extrinsics (and optionally focal lengths) from people moving in the scene.

The engine's 3D poses and the 2D detections of every camera are correspondences: each matched joint
is a 3D point observed by several cameras. A bundle adjustment over camera poses (+ focal scales)
and the 3D points, with a robust loss, pulls a bumped camera back into agreement with the others.

Gauge: a bundle adjustment of cameras + points is defined only up to a similarity (7 dof). We fix
one reference camera completely (6 dof) and the distance between it and a second "scale" camera
(1 dof); with two or more fixed cameras nothing else is needed. By default the reference and scale
cameras are the two whose leave-one-out error (see :mod:`calib.check`) is lowest, so a bumped camera
moves, and the world frame, scale and units stay those of the original calibration.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from calib.camera import CalibrationError, CameraRig
from calib.check import Correspondences, _dense, leave_one_out_errors, triangulate_weighted
from calib.extrinsics import project_with

log = logging.getLogger(__name__)


@dataclass(frozen=True, eq=False)
class RefineResult:
    """Refined rig and the reprojection error before/after.

    Attributes:
        rig: the refined rig.
        before_px, after_px: {camera: RMS reprojection error px} with the old rig (3D points
            re-fitted to it) and with the refined rig.
        fixed: cameras held fixed (gauge).
        scale_camera: camera whose distance to the reference was held (None when >= 2 fixed).
        points: number of 3D points used.
    """

    rig: CameraRig
    before_px: dict[str, float]
    after_px: dict[str, float]
    fixed: tuple[str, ...]
    scale_camera: str | None
    points: int

    def report(self, original: CameraRig | None = None) -> str:
        """Human-readable before/after table (and how far each camera moved, given the original)."""
        lines = [
            f"refinement from {self.points} joint points; fixed {list(self.fixed)}"
            + (f", distance to {self.scale_camera} held" if self.scale_camera else "")
        ]
        for cam in self.rig:
            moved = ""
            if original is not None:
                old = original[cam.name]
                ang = np.rad2deg(np.arccos(np.clip((np.trace(cam.R @ old.R.T) - 1) / 2, -1, 1)))
                moved = (
                    f"; moved {np.linalg.norm(cam.center_mm - old.center_mm):.1f} mm, {ang:.2f} deg, "
                    f"f x{cam.K[0, 0] / old.K[0, 0]:.4f}"
                )
            before, after = self.before_px[cam.name], self.after_px[cam.name]
            lines.append(f"  {cam.name:>12}: RMS {before:7.2f} -> {after:6.2f} px{moved}")
        return "\n".join(lines)


def _per_camera_rms(res: np.ndarray, view_idx: np.ndarray, names: Sequence[str]) -> dict[str, float]:
    out = {}
    for v, n in enumerate(names):
        r = res[view_idx == v]
        out[n] = float(np.sqrt(np.mean(np.sum(r**2, axis=1)))) if len(r) else float("nan")
    return out


def _choose_gauge(rig: CameraRig, corr: Correspondences, fixed: Sequence[str] | None) -> tuple[list[str], str | None]:
    """Fixed cameras and the scale camera: by default the two best-agreeing cameras (leave-one-out)."""
    names = rig.names
    if fixed:
        bad = [n for n in fixed if n not in names]
        if bad:
            raise CalibrationError(f"refine: fixed camera(s) {bad} not in the rig {names}")
        if len(fixed) >= 2 or len(names) == 1:
            return list(fixed), None
    err = leave_one_out_errors(rig, corr)
    median = {}
    for v, n in enumerate(names):
        e = err[(corr.view_idx == v) & np.isfinite(err)]
        median[n] = float(np.median(e)) if len(e) else np.inf
    order = sorted(names, key=lambda n: median[n])
    if fixed:
        return list(fixed), next(n for n in order if n not in fixed)
    return [order[0]], order[1]


def refine_extrinsics(
    rig: CameraRig,
    corr: Correspondences,
    fixed: Sequence[str] | None = None,
    refine_focal: bool = False,
    outlier_px: float = 8.0,
    max_nfev: int = 200,
) -> RefineResult:
    """Bundle-adjust camera poses (+ focal scales) and 3D points to the 2D observations.

    Robustness: a first least-squares pass, then observations whose residual exceeds
    ``max(outlier_px, 4 x median residual)`` (mismatched or swapped joints) are dropped and the
    problem is solved again. (Plain least squares with trimming converges in a few iterations where
    scipy's robust losses need hundreds here.)

    Args:
        rig: current calibration.
        corr: correspondences (:func:`calib.check.match_take`).
        fixed: cameras to hold fixed; None picks the best-agreeing camera (plus a scale camera).
        refine_focal: also estimate one focal scale per non-fixed camera (fx, fy scaled together).
        outlier_px: residual (px) above which an observation is an outlier in the second pass.
        max_nfev: iteration budget per pass.
    Raises:
        CalibrationError: unknown fixed camera, or too few correspondences for the unknowns.
    """
    names = rig.names
    V = len(names)
    fixed, scale_cam = _choose_gauge(rig, corr, fixed)
    free = [v for v, n in enumerate(names) if n not in fixed]
    problem = _Problem(
        rig, corr, free, refine_focal, names.index(fixed[0]), names.index(scale_cam) if scale_cam else None
    )
    M = len(corr.uv)
    if 2 * M < problem.n_params + 10:
        raise CalibrationError(
            f"refine: only {M} joint observations for {problem.n_params} unknowns; record a "
            "longer take with people walking through the whole volume"
        )
    seen_by = np.bincount(corr.view_idx, minlength=V)
    thin = [names[v] for v in free if seen_by[v] < 30]
    if thin:
        raise CalibrationError(
            f"refine: camera(s) {thin} see fewer than 30 matched joints; record people walking in their view"
        )

    # Start from points fitted to the current rig (the engine's poses may be stale or smoothed).
    uv_d, w_d = _dense(corr, V)
    X0 = triangulate_weighted(rig, uv_d, w_d)
    X0 = np.where(np.isfinite(X0), X0, corr.points_w)
    before = _per_camera_rms(_fit_points_only(rig, corr, X0), corr.view_idx, names)
    x = problem.x0(X0)
    keep = np.ones(M, bool)
    for _ in range(2):  # solve, drop outliers, solve again if any
        x = problem.solve(x, keep, max_nfev)
        err = np.linalg.norm(problem.residuals(x, np.ones(M, bool))[: 2 * M].reshape(M, 2), axis=1)
        inliers = err <= max(outlier_px, 4.0 * float(np.median(err)))
        if np.array_equal(inliers, keep):
            break
        keep = inliers
    new_rig = problem.rig_from(x)
    X = x[problem.n_cam :].reshape(-1, 3)
    after = _per_camera_rms(_reprojection(new_rig, corr, X)[keep], corr.view_idx[keep], names)
    log.info("refine: %d observations (%d outliers dropped), %d points", M, int((~keep).sum()), len(X))
    return RefineResult(new_rig, before, after, tuple(fixed), scale_cam, len(X))


class _Problem:
    """Parameters: per free camera rotvec (3), t_mm (3) [, log focal scale (1)]; then points (Q,3)."""

    def __init__(
        self,
        rig: CameraRig,
        corr: Correspondences,
        free: list[int],
        refine_focal: bool,
        ref_v: int,
        scale_v: int | None,
    ) -> None:
        from scipy.spatial.transform import Rotation

        self.rig, self.corr, self.free, self.refine_focal = rig, corr, free, refine_focal
        self.per_cam = 7 if refine_focal else 6
        self.n_cam = self.per_cam * len(free)
        self.Q = len(corr.points_w)
        self.n_params = self.n_cam + 3 * self.Q
        self.col_of = {v: self.per_cam * i for i, v in enumerate(free)}
        self.rot0 = np.stack([Rotation.from_matrix(c.R).as_rotvec() for c in rig])
        self.t0 = rig.t_mm
        self.ref_v, self.scale_v = ref_v, scale_v
        self.d0 = float(np.linalg.norm(rig[scale_v].center_mm - rig[ref_v].center_mm)) if scale_v is not None else 0.0
        self.sqrt_w = np.sqrt(np.clip(corr.weight, 1e-3, None))[:, None]

    def x0(self, points_w: np.ndarray) -> np.ndarray:
        cams = [
            np.concatenate([self.rot0[v], self.t0[v]] + ([np.zeros(1)] if self.refine_focal else [])) for v in self.free
        ]
        return np.concatenate(cams + [points_w.ravel()])

    def cameras(self, x: np.ndarray):
        rv, t, logf = self.rot0.copy(), self.t0.copy(), np.zeros(len(self.rig))
        for v in self.free:
            p = x[self.col_of[v] : self.col_of[v] + self.per_cam]
            rv[v], t[v] = p[:3], p[3:6]
            if self.refine_focal:
                logf[v] = p[6]
        return rv, t, logf

    def residuals(self, x: np.ndarray, keep: np.ndarray) -> np.ndarray:
        from scipy.spatial.transform import Rotation

        c = self.corr
        view = c.view_idx[keep]
        rv, t, logf = self.cameras(x)
        X = x[self.n_cam :].reshape(self.Q, 3)[c.point_idx[keep]]
        Xc = Rotation.from_rotvec(rv[view]).apply(X) + t[view]
        K = self.rig.K[view]
        scale = np.exp(logf[view])
        K[:, 0, :2] *= scale[:, None]
        K[:, 1, 1] *= scale
        r = ((project_with(Xc, K, self.rig.dist[view]) - c.uv[keep]) * self.sqrt_w[keep]).ravel()
        if self.scale_v is not None:
            centers = [-Rotation.from_rotvec(rv[v]).as_matrix().T @ t[v] for v in (self.scale_v, self.ref_v)]
            r = np.append(r, 10.0 * (np.linalg.norm(centers[0] - centers[1]) - self.d0))  # 0.1 mm ~ 1 px
        return r

    def sparsity(self, keep: np.ndarray):
        from scipy.sparse import lil_matrix

        c = self.corr
        view, pidx = c.view_idx[keep], c.point_idx[keep]
        M = len(view)
        extra = 1 if self.scale_v is not None else 0
        S = lil_matrix((2 * M + extra, self.n_params), dtype=np.int8)
        rows = np.arange(M)
        for r2 in (0, 1):
            for k in range(3):
                S[2 * rows + r2, self.n_cam + 3 * pidx + k] = 1
            for v in self.free:
                rv = rows[view == v]
                for k in range(self.per_cam):
                    S[2 * rv + r2, self.col_of[v] + k] = 1
        if extra and self.scale_v in self.col_of:
            S[2 * M, self.col_of[self.scale_v] : self.col_of[self.scale_v] + 6] = 1
        return S

    def solve(self, x: np.ndarray, keep: np.ndarray, max_nfev: int) -> np.ndarray:
        from scipy.optimize import least_squares

        sol = least_squares(
            self.residuals,
            x,
            args=(keep,),
            jac_sparsity=self.sparsity(keep),
            x_scale="jac",
            method="trf",
            max_nfev=max_nfev,
            xtol=1e-8,
            ftol=1e-8,
        )
        return sol.x

    def rig_from(self, x: np.ndarray) -> CameraRig:
        from scipy.spatial.transform import Rotation

        rv, t, logf = self.cameras(x)
        cams = []
        for v, cam in enumerate(self.rig):
            if v not in self.col_of:  # fixed cameras are returned exactly as given
                cams.append(cam)
                continue
            K = cam.K.copy()
            K[0, :2] *= np.exp(logf[v])
            K[1, 1] *= np.exp(logf[v])
            cams.append(
                cam.replace(
                    R=Rotation.from_rotvec(rv[v]).as_matrix(),
                    t_mm=t[v],
                    K=K,
                    source=f"{cam.source} (refined from people)",
                )
            )
        return CameraRig(tuple(cams))


def _reprojection(rig: CameraRig, corr: Correspondences, X: np.ndarray) -> np.ndarray:
    """(M,2) px residuals of every observation for points X (Q,3)."""
    from calib.projection import project_points

    res = np.zeros_like(corr.uv)
    for v, cam in enumerate(rig):
        m = corr.view_idx == v
        res[m] = project_points(X[corr.point_idx[m]], cam) - corr.uv[m]
    return res


def _fit_points_only(rig: CameraRig, corr: Correspondences, X0: np.ndarray) -> np.ndarray:
    """Residuals (M,2) after the best 3D points for a fixed rig (the fair 'before' figure)."""
    from scipy.optimize import least_squares
    from scipy.sparse import lil_matrix

    Q, M = len(X0), len(corr.uv)
    K, dist, R, t = rig.K[corr.view_idx], rig.dist[corr.view_idx], rig.R[corr.view_idx], rig.t_mm[corr.view_idx]

    def residuals(x):
        X = x.reshape(Q, 3)[corr.point_idx]
        Xc = np.einsum("mij,mj->mi", R, X) + t
        return (project_with(Xc, K, dist) - corr.uv).ravel()

    sparsity = lil_matrix((2 * M, 3 * Q), dtype=np.int8)
    rows = np.arange(M)
    for k in range(3):
        sparsity[2 * rows, 3 * corr.point_idx + k] = 1
        sparsity[2 * rows + 1, 3 * corr.point_idx + k] = 1
    sol = least_squares(residuals, X0.ravel(), jac_sparsity=sparsity, method="trf", max_nfev=50)
    return sol.fun.reshape(M, 2)
