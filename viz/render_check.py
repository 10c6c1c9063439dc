"""Checks that a rendered picture shows what the projection says (used by tests and benchmarks).

Pure numpy: given an image, the colour something was drawn in and the projected 2D segments it
should lie on, measure how much of each segment is covered by such pixels (the drawing is there)
and how many such pixels lie far from every segment (nothing is drawn in the wrong place).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class LineAgreement:
    """Result of :func:`line_agreement`.

    Attributes:
        coverage: fraction of sample points along the segments with a matching pixel within tol.
        outliers: fraction of matching pixels farther than tol from every segment.
        pixels: number of matching pixels.
        max_distance_px: largest distance of a matching pixel to its nearest segment.
    """

    coverage: float
    outliers: float
    pixels: int
    max_distance_px: float


def color_mask(image: np.ndarray, bgr, tol: int = 40) -> np.ndarray:
    """(H,W) bool: pixels within ``tol`` (per channel) of colour ``bgr``."""
    diff = np.abs(image.astype(np.int16) - np.asarray(bgr, dtype=np.int16).reshape(1, 1, 3))
    return (diff <= tol).all(-1)


def distance_to_segments(points_px: np.ndarray, segments_px: np.ndarray) -> np.ndarray:
    """(N,) distance of (N,2) points to the nearest of (M,2,2) segments, in px."""
    if len(segments_px) == 0:
        return np.full(len(points_px), np.inf)
    a, b = segments_px[:, 0], segments_px[:, 1]  # (M,2)
    ab = b - a
    denom = np.maximum((ab * ab).sum(-1), 1e-12)
    best = np.full(len(points_px), np.inf)
    for start in range(0, len(points_px), 4096):  # bounded memory: (4096,M) per chunk
        p = points_px[start : start + 4096, None, :]
        t = np.clip(((p - a) * ab).sum(-1) / denom, 0.0, 1.0)
        d = np.linalg.norm(p - (a + t[..., None] * ab), axis=-1)
        best[start : start + 4096] = d.min(1)
    return best


def line_agreement(
    image: np.ndarray,
    segments_px: np.ndarray,
    bgr,
    tol_px: float = 3.0,
    color_tol: int = 40,
    samples_per_segment: int = 20,
) -> LineAgreement:
    """Compare pixels of colour ``bgr`` in ``image`` with the (M,2,2) projected segments.

    Sample points outside the image are not counted for coverage.
    """
    mask = color_mask(image, bgr, color_tol)
    ys, xs = np.nonzero(mask)
    pix = np.stack([xs, ys], -1).astype(np.float64)
    seg = np.asarray(segments_px, dtype=np.float64).reshape(-1, 2, 2)
    dist = distance_to_segments(pix, seg)
    outliers = float((dist > tol_px).mean()) if len(pix) else 0.0
    t = np.linspace(0.05, 0.95, samples_per_segment)
    samples = (seg[:, None, 0] + t[None, :, None] * (seg[:, None, 1] - seg[:, None, 0])).reshape(-1, 2)
    h, w = image.shape[:2]
    inside = (samples[:, 0] >= 0) & (samples[:, 0] <= w - 1) & (samples[:, 1] >= 0) & (samples[:, 1] <= h - 1)
    samples = samples[inside]
    if len(samples) == 0 or len(pix) == 0:
        coverage = 0.0
    else:
        from scipy.spatial import cKDTree

        nearest_px, _ = cKDTree(pix).query(samples, k=1)
        coverage = float((nearest_px <= tol_px).mean())
    return LineAgreement(coverage, outliers, len(pix), float(dist.max()) if len(pix) else 0.0)
