"""2D overlays: 3D skeletons reprojected into each camera image, tiled side by side (cv2).

The quickest check that calibration and poses agree: bones drawn with the rig's own projection
(lens distortion included) must sit on the people in every view.

Readability on any image size (:func:`overlay_style`): line width, joint radius and label size
follow the image's diagonal **as displayed** (a 1088x1920 frame shown as a 640 px wide tile gets
bones about 3.6 px wide on screen, i.e. 6 px in the frame); each person has its own colour (stable
by track id; untracked people are coloured by their index in the message) and an id label; a bone
or joint is drawn with opacity growing with its score (:func:`confidence_alpha`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import cv2
import numpy as np

from calib.camera import Camera, CameraRig
from calib.projection import depth_mm, project_points
from viz import geometry as geo
from viz.draw2d import NEAR_MM

FONT = cv2.FONT_HERSHEY_SIMPLEX
FONT_PX_AT_SCALE_1 = 22.0  # cap height + descent of FONT at scale 1, px
ALPHA_LEVELS = 4  # opacities are quantised to this many steps (one blend per step)


@dataclass(frozen=True)
class OverlayStyle:
    """Stroke sizes in the image's own pixels.

    Attributes:
        line_px: bone width.
        joint_radius_px: joint disc radius.
        font_scale: cv2 font scale of the id labels.
        font_thickness: label stroke (the dark outline is 2 px wider).
    """

    line_px: int
    joint_radius_px: int
    font_scale: float
    font_thickness: int


def overlay_style(width: int, height: int, display_scale: float = 1.0) -> OverlayStyle:
    """Strokes for a ``width`` x ``height`` image shown at ``display_scale`` (tile px / image px).

    On screen, bones are ``max(2, 0.0028 x the displayed diagonal)`` px wide, joints 1.6x that in
    radius, label text ``max(13, 0.014 x diagonal)`` px tall; converted back to image pixels.
    """
    if width <= 0 or height <= 0 or display_scale <= 0:
        raise ValueError(f"overlay_style: need a positive size and scale, got {width}x{height} at {display_scale}")
    diag = math.hypot(width, height) * display_scale
    line_disp = max(2.0, 0.0028 * diag)
    text_disp = max(13.0, 0.014 * diag)
    line = max(1, int(round(line_disp / display_scale)))
    font_scale = text_disp / display_scale / FONT_PX_AT_SCALE_1
    return OverlayStyle(
        line_px=line,
        joint_radius_px=max(2, int(round(1.6 * line_disp / display_scale))),
        font_scale=font_scale,
        font_thickness=max(1, int(round(font_scale * 1.5))),
    )


def person_colors(track_ids: Sequence[int]) -> np.ndarray:
    """(P,3) RGB in [0,1]: the track colour of each id; untracked people (-1) get the colours of
    the smallest ids not present in the message, so everyone in a frame has a colour of their own."""
    ids = np.asarray(track_ids, dtype=np.int64).reshape(-1)
    used = {int(t) for t in ids if t >= 0}
    spare = (k for k in range(len(ids) + len(used) + 1) if k not in used)
    return np.array([geo.track_color(int(t) if t >= 0 else next(spare)) for t in ids]).reshape(-1, 3)


def confidence_alpha(scores: np.ndarray, min_alpha: float = 0.3) -> np.ndarray:
    """Opacity of a bone/joint from its score(s) in [0,1]: ``min_alpha`` at 0 up to 1 at 1,
    quantised to :data:`ALPHA_LEVELS` steps (so drawing costs one blend per step)."""
    s = np.clip(np.nan_to_num(np.asarray(scores, dtype=np.float64), nan=0.0), 0.0, 1.0)
    alpha = min_alpha + (1.0 - min_alpha) * s
    step = (1.0 - min_alpha) / (ALPHA_LEVELS - 1)
    return min_alpha + np.round((alpha - min_alpha) / step) * step


def _blend(out: np.ndarray, prims: list[tuple], alpha: float, style: OverlayStyle) -> None:
    """Draw ``prims`` (("line", a, b, bgr) / ("disc", c, bgr)) at opacity ``alpha`` (in place).

    Solid colours go to a layer and anti-aliased coverage to a mask, both cropped to the
    primitives' bounding box; the blend is ``out + alpha * mask * (layer - out)``.
    """
    pts = np.array([q for prim in prims for q in prim[1:-1]], dtype=np.int64).reshape(-1, 2)
    pad = style.joint_radius_px + style.line_px + 2
    h, w = out.shape[:2]
    x0, y0 = np.clip(pts.min(0) - pad, 0, [w, h])
    x1, y1 = np.clip(pts.max(0) + pad + 1, 0, [w, h])
    if x1 <= x0 or y1 <= y0:
        return
    roi = out[y0:y1, x0:x1]
    layer = roi.copy()
    mask = np.zeros(roi.shape[:2], np.uint8)
    off = np.array([x0, y0])
    for prim in prims:
        if prim[0] == "line":
            a, b = tuple(int(v) for v in prim[1] - off), tuple(int(v) for v in prim[2] - off)
            cv2.line(layer, a, b, prim[3], style.line_px, cv2.LINE_8)
            cv2.line(mask, a, b, 255, style.line_px, cv2.LINE_AA)
        else:
            c = tuple(int(v) for v in prim[1] - off)
            cv2.circle(layer, c, style.joint_radius_px, prim[2], -1, cv2.LINE_8)
            cv2.circle(mask, c, style.joint_radius_px, 255, -1, cv2.LINE_AA)
    weight = (mask.astype(np.float32) * (alpha / 255.0))[..., None]
    roi[:] = np.round(roi + weight * (layer.astype(np.float32) - roi)).astype(np.uint8)


def _label(out: np.ndarray, text: str, anchor: np.ndarray, bgr: tuple[int, int, int], style: OverlayStyle) -> None:
    """``text`` centred above ``anchor`` (x, y px), outlined in black, kept inside the image."""
    (tw, th), base = cv2.getTextSize(text, FONT, style.font_scale, style.font_thickness)
    gap = style.joint_radius_px + style.line_px
    x = int(np.clip(anchor[0] - tw // 2, 2, max(2, out.shape[1] - tw - 2)))
    y = int(np.clip(anchor[1] - gap, th + 2, max(th + 2, out.shape[0] - base - 2)))
    cv2.putText(out, text, (x, y), FONT, style.font_scale, (0, 0, 0), style.font_thickness + 2, cv2.LINE_AA)
    cv2.putText(out, text, (x, y), FONT, style.font_scale, bgr, style.font_thickness, cv2.LINE_AA)


def draw_skeletons(
    image: np.ndarray,
    camera: Camera,
    poses: np.ndarray,
    edges: Sequence[tuple[int, int]],
    track_ids: Sequence[int],
    min_score: float = 0.0,
    thickness_px: int | None = None,
    joint_radius_px: int | None = None,
    labels: bool = True,
    display_scale: float = 1.0,
) -> np.ndarray:
    """Draw people projected through ``camera`` onto a copy of ``image``.

    Args:
        image: (H,W,3) uint8 BGR, the camera's own picture (same size as the calibration).
        camera: the calibrated camera.
        poses: (P,J,4) x, y, z mm + score.
        edges: bones.
        track_ids: (P,) colours and labels (-1: untracked, coloured by index, labelled '?').
        min_score: joints below it are not drawn (nor their bones).
        thickness_px, joint_radius_px: stroke sizes in image pixels (default:
            :func:`overlay_style` of the image at ``display_scale``).
        labels: write 'id N  score' above each person.
        display_scale: how the image will be shown (tile px / image px), for the default sizes.

    Returns:
        (H,W,3) uint8 BGR copy with the skeletons drawn; bones and joints opaque in proportion
        to their score (:func:`confidence_alpha`).
    """
    out = np.ascontiguousarray(image).copy()
    poses = np.asarray(poses, dtype=np.float64).reshape(-1, *np.shape(poses)[-2:])
    if len(poses) == 0:
        return out
    style = overlay_style(out.shape[1], out.shape[0], display_scale)
    if thickness_px is not None or joint_radius_px is not None:
        style = OverlayStyle(
            int(thickness_px or style.line_px),
            int(joint_radius_px or style.joint_radius_px),
            style.font_scale,
            style.font_thickness,
        )
    xyz = poses[..., :3]
    scores = poses[..., 3]
    ok = np.isfinite(xyz).all(-1) & (scores >= min_score)
    safe = np.where(ok[..., None], xyz, 0.0)
    uv = project_points(safe, camera)  # (P,J,2)
    ok &= depth_mm(safe, camera) > NEAR_MM
    ok &= np.all(np.abs(uv) < 1e5, axis=-1)
    ids = np.asarray(track_ids, dtype=np.int64).reshape(len(poses))
    colors = person_colors(ids)
    pix = np.round(uv).astype(np.int64)
    edges_arr = np.asarray(edges, dtype=np.int64).reshape(-1, 2)
    for p in range(len(poses)):
        bgr = geo.to_bgr255(colors[p])
        groups: dict[float, list[tuple]] = {}
        bone_ok = ok[p, edges_arr[:, 0]] & ok[p, edges_arr[:, 1]]
        bone_alpha = confidence_alpha(np.minimum(scores[p, edges_arr[:, 0]], scores[p, edges_arr[:, 1]]))
        for (a, b), good, alpha in zip(edges_arr, bone_ok, bone_alpha):
            if good:
                groups.setdefault(float(alpha), []).append(("line", pix[p, a], pix[p, b], bgr))
        joint_alpha = confidence_alpha(scores[p])
        for j in np.flatnonzero(ok[p]):
            groups.setdefault(float(joint_alpha[j]), []).append(("disc", pix[p, j], bgr))
        for alpha in sorted(groups):
            _blend(out, groups[alpha], alpha, style)
        if labels and ok[p].any():
            top = pix[p][ok[p]][np.argmin(pix[p][ok[p]][:, 1])]
            name = f"id {ids[p]}" if ids[p] >= 0 else "?"
            _label(out, f"{name}  {scores[p][ok[p]].mean():.2f}", top, bgr, style)
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
    tiles = []
    for img, cam in zip(images, rig):
        if img is None:
            tiles.append(caption(np.zeros((cam.height, cam.width, 3), np.uint8), f"{cam.name}: missing", alert=True))
            continue
        if img.shape[:2] != (cam.height, cam.width):
            raise ValueError(
                f"overlay: camera '{cam.name}' is calibrated for {cam.width}x{cam.height} but its "
                f"image is {img.shape[1]}x{img.shape[0]}; use the rig that matches the images"
            )
        drawn = draw_skeletons(img, cam, poses, edges, track_ids, min_score, display_scale=tile_width_px / cam.width)
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
            raise ValueError(
                f"overlay: frameset camera '{view.camera}' is not in the rig {rig.names}; "
                "use the rig the stream was captured with"
            )
        by_name[view.camera] = frameset.image(i)
    return [by_name.get(name) for name in rig.names]
