"""Pure-numpy scene geometry: skeleton line sets, joint markers, camera frusta, floor grid, volume box.

Everything here is plain arrays in world millimetres (z up), testable without a display and
shared by every renderer (Open3D window, headless renderer, software fallback). Colours are
RGB floats in [0, 1]; convert to BGR only at the cv2 boundary.
"""

from __future__ import annotations

import colorsys
from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np

from calib.camera import Camera, CameraRig
from calib.projection import pixel_rays_w

UNTRACKED_RGB = (0.6, 0.6, 0.6)
GRID_RGB = (0.35, 0.35, 0.35)
VOLUME_RGB = (0.95, 0.75, 0.2)
FRUSTUM_RGB = (0.3, 0.6, 1.0)
MISSING_CAMERA_RGB = (1.0, 0.15, 0.15)
_GOLDEN = 0.618033988749895


@dataclass(frozen=True, eq=False)
class LineSet:
    """Coloured segments.

    Attributes:
        points_w: (N,3) float64 world mm.
        lines: (M,2) int64 indices into ``points_w``.
        colors: (M,3) float64 RGB in [0, 1], one per line.
    """

    points_w: np.ndarray
    lines: np.ndarray
    colors: np.ndarray

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        set_(self, "points_w", np.asarray(self.points_w, dtype=np.float64).reshape(-1, 3))
        set_(self, "lines", np.asarray(self.lines, dtype=np.int64).reshape(-1, 2))
        set_(self, "colors", np.asarray(self.colors, dtype=np.float64).reshape(-1, 3))
        assert len(self.colors) == len(self.lines), "one colour per line"
        assert self.lines.size == 0 or (self.lines.min() >= 0 and self.lines.max() < len(self.points_w))

    @property
    def segments_w(self) -> np.ndarray:
        """(M,2,3) the two end points of every line."""
        return self.points_w[self.lines]

    @staticmethod
    def empty() -> "LineSet":
        return LineSet(np.zeros((0, 3)), np.zeros((0, 2), np.int64), np.zeros((0, 3)))


@dataclass(frozen=True, eq=False)
class PointSet:
    """Coloured points (joints). points_w: (N,3) mm; colors: (N,3) RGB [0,1]; sizes_mm: (N,)."""

    points_w: np.ndarray
    colors: np.ndarray
    sizes_mm: np.ndarray


@dataclass(frozen=True, eq=False)
class Label:
    """A text label anchored at a world point (drawn in 2D by the renderer)."""

    text: str
    point_w: np.ndarray  # (3,) mm
    color: tuple[float, float, float]


def merge(line_sets: Iterable[LineSet]) -> LineSet:
    """One LineSet holding all segments of ``line_sets`` (indices re-based)."""
    pts, lines, cols, offset = [], [], [], 0
    for ls in line_sets:
        pts.append(ls.points_w)
        lines.append(ls.lines + offset)
        cols.append(ls.colors)
        offset += len(ls.points_w)
    if not pts:
        return LineSet.empty()
    return LineSet(np.concatenate(pts), np.concatenate(lines), np.concatenate(cols))


# --------------------------------------------------------------------------- colours


def track_color(track_id: int) -> tuple[float, float, float]:
    """Stable, well-separated RGB colour of a track id (golden-ratio hues); grey for -1 (untracked)."""
    if track_id < 0:
        return UNTRACKED_RGB
    hue = (0.05 + track_id * _GOLDEN) % 1.0
    return colorsys.hsv_to_rgb(hue, 0.7, 1.0)  # light enough to read on the dark background


def confidence_shade(rgb: Sequence[float], score: float) -> tuple[float, float, float]:
    """Fade ``rgb`` towards dark grey as ``score`` (0..1) falls: confidence made visible."""
    s = float(np.clip(score, 0.0, 1.0))
    base = np.asarray(rgb, dtype=np.float64)
    return tuple((0.25 + 0.75 * s) * base + (1.0 - s) * 0.15)


