"""Geometric and photometric augmentation (SPEC.md §2.1, §4.8). numpy/OpenCV, no PIL.

Every geometric step returns its 2×3 affine (original image px -> network input px) so that
projections of 3D points stay consistent with the warped images.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from calib.common.skeleton import PANOPTIC15

PIXEL_STD = 200.0  # scales are expressed in units of 200 px (upstream convention)
ROTATION_FACTOR_DEG = 45.0
SCALE_FACTOR = 0.35
CUTOUT_FILL_RGB = (125, 122, 113)


# --------------------------------------------------------------------------------------------
# the image affine


def base_scale(image_size: tuple[int, int], output_size: tuple[int, int]) -> np.ndarray:
    """(2,) letter-box scale (in 200 px units) fitting ``image_size`` (w,h) to the output aspect.

    Panoptic 1920×1080 -> 960×512 gives (10.125, 5.4).
    """
    w0, h0 = image_size
    wo, ho = output_size
    if w0 / wo < h0 / ho:
        padded = (h0 / ho * wo, h0)
    else:
        padded = (w0, w0 / wo * ho)
    return np.asarray(padded, dtype=np.float64) / PIXEL_STD


def _rotate(point: np.ndarray, rot_rad: float) -> np.ndarray:
    sn, cs = np.sin(rot_rad), np.cos(rot_rad)
    return np.array([point[0] * cs - point[1] * sn, point[0] * sn + point[1] * cs])


def _third_point(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    d = a - b
    return b + np.array([-d[1], d[0]])


def _solve_affine(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Exact 2×3 affine mapping three points src (3,2) onto dst (3,2)."""
    A = np.concatenate([src, np.ones((3, 1))], axis=1)  # (3,3)
    return np.linalg.solve(A, dst).T  # (2,3)


def affine_transform(
    center: Sequence[float],
    scale: Sequence[float],
    rotation_deg: float,
    output_size: tuple[int, int],
    inverse: bool = False,
) -> np.ndarray:
    """The crop/letter-box/rotation affine (upstream ``get_affine_transform``, SPEC.md §2.1).

    Built from three correspondences: the centre -> output centre, a point half a (scaled)
    width above the centre rotated by ``rotation_deg`` -> half an output width above the output
    centre, and the perpendicular third points. The result is the similarity
    ``A = k R(-rot)``, ``t = (Wo/2, Ho/2) - A c`` with ``k = Wo / (200 scale_x)``.

    Args:
        center: (2,) source centre px.
        scale: (2,) source size in 200 px units (only the x entry sets the zoom).
        rotation_deg: rotation in degrees (positive = counter-clockwise in the output).
        output_size: (Wo, Ho) px.
        inverse: return the output -> source affine instead.
    Returns:
        (2,3) float64.
    """
    center = np.asarray(center, dtype=np.float64)
    src_w = float(np.asarray(scale, dtype=np.float64)[0]) * PIXEL_STD
    dst_w, dst_h = output_size
    src_dir = _rotate(np.array([0.0, -0.5 * src_w]), np.deg2rad(rotation_deg))
    dst_dir = np.array([0.0, -0.5 * dst_w])
    src = np.zeros((3, 2))
    dst = np.zeros((3, 2))
    src[0], src[1] = center, center + src_dir
    dst[0] = [0.5 * dst_w, 0.5 * dst_h]
    dst[1] = dst[0] + dst_dir
    src[2], dst[2] = _third_point(src[0], src[1]), _third_point(dst[0], dst[1])
    return _solve_affine(dst, src) if inverse else _solve_affine(src, dst)


def apply_affine(points: np.ndarray, affine: np.ndarray) -> np.ndarray:
    """(...,2) points through a (2,3) affine."""
    points = np.asarray(points, dtype=np.float64)
    return points @ affine[:, :2].T + affine[:, 2]


def warp_image(image: np.ndarray, affine: np.ndarray, output_size: tuple[int, int]) -> np.ndarray:
    """Bilinear ``cv2.warpAffine`` to ``output_size`` (w,h) with a constant-0 border."""
    import cv2

    return cv2.warpAffine(image, affine.astype(np.float64), tuple(int(v) for v in output_size), flags=cv2.INTER_LINEAR)


