"""Target codecs: dataset heatmaps (SPEC.md §4.8), rendered heatmaps (§3.3 step 4), synthetic
root targets (§3.2 steps 1–4).

``dataset_target_heatmaps`` is numpy (it runs in DataLoader workers); everything that takes part in
a loss is torch, vectorised over batch, views, persons and roots.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from calib.common.heatmaps import HeatmapCodec
from calib.projection_torch import CameraTensors, project_points

HEATMAP_SIGMA_PX = 3.0  # heatmap pixels
HEATMAP_STRIDE = 4.0  # input px per heatmap px
ROOT_SIGMA_MM = 200.0
ROOT_Z_JITTER_MM = 50.0
SYNTHETIC_NOISE_STD = 0.02
PROJECT_Z_EPS = 1e-5  # depth epsilon of the upstream camera model


# --------------------------------------------------------------------------------------------
# dataset target heatmaps (numpy)


def dataset_target_heatmaps(
    joints_px: np.ndarray,
    visible: np.ndarray,
    image_size: tuple[int, int] = (960, 512),
    heatmap_size: tuple[int, int] = (240, 128),
    sigma: float = HEATMAP_SIGMA_PX,
    centre: str = "trunc",
) -> tuple[np.ndarray, np.ndarray]:
    """Pseudo-label target heatmaps of one view (SPEC.md §4.8).

    Each visible joint puts an unnormalised Gaussian (peak 1, σ = ``sigma`` heatmap px) centred on
    the **truncated** heatmap position ``trunc(x / stride)`` on a ``(2·3σ+1)²`` window (19×19 for
    σ = 3); persons are combined by element-wise max; the result is clipped to [0, 1].
    ``centre="exact"`` centres the Gaussian on ``x / stride`` itself (sub-pixel), the position the
    engine samples a joint at: truncation teaches the backbone peaks about half a heatmap pixel
    up-left of the joint (measured (-0.34, -0.15) px, docs/training_stages.md).

    Args:
        joints_px: (N,J,2) joints in network-input px.
        visible: (N,J) bool.
        image_size: network input (W,H).
        heatmap_size: (W,H).
        sigma: Gaussian σ in heatmap px.
        centre: ``trunc`` (SPEC, upstream) or ``exact``.
    Returns:
        heatmaps (J,H,W) float32 and weights (J,) float32 (1 where any person has the joint visible).
    """
    if centre not in ("trunc", "exact"):
        raise ValueError(f"centre must be 'trunc' or 'exact', got {centre!r}")
    joints_px = np.asarray(joints_px, dtype=np.float64)
    visible = np.asarray(visible, bool)
    if joints_px.ndim != 3 or joints_px.shape[-1] != 2 or joints_px.shape[:2] != visible.shape:
        raise ValueError(f"joints_px must be (N,J,2) and visible (N,J); got {joints_px.shape} and {visible.shape}")
    W, H = heatmap_size
    N, J = visible.shape
    stride = np.array([image_size[0] / W, image_size[1] / H])
    codec = target_codec(heatmap_size, sigma, centre)
    heatmaps = codec.encode(joints_px / stride, visible.astype(np.float64))  # (J,H,W), clipped
    weights = visible.any(axis=0).astype(np.float32) if N else np.zeros(J, np.float32)
    return heatmaps, weights


def target_codec(heatmap_size: tuple[int, int], sigma: float = HEATMAP_SIGMA_PX, centre: str = "trunc") -> HeatmapCodec:
    """The backbone targets' codec: a ``int(3σ)`` window, max over people, clipped; ``trunc``:
    the Gaussian on the truncated pixel (SPEC §4.8); ``exact``: on the sub-pixel joint, the
    window around the rounded pixel."""
    if centre == "trunc":
        return HeatmapCodec(
            heatmap_size, sigma, window="floor", anchor="trunc", centre="anchor", combine="max", clip=True
        )
    return HeatmapCodec(heatmap_size, sigma, window="floor", anchor="round", centre="exact", combine="max", clip=True)


# --------------------------------------------------------------------------------------------
# differentiable rendered heatmaps (torch)


def render_heatmaps(
    centers_hm: torch.Tensor,
    heatmap_size: tuple[int, int] = (240, 128),
    person_mask: torch.Tensor | None = None,
    sigma: float = HEATMAP_SIGMA_PX,
) -> torch.Tensor:
    """Render Gaussians at continuous heatmap positions, **summed** over persons, clipped to [0,1].

    Differentiable w.r.t. ``centers_hm`` (SPEC.md §3.3 step 4). No window: every pixel of the
    grid gets ``exp(-((X-x)/σ)²/2 - ((Y-y)/σ)²/2)``.

    Args:
        centers_hm: (...,P,J,2) positions in heatmap px.
        heatmap_size: (W,H).
        person_mask: optional (...,P) bool/float; masked persons contribute nothing.
        sigma: σ in heatmap px.
    Returns:
        (...,J,H,W).
    """
    amplitude = (
        centers_hm.new_ones(centers_hm.shape[:-1])
        if person_mask is None
        else person_mask.to(centers_hm.dtype)[..., None].expand(centers_hm.shape[:-1])
    )
    return rendered_codec(heatmap_size, sigma).encode(centers_hm, amplitude)


def rendered_codec(heatmap_size: tuple[int, int], sigma: float = HEATMAP_SIGMA_PX) -> HeatmapCodec:
    """The SSL rendered heatmaps' codec: exact Gaussians on the whole grid, summed, clipped."""
    return HeatmapCodec(heatmap_size, sigma, window="none", centre="exact", combine="sum", clip=True)