def to_bgr255(rgb: Sequence[float]) -> tuple[int, int, int]:
    """RGB float [0,1] -> cv2 BGR ints."""
    r, g, b = (int(round(255.0 * min(1.0, max(0.0, float(c))))) for c in rgb)
    return (b, g, r)


# --------------------------------------------------------------------------- people


def _valid_joints(poses: np.ndarray, min_score: float) -> np.ndarray:
    """(P,J) bool: finite coordinates and score >= min_score."""
    return np.isfinite(poses[..., :3]).all(-1) & (poses[..., 3] >= min_score)


def skeleton_lines(
    poses: np.ndarray, edges: Sequence[tuple[int, int]], track_ids: Sequence[int], min_score: float = 0.0
) -> LineSet:
    """Bones of every person, coloured by track id.

    Args:
        poses: (P,J,4) x, y, z mm and a score per joint (the ``poses`` message layout).
        edges: bone pairs (from the message's skeleton field).
        track_ids: (P,) ids, -1 for untracked.
        min_score: a bone is drawn when both of its joints have at least this score.
    """
    poses = np.asarray(poses, dtype=np.float64).reshape(-1, *np.shape(poses)[-2:])
    P, J = poses.shape[:2]
    edges_arr = np.asarray(edges, dtype=np.int64).reshape(-1, 2)
    if P == 0 or len(edges_arr) == 0:
        return LineSet.empty()
    valid = _valid_joints(poses, min_score)
    keep = valid[:, edges_arr[:, 0]] & valid[:, edges_arr[:, 1]]  # (P,E)
    person, edge = np.nonzero(keep)
    lines = person[:, None] * J + edges_arr[edge]
    ids = np.asarray(track_ids, dtype=np.int64).reshape(P)
    palette = np.array([track_color(int(t)) for t in ids]).reshape(P, 3)
    return LineSet(poses[..., :3].reshape(P * J, 3), lines, palette[person])


def joint_points(
    poses: np.ndarray, track_ids: Sequence[int], min_score: float = 0.0, size_mm: float = 40.0
) -> PointSet:
    """Joint markers: colour by track, faded by score; size grows with score (confidence shown)."""
    poses = np.asarray(poses, dtype=np.float64).reshape(-1, *np.shape(poses)[-2:])
    P = poses.shape[0]
    valid = _valid_joints(poses, min_score)
    ids = np.asarray(track_ids, dtype=np.int64).reshape(P)
    person, joint = np.nonzero(valid)
    scores = np.clip(poses[person, joint, 3], 0.0, 1.0)
    colors = np.array([confidence_shade(track_color(int(ids[p])), s) for p, s in zip(person, scores)])
    return PointSet(poses[person, joint, :3], colors.reshape(-1, 3), size_mm * (0.5 + 0.5 * scores))


def person_labels(
    poses: np.ndarray, track_ids: Sequence[int], min_score: float = 0.0, lift_mm: float = 250.0
) -> list[Label]:
    """One label per person ('id 3  0.87': track id and mean joint score) above its highest joint."""
    labels = []
    poses = np.asarray(poses, dtype=np.float64).reshape(-1, *np.shape(poses)[-2:])
    for p, tid in enumerate(np.asarray(track_ids, dtype=np.int64).reshape(len(poses))):
        valid = _valid_joints(poses[p : p + 1], min_score)[0]
        if not valid.any():
            continue
        pts = poses[p, valid, :3]
        top = pts[np.argmax(pts[:, 2])] + np.array([0.0, 0.0, lift_mm])
        name = f"id {tid}" if tid >= 0 else "?"
        labels.append(Label(f"{name}  {poses[p, valid, 3].mean():.2f}", top, track_color(int(tid))))
    return labels


def root_position_mm(poses: np.ndarray, index: int, root: int, min_score: float = 0.0) -> np.ndarray | None:
    """(3,) root joint of person ``index`` (mean of valid joints if the root is missing), or None."""
    pose = np.asarray(poses, dtype=np.float64)[index]
    valid = _valid_joints(pose[None], min_score)[0]
    if valid[root]:
        return pose[root, :3].copy()
    return pose[valid, :3].mean(0) if valid.any() else None