# --------------------------------------------------------------------------------------------
# the three view sets of one training sample


@dataclass(frozen=True)
class ViewSetAugmentation:
    """Augmentation of one view set, shared by all its views.

    Attributes:
        rotation_deg: rotation in degrees.
        scale: (2,) source size in 200 px units (larger = zoomed out).
    """

    rotation_deg: float
    scale: np.ndarray

    def affine(self, center: Sequence[float], output_size: tuple[int, int]) -> np.ndarray:
        """(2,3) original px -> input px for this view set."""
        return affine_transform(center, self.scale, self.rotation_deg, output_size)


def draw_view_set_augmentations(
    rng: np.random.Generator,
    scale: np.ndarray,
    rotation_factor_deg: float = ROTATION_FACTOR_DEG,
    scale_factor: float = SCALE_FACTOR,
) -> tuple[ViewSetAugmentation, ViewSetAugmentation, ViewSetAugmentation]:
    """Draw the augmentations of view sets 1, 2 (random) and 3 (identity) (SPEC.md §4.8).

    Per random set: rotation ``U(-1,1)·factor`` with probability 0.5 else 0; scale factor
    ``s_k = U(0.1, factor)`` (zoom out) with probability 0.5 else ``-U(0.1, factor)/2`` (zoom in);
    scale vector ``scale·(1 + s_k)``.
    """
    scale = np.asarray(scale, dtype=np.float64)
    sets = []
    for _ in range(2):
        rot = (
            float(np.clip(rng.uniform(-1.0, 1.0) * rotation_factor_deg, -rotation_factor_deg, rotation_factor_deg))
            if rng.random() < 0.5
            else 0.0
        )
        sk = rng.uniform(0.1, scale_factor) if rng.random() < 0.5 else -rng.uniform(0.1, scale_factor) / 2.0
        sets.append(ViewSetAugmentation(rot, scale * (1.0 + sk)))
    sets.append(ViewSetAugmentation(0.0, scale.copy()))
    return sets[0], sets[1], sets[2]


def map_joints(
    joints_px: np.ndarray, visible: np.ndarray, affine: np.ndarray, output_size: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray]:
    """Map 2D joints through an affine and recompute visibility after the crop.

    Args:
        joints_px: (N,J,2) original-image px.
        visible: (N,J) bool.
        affine: (2,3).
        output_size: (W,H) of the network input.
    Returns:
        joints (N,J,2) (invisible joints are left at 0) and visible (N,J): visible before and
        inside ``[0,W) × [0,H)`` after.
    """
    visible = np.asarray(visible, bool)
    mapped = apply_affine(joints_px, affine)
    w, h = output_size
    inside = (mapped[..., 0] >= 0) & (mapped[..., 0] < w) & (mapped[..., 1] >= 0) & (mapped[..., 1] < h)
    out = np.where(visible[..., None], mapped, 0.0)
    return out, visible & inside


def view_sets_valid(
    visible_per_set: Sequence[Sequence[np.ndarray]], root: int = PANOPTIC15.root, checked_sets: Sequence[int] = (0, 1)
) -> bool:
    """The sample-validity rule of SPEC.md §4.8.

    Args:
        visible_per_set: per view set, per view, the (N_v,J) visibility after that set's crop
            (N_v = pseudo persons of the view; the same N_v in every set).
        root: root joint index.
        checked_sets: sets that must keep every person's root (sets 1 and 2).
    Returns:
        True iff every view has at least one pseudo person and, for each checked set, the max
        over views of persons with a visible root equals the max over views of persons.
    """
    counts = [len(v) for v in visible_per_set[0]]
    if not counts or min(counts) == 0:
        return False
    most = max(counts)
    for k in checked_sets:
        with_root = max(int(np.count_nonzero(np.asarray(v, bool)[:, root])) for v in visible_per_set[k])
        if with_root != most:
            return False
    return True