# --------------------------------------------------------------------------------------------
# synthetic roots for the root net (torch)


def voxel_axes(
    grid_size_mm: Sequence[float],
    grid_center_mm: Sequence[float],
    cube_shape: Sequence[int],
    device: torch.device | str = "cpu",
    dtype: torch.dtype = torch.float32,
) -> list[torch.Tensor]:
    """Per-axis voxel centres ``linspace(-size/2, size/2, N) + centre`` (endpoints included)."""
    return [
        torch.linspace(-s / 2.0, s / 2.0, int(n), device=device, dtype=dtype) + c
        for s, c, n in zip(grid_size_mm, grid_center_mm, cube_shape)
    ]


def synthetic_root_box(
    grid_size_mm: Sequence[float], grid_center_mm: Sequence[float], shrink_mm: Sequence[Sequence[float]]
) -> np.ndarray:
    """(3,2) sampling box ``[lo + shrink[a][0], hi + shrink[a][1]]`` per axis.

    With the room (8000, 8000, 2000) centred (0, -500, 800) and ``ROOTNET_SYN_RANGE``
    ((2500, -2000), (1500, -1500), (250, -300)) this is x [-1500, 2000], y [-3000, 2000], z [50, 1500].
    """
    size, center, shrink = (np.asarray(v, dtype=np.float64) for v in (grid_size_mm, grid_center_mm, shrink_mm))
    lo, hi = center - size / 2.0, center + size / 2.0
    box = np.stack([lo + shrink[:, 0], hi + shrink[:, 1]], axis=1)
    if np.any(box[:, 0] >= box[:, 1]):
        raise ValueError(f"synthetic root box is empty: {box.tolist()} (check the shrink ranges)")
    return box


def sample_synthetic_roots(
    batch: int,
    box_mm: np.ndarray,
    max_people: int = 10,
    z_jitter_mm: float = ROOT_Z_JITTER_MM,
    generator: torch.Generator | None = None,
    device: torch.device | str = "cpu",
) -> tuple[torch.Tensor, torch.Tensor]:
    """Random person roots (SPEC.md §3.2 steps 1–2).

    ``n ~ U{1..max_people-1}`` shared by the batch; x, y uniform per root; z uniform once per
    sample plus N(0, z_jitter²) per root.

    Returns:
        roots (B,R,3) mm and valid (B,R) bool with ``R = max_people - 1`` (first n valid).
    """
    R = max_people - 1
    n = int(torch.randint(1, max_people, (1,), generator=generator))
    box = torch.as_tensor(box_mm, dtype=torch.float32)
    u = torch.rand((batch, R, 2), generator=generator)
    xy = box[:2, 0] + u * (box[:2, 1] - box[:2, 0])
    z = box[2, 0] + torch.rand((batch, 1), generator=generator) * (box[2, 1] - box[2, 0])
    z = z + z_jitter_mm * torch.randn((batch, R), generator=generator)
    roots = torch.cat([xy, z[..., None]], dim=-1)
    valid = (torch.arange(R) < n).expand(batch, R)
    return roots.to(device), valid.to(device)


