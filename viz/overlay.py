"""2D overlays: 3D skeletons reprojected into each camera image, tiled side by side (cv2).

The quickest check that calibration and poses agree: bones drawn with the rig's own projection
(lens distortion included) must sit on the people in every view.
"""

from __future__ import annotations

import math
from typing import Sequence

import cv2
import numpy as np

from calib.camera import Camera, CameraRig
from calib.projection import depth_mm, project_points
from viz import geometry as geo
from viz.draw2d import NEAR_MM


def draw_skeletons(
    image: np.ndarray,
    camera: Camera,
    poses: np.ndarray,
    edges: Sequence[tuple[int, int]],
    track_ids: Sequence[int],
    min_score: float = 0.0,
    thickness_px: int = 2,
    joint_radius_px: int = 3,
    labels: bool = True,
) -> np.ndarray:
    """Draw people projected through ``camera`` onto a copy of ``image``.

    Args:
        image: (H,W,3) uint8 BGR, the camera's own picture (same size as the calibration).
        camera: the calibrated camera.
        poses: (P,J,4) x, y, z mm + score.
        edges: bones.
        track_ids: (P,) colours and labels.
        min_score: joints below it are not drawn (nor their bones).
        thickness_px, joint_radius_px: stroke sizes at the image's native resolution.
        labels: write 'id N' above each person.

    Returns:
        (H,W,3) uint8 BGR copy with the skeletons drawn.
    """
    out = np.ascontiguousarray(image).copy()
    poses = np.asarray(poses, dtype=np.float64).reshape(-1, *np.shape(poses)[-2:])
    if len(poses) == 0:
        return out
    xyz = poses[..., :3]
    ok = np.isfinite(xyz).all(-1) & (poses[..., 3] >= min_score)
    safe = np.where(ok[..., None], xyz, 0.0)
    uv = project_points(safe, camera)  # (P,J,2)
    ok &= depth_mm(safe, camera) > NEAR_MM
    ok &= np.all(np.abs(uv) < 1e5, axis=-1)
    ids = np.asarray(track_ids, dtype=np.int64).reshape(len(poses))
    pix = np.round(uv).astype(np.int64)
    for p in range(len(poses)):
        color = geo.to_bgr255(geo.track_color(int(ids[p])))
        for a, b in edges:
            if ok[p, a] and ok[p, b]:
                cv2.line(out, tuple(pix[p, a]), tuple(pix[p, b]), color, thickness_px, cv2.LINE_AA)
        for j in np.flatnonzero(ok[p]):
            shade = geo.to_bgr255(geo.confidence_shade(geo.track_color(int(ids[p])), poses[p, j, 3]))
            cv2.circle(out, tuple(pix[p, j]), joint_radius_px, shade, -1, cv2.LINE_AA)
        if labels and ok[p].any():
            top = pix[p][ok[p]][np.argmin(pix[p][ok[p]][:, 1])]
            text = f"id {ids[p]}" if ids[p] >= 0 else "?"
            org = (int(top[0]) - 12, int(top[1]) - 10)
            cv2.putText(out, text, org, cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 3, cv2.LINE_AA)
            cv2.putText(out, text, org, cv2.FONT_HERSHEY_SIMPLEX, 0.5, color, 1, cv2.LINE_AA)
    return out