@dataclass(frozen=True)
class SampledViewSets:
    """Result of :func:`sample_view_sets`.

    Attributes:
        index: dataset index finally used.
        augmentations: the three view-set augmentations, drawn relative to a unit scale (view v
            of set k uses ``base_scales[v] * augmentations[k].scale``).
        affines: (3,V,2,3) original px -> input px.
        joints: per set, per view (N_v,J,2) input px.
        visible: per set, per view (N_v,J) bool.
        attempts: number of draws needed.
    """

    index: int
    augmentations: tuple[ViewSetAugmentation, ...]
    affines: np.ndarray
    joints: list[list[np.ndarray]]
    visible: list[list[np.ndarray]]
    attempts: int


def sample_view_sets(
    rng: np.random.Generator,
    index: int,
    dataset_length: int,
    labels: Callable[[int], Sequence[tuple[np.ndarray, np.ndarray]]],
    centers: np.ndarray,
    base_scales: np.ndarray,
    output_size: tuple[int, int],
    max_attempts: int = 100,
    rotation_factor_deg: float = ROTATION_FACTOR_DEG,
    scale_factor: float = SCALE_FACTOR,
) -> SampledViewSets:
    """Draw three view sets for a sample, re-drawing until the validity rule holds.

    On failure a new index is drawn uniformly from the **whole** dataset (upstream only drew
    from the first ~20 %, SPEC.md §6 item 5) together with a new augmentation.

    Args:
        rng: random generator.
        index: requested sample index.
        dataset_length: number of samples.
        labels: index -> per view ``(joints_px (N,J,2), visible (N,J))`` in original px.
        centers: (V,2) image centres px (views may differ in size).
        base_scales: (V,2) letter-box scales (:func:`base_scale`).
        output_size: network input (W,H).
        max_attempts: give up (RuntimeError) after this many draws.
    """
    centers = np.asarray(centers, dtype=np.float64)
    base_scales = np.asarray(base_scales, dtype=np.float64)
    for attempt in range(1, max_attempts + 1):
        views = labels(index)
        # one draw shared by all views: the relative zoom/rotation, applied to each view's own scale
        augs = draw_view_set_augmentations(rng, np.ones(2), rotation_factor_deg, scale_factor)
        affines = np.stack(
            [
                np.stack(
                    [
                        affine_transform(centers[v], base_scales[v] * a.scale, a.rotation_deg, output_size)
                        for v in range(len(views))
                    ]
                )
                for a in augs
            ]
        )  # (3,V,2,3)
        joints, visible = [], []
        for k in range(3):
            mapped = [map_joints(j, vis, affines[k, v], output_size) for v, (j, vis) in enumerate(views)]
            joints.append([m[0] for m in mapped])
            visible.append([m[1] for m in mapped])
        if view_sets_valid(visible):
            return SampledViewSets(index, augs, affines, joints, visible, attempt)
        index = int(rng.integers(0, dataset_length))
    raise RuntimeError(f"no valid view-set augmentation after {max_attempts} draws; are the pseudo labels empty?")


# --------------------------------------------------------------------------------------------
# photometric: RandAugment (7 colour ops) and Cutout, on uint8 RGB images (H,W,3)


def _blend(degenerate: np.ndarray, image: np.ndarray, factor: float) -> np.ndarray:
    out = degenerate.astype(np.float32) + factor * (image.astype(np.float32) - degenerate.astype(np.float32))
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def _gray(image: np.ndarray) -> np.ndarray:
    """ITU-R 601-2 luma (PIL's "L"), (H,W) float32."""
    return image[..., 0] * 0.299 + image[..., 1] * 0.587 + image[..., 2] * 0.114


def brightness(image: np.ndarray, factor: float) -> np.ndarray:
    """Blend with black (PIL ImageEnhance.Brightness)."""
    return _blend(np.zeros_like(image), image, factor)


def color(image: np.ndarray, factor: float) -> np.ndarray:
    """Blend with the grey image (PIL ImageEnhance.Color)."""
    gray = np.rint(_gray(image.astype(np.float32)))[..., None].repeat(3, axis=-1)
    return _blend(gray, image, factor)


