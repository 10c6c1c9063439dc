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
