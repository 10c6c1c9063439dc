"""Drawing a scene through a calibrated camera with cv2: projected lines (clipped to the near
plane, bent by lens distortion, cut to the image), joint discs, labels and the HUD.

Used by the software renderer, and for the labels/HUD on top of Open3D renders.
"""

from __future__ import annotations

import cv2
import numpy as np

from calib.camera import Camera
from calib.projection import depth_mm, project_points, undistort_points
from viz import geometry as geo
from viz.scene import SceneFrame

NEAR_MM = 50.0
FOV_MARGIN = 1.15  # lens model trusted up to this x the image corners' undistorted radius


def _visible_uv(points_w: np.ndarray, camera: Camera) -> tuple[np.ndarray, np.ndarray]:
    """(N,2) projected pixels and (N,) mask of points in front of the camera."""
    if len(points_w) == 0:
        return np.zeros((0, 2)), np.zeros(0, bool)
    return project_points(points_w, camera), depth_mm(points_w, camera) > NEAR_MM


def draw_annotations(image: np.ndarray, camera: Camera, frame: SceneFrame) -> np.ndarray:
    """Draw labels at their projected anchors and the HUD text in the top-left corner (in place)."""
    scale = max(0.4, image.shape[0] / 900.0)
    for label in frame.labels:
        uv, ok = _visible_uv(label.point_w[None], camera)
        if ok[0] and np.all(np.abs(uv[0]) < 1e5):
            x, y = int(round(uv[0, 0])), int(round(uv[0, 1]))
            cv2.putText(image, label.text, (x, y), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), 3, cv2.LINE_AA)
            cv2.putText(
                image, label.text, (x, y), cv2.FONT_HERSHEY_SIMPLEX, scale, geo.to_bgr255(label.color), 1, cv2.LINE_AA
            )
    if frame.hud:
        step = int(round(26 * scale / 0.6))
        widths = [cv2.getTextSize(t, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)[0][0] for t in frame.hud]
        box = image[: step * len(frame.hud) + 10, : max(widths) + 16]
        box[:] = (box * 0.35).astype(np.uint8)  # darken behind the text so it reads on any scene
        for i, text in enumerate(frame.hud):
            cv2.putText(
                image, text, (8, step * (i + 1)), cv2.FONT_HERSHEY_SIMPLEX, scale, (235, 235, 235), 1, cv2.LINE_AA
            )
    return image


def _clip_segments(seg_w: np.ndarray, camera: Camera) -> tuple[np.ndarray, np.ndarray]:
    """Clip (M,2,3) world segments to the near plane z_cam > NEAR_MM; drops segments fully behind."""
    z = depth_mm(seg_w, camera)  # (M,2)
    keep = (z > NEAR_MM).any(1)
    seg, z = seg_w[keep].copy(), z[keep]
    for a, b in ((0, 1), (1, 0)):
        behind = z[:, a] <= NEAR_MM
        if behind.any():
            t = (NEAR_MM + 1e-3 - z[behind, a]) / (z[behind, b] - z[behind, a])
            seg[behind, a] = seg[behind, a] + t[:, None] * (seg[behind, b] - seg[behind, a])
    return seg, keep


def _distorted_segments(seg_w: np.ndarray, camera: Camera, pieces: int = 12) -> np.ndarray:
    """Split (M,2,3) segments into ``pieces`` each (straight lines bend under lens distortion) and
    keep only pieces inside the lens model's valid field of view: far outside the image the
    distortion polynomial folds points back into the picture, which would draw phantom lines."""
    corners = np.array(
        [[0.0, 0.0], [camera.width - 1.0, 0.0], [0.0, camera.height - 1.0], [camera.width - 1.0, camera.height - 1.0]]
    )
    r_max = FOV_MARGIN * np.linalg.norm(undistort_points(corners, camera), axis=-1).max()
    t = np.linspace(0.0, 1.0, pieces + 1)[None, :, None]
    pts = seg_w[:, :1] + t * (seg_w[:, 1:] - seg_w[:, :1])  # (M,pieces+1,3)
    cam_pts = pts @ camera.R.T + camera.t_mm
    ok = (cam_pts[..., 2] > NEAR_MM) & (
        np.linalg.norm(cam_pts[..., :2] / np.maximum(cam_pts[..., 2:], NEAR_MM), axis=-1) <= r_max
    )
    uv = project_points(pts, camera)
    good = ok[:, :-1] & ok[:, 1:]  # (M,pieces)
    return np.stack([uv[:, :-1][good], uv[:, 1:][good]], axis=1), np.nonzero(good)[0]