def contrast(image: np.ndarray, factor: float) -> np.ndarray:
    """Blend with the mean grey level (PIL ImageEnhance.Contrast)."""
    mean = np.full_like(image, int(_gray(image.astype(np.float32)).mean() + 0.5))
    return _blend(mean, image, factor)


def sharpness(image: np.ndarray, factor: float) -> np.ndarray:
    """Blend with the 3×3 smoothed image, borders untouched (PIL ImageEnhance.Sharpness)."""
    import cv2

    kernel = np.array([[1, 1, 1], [1, 5, 1], [1, 1, 1]], np.float32) / 13.0
    smooth = np.clip(np.rint(cv2.filter2D(image.astype(np.float32), -1, kernel)), 0, 255).astype(np.uint8)
    smooth[0], smooth[-1], smooth[:, 0], smooth[:, -1] = image[0], image[-1], image[:, 0], image[:, -1]
    return _blend(smooth, image, factor)


def autocontrast(image: np.ndarray) -> np.ndarray:
    """Stretch each channel's [min, max] to [0, 255] (channels with one level are unchanged)."""
    out = image.copy()
    for c in range(image.shape[-1]):
        lo, hi = int(image[..., c].min()), int(image[..., c].max())
        if hi > lo:
            out[..., c] = np.clip(np.rint((image[..., c].astype(np.float32) - lo) * (255.0 / (hi - lo))), 0, 255)
    return out


def equalize(image: np.ndarray) -> np.ndarray:
    """Per-channel histogram equalisation (OpenCV)."""
    import cv2

    return np.stack([cv2.equalizeHist(np.ascontiguousarray(image[..., c])) for c in range(image.shape[-1])], axis=-1)


def posterize(image: np.ndarray, bits: int) -> np.ndarray:
    """Keep the ``bits`` most significant bits of every channel."""
    mask = np.uint8((0xFF << (8 - int(bits))) & 0xFF)
    return image & mask


POSTERIZE_BITS = np.round(np.linspace(8, 4, 10)).astype(int)  # indexed by magnitude 0..9
RANDAUG_OPS = ("Sharpness", "AutoContrast", "Posterize", "Equalize", "Contrast", "Color", "Brightness")
_ENHANCE = {"Sharpness": sharpness, "Contrast": contrast, "Color": color, "Brightness": brightness}


def apply_op(image: np.ndarray, op: str, magnitude: int, rng: np.random.Generator) -> np.ndarray:
    """One RandAugment op; enhance factors are ``1 ± 0.1·magnitude`` with a random sign."""
    if op in _ENHANCE:
        sign = 1.0 if rng.random() < 0.5 else -1.0
        return _ENHANCE[op](image, 1.0 + sign * 0.1 * magnitude)
    if op == "Posterize":
        return posterize(image, int(POSTERIZE_BITS[magnitude]))
    if op == "AutoContrast":
        return autocontrast(image)
    if op == "Equalize":
        return equalize(image)
    raise ValueError(f"unknown RandAugment op '{op}'; known: {RANDAUG_OPS}")


def rand_augment(image: np.ndarray, rng: np.random.Generator, probability: float = 0.5) -> np.ndarray:
    """Two (op, magnitude 1..9) draws applied in order, each with probability 0.5.

    Purely photometric: pixel positions do not move (the affine is the identity).
    """
    for _ in range(2):
        op = RANDAUG_OPS[int(rng.integers(len(RANDAUG_OPS)))]
        magnitude = int(rng.integers(1, 10))
        if rng.random() < probability:
            image = apply_op(image, op, magnitude, rng)
    return image


def cutout(image: np.ndarray, rng: np.random.Generator, fill_rgb: Sequence[int] = CUTOUT_FILL_RGB) -> np.ndarray:
    """2–15 squares of nominal size 20–39 px (side ``2·⌊size/2⌋``, clipped) filled with ``fill_rgb``."""
    out = image.copy()
    h, w = out.shape[:2]
    for _ in range(int(rng.integers(2, 16))):
        half = int(rng.integers(20, 40)) // 2
        cy, cx = int(rng.integers(h)), int(rng.integers(w))
        out[max(cy - half, 0) : min(cy + half, h), max(cx - half, 0) : min(cx + half, w)] = fill_rgb
    return out