# --------------------------------------------------------------------------- world furniture


def camera_frustum(camera: Camera, depth_mm: float = 600.0, rgb: Sequence[float] = FRUSTUM_RGB) -> LineSet:
    """Pyramid from the camera centre to its 4 image corners at ``depth_mm`` (camera-frame z),
    plus a small triangle on the top edge marking image 'up'. Corners go through undistortion."""
    w, h = camera.width - 1.0, camera.height - 1.0
    corners_px = np.array([[0.0, 0.0], [w, 0.0], [w, h], [0.0, h]])
    rays_w = pixel_rays_w(corners_px, camera)  # (4,3) unit
    z_axis_w = camera.R[2]
    corners_w = camera.center_mm + rays_w * (depth_mm / (rays_w @ z_axis_w))[:, None]
    top_mid = 0.5 * (corners_w[0] + corners_w[1])
    up_w = -camera.R[1]  # image y points down
    tip = top_mid + up_w * 0.25 * np.linalg.norm(corners_w[1] - corners_w[0])
    points = np.vstack([camera.center_mm, corners_w, tip])
    lines = [(0, 1), (0, 2), (0, 3), (0, 4), (1, 2), (2, 3), (3, 4), (4, 1), (1, 5), (2, 5)]
    return LineSet(points, lines, np.tile(rgb, (len(lines), 1)))


def rig_frusta(
    rig: CameraRig, depth_mm: float = 600.0, missing: Iterable[str] = (), rgb: Sequence[float] = FRUSTUM_RGB
) -> LineSet:
    """Frusta of all cameras; cameras named in ``missing`` are drawn red."""
    missing = set(missing)
    return merge(camera_frustum(cam, depth_mm, MISSING_CAMERA_RGB if cam.name in missing else rgb) for cam in rig)


def floor_grid(
    center_mm: Sequence[float],
    size_mm: Sequence[float],
    spacing_mm: float = 1000.0,
    z_mm: float = 0.0,
    rgb: Sequence[float] = GRID_RGB,
) -> LineSet:
    """Square grid on the plane z = ``z_mm`` covering ``size_mm`` (x, y) around ``center_mm`` (x, y).

    Lines sit on multiples of ``spacing_mm`` (world-aligned, so the grid does not slide with the
    volume); the outline is always drawn.
    """
    if spacing_mm <= 0:
        raise ValueError(f"floor_grid: spacing_mm must be > 0, got {spacing_mm}")
    cx, cy = float(center_mm[0]), float(center_mm[1])
    hx, hy = 0.5 * float(size_mm[0]), 0.5 * float(size_mm[1])
    x0, x1, y0, y1 = cx - hx, cx + hx, cy - hy, cy + hy
    xs = np.unique(
        np.concatenate([[x0, x1], np.arange(np.ceil(x0 / spacing_mm), np.floor(x1 / spacing_mm) + 1) * spacing_mm])
    )
    ys = np.unique(
        np.concatenate([[y0, y1], np.arange(np.ceil(y0 / spacing_mm), np.floor(y1 / spacing_mm) + 1) * spacing_mm])
    )
    pts = [[x, y0, z_mm] for x in xs] + [[x, y1, z_mm] for x in xs]
    pts += [[x0, y, z_mm] for y in ys] + [[x1, y, z_mm] for y in ys]
    nx, ny = len(xs), len(ys)
    lines = [(i, nx + i) for i in range(nx)] + [(2 * nx + j, 2 * nx + ny + j) for j in range(ny)]
    return LineSet(np.array(pts), lines, np.tile(rgb, (len(lines), 1)))