def draw_lines(image: np.ndarray, camera: Camera, lines: geo.LineSet, width_px: int) -> None:
    """Project a LineSet through ``camera`` (with its distortion) and draw it with cv2 (in place)."""
    if len(lines.lines) == 0:
        return
    seg_w, keep = _clip_segments(lines.segments_w, camera)
    colors = lines.colors[keep]
    if np.any(camera.dist != 0):
        uv, owner = _distorted_segments(seg_w, camera)
        colors = colors[owner]
    else:
        uv = project_points(seg_w, camera)  # (M,2,2)
    h, w = image.shape[:2]
    uv, owner = clip_segments_2d(uv, (-8.0, -8.0, w + 8.0, h + 8.0))
    colors = colors[owner]
    if len(uv) == 0:
        return
    pix = np.round(uv).astype(np.int32).reshape(-1, 2, 1, 2)  # polylines wants (N,1,2) per line
    palette, which = np.unique(colors, axis=0, return_inverse=True)
    for k, rgb in enumerate(palette):  # one cv2 call per colour instead of one per segment
        cv2.polylines(image, list(pix[which.reshape(-1) == k]), False, geo.to_bgr255(rgb), width_px, cv2.LINE_AA)


def clip_segments_2d(seg_px: np.ndarray, rect: tuple[float, float, float, float]) -> tuple[np.ndarray, np.ndarray]:
    """Liang–Barsky clipping of (M,2,2) pixel segments to ``rect`` = (x0, y0, x1, y1), vectorised.

    cv2 draws with 16-bit sub-pixel fixed point, so far-away end points must be cut first.

    Returns:
        (K,2,2) clipped segments and (K,) indices of the input segments they came from.
    """
    seg = np.asarray(seg_px, dtype=np.float64).reshape(-1, 2, 2)
    finite = np.isfinite(seg).all(axis=(1, 2))
    seg = np.where(finite[:, None, None], seg, 0.0)
    a, d = seg[:, 0], seg[:, 1] - seg[:, 0]
    t0, t1 = np.zeros(len(seg)), np.ones(len(seg))
    keep = finite.copy()
    x0, y0, x1, y1 = rect
    for p, q in ((-d[:, 0], a[:, 0] - x0), (d[:, 0], x1 - a[:, 0]), (-d[:, 1], a[:, 1] - y0), (d[:, 1], y1 - a[:, 1])):
        parallel = p == 0
        keep &= ~(parallel & (q < 0))
        r = np.divide(q, p, out=np.zeros_like(q), where=~parallel)
        t0 = np.where((p < 0) & ~parallel, np.maximum(t0, r), t0)
        t1 = np.where((p > 0) & ~parallel, np.minimum(t1, r), t1)
    keep &= t0 <= t1
    idx = np.nonzero(keep)[0]
    out = np.stack([a[idx] + t0[idx, None] * d[idx], a[idx] + t1[idx, None] * d[idx]], axis=1)
    return out, idx


def draw_points(image: np.ndarray, camera: Camera, points: geo.PointSet) -> None:
    """Joint markers as filled discs whose radius is the projected marker size (in place)."""
    uv, ok = _visible_uv(points.points_w, camera)
    if not ok.any():
        return
    z = depth_mm(points.points_w, camera)
    radius = np.maximum(2.0, 0.5 * points.sizes_mm * camera.K[1, 1] / np.maximum(z, NEAR_MM))
    for (u, v), r, rgb, good in zip(uv, radius, points.colors, ok):
        if good and abs(u) < 1e5 and abs(v) < 1e5:
            cv2.circle(image, (int(round(u)), int(round(v))), int(round(r)), geo.to_bgr255(rgb), -1, cv2.LINE_AA)
