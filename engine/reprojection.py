"""3D people against per-view 2D people by reprojection: the pairing the learned route's ghost check,
the real-route benchmark and fit-rig's label-free validation share."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from calib.camera import CameraRig
from calib.projection import project_points


def match_reprojection(
    poses_mm: np.ndarray, people_2d: Sequence[np.ndarray], rig: CameraRig, min_score: float = 0.3
) -> tuple[list[list[float]], np.ndarray]:
    """Reprojection error of 3D people onto the estimator's 2D people.

    Each 3D person is projected into every camera and paired with the estimator person of that
    view with the lowest median joint distance (over joints scored >= ``min_score``), each 2D
    person used once (greedy by distance).

    Returns:
        per camera the list of per-pair median joint errors (px), and (P,V) the paired errors
        (NaN where the person had no 2D partner in that view).
    """
    P, V = len(poses_mm), len(rig)
    pair = np.full((P, V), np.nan)
    per_cam: list[list[float]] = [[] for _ in range(V)]
    for v, cam in enumerate(rig):
        det = np.asarray(people_2d[v])
        if not P or not len(det):
            continue
        uv = project_points(poses_mm.astype(np.float64), cam)  # (P,15,2)
        d = np.linalg.norm(uv[:, None] - det[None, :, :, :2], axis=-1)  # (P,N,15)
        ok = det[None, :, :, 2] >= min_score
        med = np.array(
            [
                [np.median(d[p, n][ok[0, n]]) if ok[0, n].sum() >= 3 else np.inf for n in range(len(det))]
                for p in range(P)
            ]
        )
        used_p, used_n = set(), set()
        for flat in np.argsort(med, axis=None):
            p, n = np.unravel_index(flat, med.shape)
            if not np.isfinite(med[p, n]) or p in used_p or n in used_n:
                continue
            used_p.add(p)
            used_n.add(n)
            pair[p, v] = med[p, n]
            per_cam[v].append(float(med[p, n]))
    return per_cam, pair


def confirmed_views(
    poses_mm: np.ndarray, people_2d: Sequence[np.ndarray], rig: CameraRig
) -> tuple[np.ndarray, np.ndarray]:
    """(P,) views whose paired estimator person each 3D person reprojects onto (median < 10 % of its
    image height), and (P,V) the paired median errors in px (NaN: no partner in that view)."""
    _, pair = match_reprojection(poses_mm, people_2d, rig)
    heights = np.array([[np.ptp(project_points(p.astype(np.float64), cam)[:, 1]) for cam in rig] for p in poses_mm])
    with np.errstate(invalid="ignore"):
        ok = pair < 0.1 * np.maximum(heights.reshape(pair.shape), 1.0)
    return ok.sum(1), pair