def root_target_cubes(
    roots_mm: torch.Tensor,
    valid: torch.Tensor,
    grid_size_mm: Sequence[float],
    grid_center_mm: Sequence[float],
    cube_shape: Sequence[int],
    sigma_mm: float = ROOT_SIGMA_MM,
) -> torch.Tensor:
    """Target root cubes (SPEC.md §3.2 step 3): per root a 3D Gaussian ``exp(-|g-μ|²/(2σ²))`` on the
    voxels of the window μ ± 3σ (per axis: first index ≥ μ-3σ up to the first index > μ+3σ),
    max over roots, clipped to [0, 1].

    Args:
        roots_mm: (B,R,3).
        valid: (B,R) bool.
        grid_size_mm, grid_center_mm, cube_shape: the root grid (x-major voxel layout).
    Returns:
        (B,Nx,Ny,Nz).
    """
    axes = voxel_axes(grid_size_mm, grid_center_mm, cube_shape, roots_mm.device, roots_mm.dtype)
    factors = []
    for a, g in enumerate(axes):
        mu = roots_mm[..., a].contiguous()  # (B,R)
        left = torch.searchsorted(g, mu - 3 * sigma_mm, right=False)
        right = torch.searchsorted(g, mu + 3 * sigma_mm, right=True)
        idx = torch.arange(g.numel(), device=g.device)
        inside = (idx >= left[..., None]) & (idx < right[..., None])  # (B,R,N)
        factors.append(torch.where(inside, torch.exp(-((g - mu[..., None]) ** 2) / (2 * sigma_mm**2)), 0.0))
    fx, fy, fz = (f * valid[..., None].to(f.dtype) for f in factors)
    cubes = fx[..., :, None, None] * fy[..., None, :, None] * fz[..., None, None, :]  # (B,R,Nx,Ny,Nz)
    if cubes.shape[1] == 0:
        return cubes.new_zeros((cubes.shape[0],) + tuple(int(n) for n in cube_shape))
    return cubes.amax(dim=1).clamp(0.0, 1.0)


def synthetic_root_heatmaps(
    roots_mm: torch.Tensor,
    valid: torch.Tensor,
    cameras: CameraTensors,
    affines: torch.Tensor,
    heatmap_size: tuple[int, int] = (240, 128),
    stride: float = HEATMAP_STRIDE,
    sigma: float = HEATMAP_SIGMA_PX,
    noise_std: float = SYNTHETIC_NOISE_STD,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Single-channel root heatmaps of synthetic roots in every view (SPEC.md §3.2 step 4).

    Roots are projected (same camera model as the project layer, no r² clamp), mapped by the view
    set's affine, divided by the stride, rendered (sum over roots, clip), then N(0, noise_std²)
    noise is added everywhere and the result clipped to [0, 1].

    Args:
        roots_mm: (B,R,3).
        valid: (B,R).
        cameras: V cameras.
        affines: (B,2,3) one affine per sample (shared by its views) or (B,V,2,3).
    Returns:
        (B,V,1,H,W).
    """
    B, R = roots_mm.shape[:2]
    V = len(cameras)
    uv = project_points(roots_mm, cameras, z_eps=PROJECT_Z_EPS)  # (V,B,R,2)
    if affines.dim() == 3:
        affines = affines[:, None].expand(B, V, 2, 3)
    A = affines.permute(1, 0, 2, 3).to(uv.dtype)  # (V,B,2,3)
    uv = torch.einsum("vbij,vbrj->vbri", A[..., :2], uv) + A[..., None, :, 2]
    centers = (uv / stride).permute(1, 0, 2, 3)[:, :, :, None, :]  # (B,V,R,1,2)
    mask = valid[:, None, :].expand(B, V, R)
    heat = render_heatmaps(centers, heatmap_size, mask, sigma)  # (B,V,1,H,W)
    if noise_std > 0:
        noise = torch.randn(heat.shape, generator=generator, dtype=heat.dtype).to(heat.device)
        heat = (heat + noise_std * noise).clamp(0.0, 1.0)
    return heat
