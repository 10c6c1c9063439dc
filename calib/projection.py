"""Projection, distortion and undistortion in numpy (the reference implementation).

The model is OpenCV's 5-coefficient Brown–Conrady with a simultaneous update of x and y,
which is exactly what SelfPose3d's project layer computes (SPEC.md §2.5):
``u' = u(1 + k1 r² + k2 r⁴ + k3 r⁶) + 2 p1 u v + p2 (r² + 2u²)``,
``v' = v(1 + k1 r² + k2 r⁴ + k3 r⁶) + p1 (r² + 2v²) + 2 p2 u v``.
"""

from __future__ import annotations

import numpy as np

from calib.camera import Camera


def world_to_camera(points_w: np.ndarray, camera: Camera) -> np.ndarray:
    """(...,3) world mm -> (...,3) camera-frame mm."""
    return points_w @ camera.R.T + camera.t_mm


def distort_normalized(xy: np.ndarray, dist: np.ndarray) -> np.ndarray:
    """Apply Brown–Conrady distortion to normalised coords. xy: (...,2); dist: (5,)."""
    k1, k2, p1, p2, k3 = dist
    x, y = xy[..., 0], xy[..., 1]
    r2 = x * x + y * y
    radial = 1.0 + k1 * r2 + k2 * r2 * r2 + k3 * r2 * r2 * r2
    xd = x * radial + 2.0 * p1 * x * y + p2 * (r2 + 2.0 * x * x)
    yd = y * radial + p1 * (r2 + 2.0 * y * y) + 2.0 * p2 * x * y
    return np.stack([xd, yd], axis=-1)


def project_points(points_w: np.ndarray, camera: Camera) -> np.ndarray:
    """Project world points (...,3) mm to pixels (...,2), with distortion.

    Points behind the camera are projected too (no check), as upstream does; use
    :func:`depth_mm` to test ``z > 0``.
    """
    points_w = np.asarray(points_w, dtype=np.float64)
    xc = world_to_camera(points_w, camera)
    xy = xc[..., :2] / xc[..., 2:3]
    xy_d = distort_normalized(xy, camera.dist)
    K = camera.K
    u = K[0, 0] * xy_d[..., 0] + K[0, 1] * xy_d[..., 1] + K[0, 2]
    v = K[1, 1] * xy_d[..., 1] + K[1, 2]
    return np.stack([u, v], axis=-1)


def depth_mm(points_w: np.ndarray, camera: Camera) -> np.ndarray:
    """(...,) camera-frame z of world points (positive = in front of the camera)."""
    return world_to_camera(np.asarray(points_w, dtype=np.float64), camera)[..., 2]


def in_image(uv: np.ndarray, camera: Camera) -> np.ndarray:
    """(...,) bool: pixel lies within [0, W) x [0, H)."""
    return (uv[..., 0] >= 0) & (uv[..., 0] < camera.width) & (uv[..., 1] >= 0) & (uv[..., 1] < camera.height)


def undistort_points(uv: np.ndarray, camera: Camera, iterations: int = 20) -> np.ndarray:
    """Distorted pixels (...,2) -> normalised undistorted coords (...,2) (fixed-point, as OpenCV)."""
    uv = np.asarray(uv, dtype=np.float64)
    K = camera.K
    y = (uv[..., 1] - K[1, 2]) / K[1, 1]
    x = (uv[..., 0] - K[0, 2] - K[0, 1] * y) / K[0, 0]
    xd = np.stack([x, y], axis=-1)
    k1, k2, p1, p2, k3 = camera.dist
    xu = xd.copy()
    for _ in range(iterations):
        x, y = xu[..., 0], xu[..., 1]
        r2 = x * x + y * y
        radial = 1.0 + k1 * r2 + k2 * r2 * r2 + k3 * r2 * r2 * r2
        dx = 2.0 * p1 * x * y + p2 * (r2 + 2.0 * x * x)
        dy = p1 * (r2 + 2.0 * y * y) + 2.0 * p2 * x * y
        xu = np.stack([(xd[..., 0] - dx) / radial, (xd[..., 1] - dy) / radial], axis=-1)
    return xu


def undistort_pixels(uv: np.ndarray, camera: Camera) -> np.ndarray:
    """Distorted pixels (...,2) -> undistorted pixels (...,2) under the same K."""
    xy = undistort_points(uv, camera)
    K = camera.K
    return np.stack([K[0, 0] * xy[..., 0] + K[0, 1] * xy[..., 1] + K[0, 2], K[1, 1] * xy[..., 1] + K[1, 2]], -1)


def pixel_rays_w(uv: np.ndarray, camera: Camera) -> np.ndarray:
    """Unit ray directions (...,3) in world frame through distorted pixels (...,2)."""
    xy = undistort_points(uv, camera)
    d_c = np.concatenate([xy, np.ones_like(xy[..., :1])], axis=-1)
    d_w = d_c @ camera.R  # R^T d_c, row form
    return d_w / np.linalg.norm(d_w, axis=-1, keepdims=True)


def triangulate_dlt(uv: np.ndarray, cameras: list[Camera], weights: np.ndarray | None = None) -> np.ndarray:
    """Linear (DLT) triangulation of one point from V views.

    Args:
        uv: (V,2) distorted pixels.
        cameras: V cameras.
        weights: (V,) optional confidences (0 drops a view).
    Returns:
        (3,) world point in mm.
    """
    rows = []
    w = np.ones(len(cameras)) if weights is None else np.asarray(weights, dtype=np.float64)
    for (u, v), cam, wi in zip(uv, cameras, w):
        if wi <= 0:
            continue
        x, y = undistort_points(np.array([u, v]), cam)
        P = np.concatenate([cam.R, cam.t_mm[:, None]], axis=1)
        rows.append(wi * (x * P[2] - P[0]))
        rows.append(wi * (y * P[2] - P[1]))
    if len(rows) < 4:
        raise ValueError("triangulate_dlt: need at least 2 views with positive weight")
    _, _, vt = np.linalg.svd(np.stack(rows))
    X = vt[-1]
    return X[:3] / X[3]