def box_lines(center_mm: Sequence[float], size_mm: Sequence[float], rgb: Sequence[float] = VOLUME_RGB) -> LineSet:
    """The 12 edges of an axis-aligned box (the capture volume)."""
    c = np.asarray(center_mm, dtype=np.float64).reshape(3)
    half = 0.5 * np.asarray(size_mm, dtype=np.float64).reshape(3)
    signs = np.array([[sx, sy, sz] for sx in (-1, 1) for sy in (-1, 1) for sz in (-1, 1)], dtype=np.float64)
    pts = c + signs * half
    lines = [(a, b) for a in range(8) for b in range(a + 1, 8) if np.abs(signs[a] - signs[b]).sum() == 2]
    return LineSet(pts, lines, np.tile(rgb, (12, 1)))


def look_at(
    center_mm: Sequence[float], target_mm: Sequence[float], up: Sequence[float] = (0.0, 0.0, 1.0)
) -> np.ndarray:
    """(3,3) world->camera rotation of a camera at ``center_mm`` looking at ``target_mm`` (image y down)."""
    z = np.asarray(target_mm, dtype=np.float64) - np.asarray(center_mm, dtype=np.float64)
    z /= np.linalg.norm(z)
    x = np.cross(z, np.asarray(up, dtype=np.float64))
    if np.linalg.norm(x) < 1e-9:
        x = np.cross(z, [0.0, 1.0, 0.0])
    x /= np.linalg.norm(x)
    return np.stack([x, np.cross(z, x), z])


def orbit_camera(
    target_mm: Sequence[float],
    distance_mm: float,
    azimuth_deg: float,
    elevation_deg: float,
    width: int,
    height: int,
    fov_y_deg: float = 50.0,
    name: str = "view",
) -> Camera:
    """Undistorted virtual camera orbiting ``target_mm``; principal point at the image centre
    ((W-1)/2, (H-1)/2) and fx = fy, which is what Open3D's legacy view control can reproduce."""
    az, el = np.deg2rad(azimuth_deg), np.deg2rad(elevation_deg)
    offset = distance_mm * np.array([np.cos(el) * np.cos(az), np.cos(el) * np.sin(az), np.sin(el)])
    center = np.asarray(target_mm, dtype=np.float64) + offset
    f = 0.5 * height / np.tan(0.5 * np.deg2rad(fov_y_deg))
    K = [[f, 0.0, (width - 1) / 2.0], [0.0, f, (height - 1) / 2.0], [0.0, 0.0, 1.0]]
    return Camera.from_center(
        name, width, height, K, np.zeros(5), look_at(center, target_mm), center, "viz.orbit_camera"
    )


def overview_camera(
    volume_center_mm: Sequence[float],
    volume_size_mm: Sequence[float],
    width: int = 960,
    height: int = 540,
    azimuth_deg: float = -60.0,
    elevation_deg: float = 30.0,
    radius_mm: float | None = None,
) -> Camera:
    """A 3/4 view looking at the volume centre that frames a disc of ``radius_mm`` (default: the
    volume's floor area; pass the rig's radius to get closer when the volume is much larger)."""
    size = np.asarray(volume_size_mm, dtype=np.float64)
    target = np.asarray(volume_center_mm, dtype=np.float64)
    radius = 0.5 * float(np.linalg.norm(size[:2])) if radius_mm is None else float(radius_mm)
    distance = radius / np.tan(0.5 * np.deg2rad(50.0))
    return orbit_camera(target, distance, azimuth_deg, elevation_deg, width, height, 50.0)


def rig_radius_mm(rig: CameraRig, center_mm: Sequence[float], margin_mm: float = 800.0) -> float:
    """Horizontal distance from ``center_mm`` to the farthest camera, plus a margin."""
    d = np.linalg.norm(rig.centers_mm[:, :2] - np.asarray(center_mm, dtype=np.float64)[:2], axis=1)
    return float(d.max()) + margin_mm


def follow_camera(base: Camera, target_mm: Sequence[float], distance_mm: float) -> Camera:
    """``base`` moved (same orientation and intrinsics) so that it looks at ``target_mm`` from
    ``distance_mm`` away: the 'follow a person' view."""
    center = np.asarray(target_mm, dtype=np.float64) - base.R[2] * float(distance_mm)
    return base.replace(t_mm=-base.R @ center)
