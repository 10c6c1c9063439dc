"""Capture-volume geometry against a rig: which cameras see a point, the volume's corners."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from calib.camera import CameraRig
from calib.projection import depth_mm, in_image, project_points


@dataclass(frozen=True)
class PointView:
    """How one camera sees one world point."""

    camera: str
    uv_px: tuple[float, float]
    depth_mm: float
    visible: bool  # in front of the camera and inside the image


def volume_corners_mm(center_mm, size_mm) -> np.ndarray:
    """(8,3) corners of the axis-aligned box ``center_mm ± size_mm / 2``."""
    center = np.asarray(center_mm, dtype=np.float64)
    half = np.asarray(size_mm, dtype=np.float64) / 2
    signs = np.array([[sx, sy, sz] for sx in (-1, 1) for sy in (-1, 1) for sz in (-1, 1)], dtype=np.float64)
    return center + signs * half


def point_views(cameras: CameraRig, point_mm) -> list[PointView]:
    """Project one world point (3,) mm into every camera of the rig."""
    point = np.asarray(point_mm, dtype=np.float64).reshape(3)
    views = []
    for cam in cameras:
        uv = project_points(point, cam)
        z = float(depth_mm(point, cam))
        views.append(PointView(cam.name, (float(uv[0]), float(uv[1])), z, bool(z > 0 and in_image(uv, cam))))
    return views


def views_per_point(cameras: CameraRig, points_mm: np.ndarray) -> np.ndarray:
    """(N,) number of cameras that see each of (N,3) world points (in front and inside the image)."""
    pts = np.asarray(points_mm, dtype=np.float64).reshape(-1, 3)
    count = np.zeros(len(pts), dtype=np.int64)
    for cam in cameras:
        uv = project_points(pts, cam)
        count += (depth_mm(pts, cam) > 0) & in_image(uv, cam)
    return count


def volume_from_cameras(
    cameras: CameraRig, min_views: int | None = None, z_range_mm: tuple[float, float] = (-100.0, 2100.0), grid: int = 81
) -> tuple[tuple[float, float, float], tuple[float, float, float]]:
    """A capture volume for a rig that declares none: the box over the floor area that at least
    ``min_views`` cameras (default: 60 % of them, at least 2) see at 0.5, 1 or 1.5 m (z up, floor at
    z = 0), ``z_range_mm`` tall. (Two cameras of four also see far behind the people: on the Pose2Sim
    rig that box is 12.8 m long; three of four give 4.3 x 2.7 m around the treadmill.)

    Returns:
        (center_mm, size_mm).
    Raises:
        CalibrationError: no point at hip height is seen by ``min_views`` cameras (they do not overlap).
    """
    from calib.camera import CalibrationError

    if min_views is None:
        min_views = max(2, int(np.ceil(0.6 * len(cameras))))
    min_views = min(min_views, len(cameras))
    centres = cameras.centers_mm
    reach = max(float(np.ptp(centres[:, :2], axis=0).max()), 2000.0)
    lo, hi = centres[:, :2].min(0) - reach, centres[:, :2].max(0) + reach
    xs, ys = np.linspace(lo[0], hi[0], grid), np.linspace(lo[1], hi[1], grid)
    gx, gy = np.meshgrid(xs, ys, indexing="ij")
    seen = np.zeros(gx.shape, dtype=bool)
    for z in (500.0, 1000.0, 1500.0):  # a person's legs, hips and chest must all be seen
        pts = np.stack([gx.ravel(), gy.ravel(), np.full(gx.size, z)], axis=1)
        seen |= (views_per_point(cameras, pts) >= min_views).reshape(gx.shape)
    if not seen.any():
        raise CalibrationError(
            f"cameras {cameras.names}: no point 0.5-1.5 m above the floor (z = 0) is seen by "
            f"{min_views} cameras; the cameras do not overlap (or z is not up): give the rig a "
            "volume (docs/rig_yaml.md)"
        )
    x, y = gx[seen], gy[seen]
    step = np.array([xs[1] - xs[0], ys[1] - ys[0]])
    xy_lo, xy_hi = np.array([x.min(), y.min()]) - step / 2, np.array([x.max(), y.max()]) + step / 2
    center = ((xy_lo + xy_hi) / 2).tolist() + [(z_range_mm[0] + z_range_mm[1]) / 2]
    size = (xy_hi - xy_lo).tolist() + [z_range_mm[1] - z_range_mm[0]]
    return (tuple(round(float(c), 1) for c in center), tuple(round(float(s), 1) for s in size))  # type: ignore[return-value]


def cameras_not_seeing(cameras: CameraRig, center_mm, size_mm, samples: int = 5) -> list[str]:
    """Names of the cameras that see no point of a ``samples``³ grid inside the volume."""
    c, h = np.asarray(center_mm, float), np.asarray(size_mm, float) / 2
    axes = [np.linspace(c[i] - h[i], c[i] + h[i], samples) for i in range(3)]
    pts = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 3)
    blind = []
    for cam in cameras:
        uv = project_points(pts, cam)
        if not ((depth_mm(pts, cam) > 0) & in_image(uv, cam)).any():
            blind.append(cam.name)
    return blind