def caption(image: np.ndarray, text: str, alert: bool = False) -> np.ndarray:
    """Write ``text`` in a bar at the top of ``image`` (in place); red bar when ``alert``."""
    bar_h = max(18, image.shape[0] // 18)
    image[:bar_h] = (image[:bar_h] * 0.3).astype(np.uint8) + (np.array([0, 0, 120], np.uint8) if alert else 0)
    scale = bar_h / 30.0
    cv2.putText(image, text, (6, int(bar_h * 0.75)), cv2.FONT_HERSHEY_SIMPLEX, scale, (240, 240, 240), 1, cv2.LINE_AA)
    return image


def side_by_side(images: Sequence[np.ndarray], columns: int | None = None, tile_width_px: int = 640) -> np.ndarray:
    """Tile images in a grid (row-major), each resized to ``tile_width_px`` wide with the first
    image's aspect ratio; empty cells are black.

    Returns:
        (rows*h, columns*w, 3) uint8 BGR mosaic.
    """
    if not images:
        raise ValueError("side_by_side: no images")
    n = len(images)
    columns = columns or int(math.ceil(math.sqrt(n)))
    rows = int(math.ceil(n / columns))
    h0, w0 = images[0].shape[:2]
    tw = int(tile_width_px)
    th = int(round(tw * h0 / w0))
    mosaic = np.zeros((rows * th, columns * tw, 3), np.uint8)
    for i, img in enumerate(images):
        r, c = divmod(i, columns)
        interp = cv2.INTER_AREA if img.shape[1] > tw else cv2.INTER_LINEAR
        mosaic[r * th : (r + 1) * th, c * tw : (c + 1) * tw] = cv2.resize(img, (tw, th), interpolation=interp)
    return mosaic


def overlay_views(
    images: Sequence[np.ndarray | None],
    rig: CameraRig,
    poses: np.ndarray,
    edges: Sequence[tuple[int, int]],
    track_ids: Sequence[int],
    min_score: float = 0.0,
    columns: int | None = None,
    tile_width_px: int = 640,
) -> np.ndarray:
    """Skeletons drawn into every camera's image, captioned with the camera name, tiled.

    Args:
        images: one BGR image per rig camera, in rig order; None for a missing view (black tile).
        rig: the calibrated rig (the images' cameras).
        poses, edges, track_ids, min_score: as in :func:`draw_skeletons`.

    Raises:
        ValueError: the number of images is not the number of cameras, or a size disagrees with
            the calibration (naming the camera).
    """
    if len(images) != len(rig):
        raise ValueError(f"overlay: {len(images)} images for a rig of {len(rig)} cameras {rig.names}")
    thick = max(1, int(round(rig[0].width / 640 * 2)))
    tiles = []
    for img, cam in zip(images, rig):
        if img is None:
            tiles.append(caption(np.zeros((cam.height, cam.width, 3), np.uint8), f"{cam.name}: missing", alert=True))
            continue
        if img.shape[:2] != (cam.height, cam.width):
            raise ValueError(f"overlay: camera '{cam.name}' is calibrated for {cam.width}x{cam.height} but its "
                             f"image is {img.shape[1]}x{img.shape[0]}; use the rig that matches the images")
        drawn = draw_skeletons(img, cam, poses, edges, track_ids, min_score, thick, thick + 1)
        tiles.append(caption(drawn, cam.name))
    return side_by_side(tiles, columns, tile_width_px)


class FramePoseMatcher:
    """Pairs ``poses`` messages with the ``frameset`` they were computed from (by frameset seq).

    Framesets are kept in a bounded ring (the newest ``capacity``); a poses message whose
    frameset is gone (too old) or never came is counted in ``unmatched``.

    Args:
        capacity: framesets kept while waiting for their poses.
    """

    def __init__(self, capacity: int = 60) -> None:
        self.capacity = int(capacity)
        self._framesets: dict[int, object] = {}
        self.unmatched = 0

    def add_frameset(self, frameset) -> None:
        self._framesets[frameset.seq] = frameset
        while len(self._framesets) > self.capacity:
            self._framesets.pop(next(iter(self._framesets)))

    def match(self, poses):
        """The frameset of ``poses`` (removed from the ring, with every older one), or None."""
        fs = self._framesets.get(poses.frameset_seq)
        if fs is None:
            self.unmatched += 1
            return None
        for seq in [s for s in self._framesets if s <= poses.frameset_seq]:
            del self._framesets[seq]
        return fs


def frameset_images(frameset, rig: CameraRig) -> list[np.ndarray | None]:
    """The frameset's images in rig order; None for cameras missing from the set.

    Raises:
        ValueError: the frameset names a camera the rig does not have.
    """
    by_name = {}
    for i, view in enumerate(frameset.views):
        if view.camera not in rig.names:
            raise ValueError(f"overlay: frameset camera '{view.camera}' is not in the rig {rig.names}; "
                             "use the rig the stream was captured with")
        by_name[view.camera] = frameset.image(i)
    return [by_name.get(name) for name in rig.names]
