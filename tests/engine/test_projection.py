"""The fast projection (cached grids, one grid_sample for all views) against a per-view reference
written directly from SPEC §2.5 / §2.1 (upstream's loop structure and formulas)."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from engine.project import VolumeProjector, ViewGeometry, get_affine, grid_points, image_scale

from .conftest import make_rig, render_heatmaps

INPUT = (128, 96)
HEATMAP = (32, 24)


def reference_affine(center, scale, rot_deg, out_size) -> np.ndarray:
    """3-point construction of SPEC §2.1 solved by OpenCV (upstream's get_affine_transform)."""
    src_w = scale[0] * 200.0
    dst_w, dst_h = out_size
    r = math.radians(rot_deg)
    src_dir = np.array([0 * math.cos(r) - (-0.5 * src_w) * math.sin(r), 0 * math.sin(r) + (-0.5 * src_w) * math.cos(r)])
    dst_dir = np.array([0.0, -0.5 * dst_w])
    src = np.zeros((3, 2), np.float32)
    dst = np.zeros((3, 2), np.float32)
    src[0] = center
    src[1] = np.asarray(center) + src_dir
    dst[0] = (dst_w * 0.5, dst_h * 0.5)
    dst[1] = dst[0] + dst_dir
    for pts in (src, dst):
        d = pts[0] - pts[1]
        pts[2] = pts[1] + np.array([-d[1], d[0]])
    return cv2.getAffineTransform(src, dst)


def reference_project(heatmaps: torch.Tensor, rig, size_mm, center_mm, bins, input_size) -> torch.Tensor:
    """Per-view loop of SPEC §2.5. heatmaps (V,C,H,W) -> (C,X,Y,Z)."""
    V, C, H, W = heatmaps.shape
    g = [torch.linspace(-s / 2, s / 2, n) + c for s, c, n in zip(size_mm, center_mm, bins)]
    gx, gy, gz = torch.meshgrid(*g, indexing="ij")
    grid = torch.stack([gx.flatten(), gy.flatten(), gz.flatten()], -1).double()  # (N,3)
    N = grid.shape[0]
    cubes = torch.zeros(V, C, N, dtype=torch.float64)
    bounding = torch.zeros(V, N, dtype=torch.float64)
    for c, cam in enumerate(rig):
        R = torch.tensor(cam.R)
        T = torch.tensor(cam.center_mm)
        xcam = (grid - T) @ R.T
        x = xcam[:, 0] / (xcam[:, 2] + 1e-5)
        y = xcam[:, 1] / (xcam[:, 2] + 1e-5)
        r2 = torch.clamp(x * x + y * y, max=1e10)
        k1, k2, p1, p2, k3 = (float(v) for v in cam.dist)
        radial = 1 + k1 * r2 + k2 * r2**2 + k3 * r2**3
        tan = p1 * y + p2 * x
        xd = x * (radial + 2 * tan) + p2 * r2
        yd = y * (radial + 2 * tan) + p1 * r2
        px = cam.K[0, 0] * xd + cam.K[0, 2]
        py = cam.K[1, 1] * yd + cam.K[1, 2]
        w0, h0 = cam.width, cam.height
        bounding[c] = ((px >= 0) & (py >= 0) & (px < w0) & (py < h0)).double()
        xy = torch.clamp(torch.stack([px, py], -1), -1.0, max(w0, h0))
        trans = torch.tensor(reference_affine((w0 / 2, h0 / 2), image_scale(w0, h0, input_size), 0.0, input_size))
        xy = xy @ trans[:, :2].T + trans[:, 2]
        xy = xy * torch.tensor([W / input_size[0], H / input_size[1]], dtype=torch.float64)
        sample = torch.clamp(xy / torch.tensor([W - 1, H - 1], dtype=torch.float64) * 2.0 - 1.0, -1.1, 1.1)
        cubes[c] = F.grid_sample(heatmaps[c : c + 1].double(), sample.view(1, 1, N, 2), align_corners=True)[0, :, 0]
    out = (bounding[:, None] * cubes).sum(0) / (bounding.sum(0) + 1e-6)
    out = torch.nan_to_num(out, 0.0).clamp(0.0, 1.0)
    return out.view(C, *bins).float()


def test_affine_matches_panoptic_numbers_and_opencv_construction():
    s = image_scale(1920, 1080, (960, 512))
    assert s == pytest.approx((10.125, 5.4))
    A = get_affine((960, 540), s, 0.0, (960, 512))
    assert A[0, 0] == pytest.approx(0.474074, abs=1e-6) and A[1, 1] == pytest.approx(0.474074, abs=1e-6)
    assert A[0, 2] == pytest.approx(24.889, abs=1e-3) and A[1, 2] == pytest.approx(0.0, abs=1e-9)
    for center, scale, rot, out in [
        ((960, 540), (10.125, 5.4), 30.0, (960, 512)),
        ((320, 180), (3.2, 2.4), -45.0, (128, 96)),
        ((500, 300), (4.0, 4.0), 12.5, (256, 256)),
    ]:
        np.testing.assert_allclose(
            get_affine(center, scale, rot, out), reference_affine(center, scale, rot, out), atol=2e-3
        )


@pytest.fixture
def setup():
    rig = make_rig()
    geom = ViewGeometry.from_rig(rig, INPUT, HEATMAP)
    proj = VolumeProjector(geom, (8000, 8000, 2000), (0, -500, 800), (20, 20, 8), (2000, 2000, 2000), (16, 16, 16))
    gen = torch.Generator().manual_seed(0)
    heatmaps = torch.rand(len(rig), 15, HEATMAP[1], HEATMAP[0], generator=gen)
    return rig, proj, heatmaps


def test_root_volume_equals_per_view_reference(setup):
    rig, proj, hm = setup
    fast = proj.root_volume(hm[:, 2:3])[0]
    ref = reference_project(hm[:, 2:3], rig, (8000, 8000, 2000), (0, -500, 800), (20, 20, 8), INPUT)
    assert fast.shape == ref.shape == (1, 20, 20, 8)
    assert ref.abs().max() > 0.1  # the room is seen
    torch.testing.assert_close(fast, ref, atol=2e-5, rtol=1e-4)


def test_person_cubes_equal_per_view_reference_for_all_persons_at_once(setup):
    rig, proj, hm = setup
    centers = torch.tensor([[0.0, 0.0, 900.0], [1500.0, -2200.0, 700.0], [3900.0, 3900.0, 1000.0]])
    fast = proj.person_cubes(hm, centers)
    assert fast.shape == (3, 15, 16, 16, 16)
    for p, c in enumerate(centers.tolist()):
        ref = reference_project(hm, rig, (2000, 2000, 2000), c, (16, 16, 16), INPUT)
        # float32 voxel coordinates (as upstream) vs a float64 reference: ~1e-4 px, and white-noise
        # heatmaps change by up to 1 per px.
        torch.testing.assert_close(fast[p], ref, atol=5e-4, rtol=1e-3)
        assert (fast[p] - ref).abs().mean() < 1e-5


def test_person_cubes_chunking_does_not_change_results(setup):
    rig, proj, hm = setup
    centers = torch.tensor([[0.0, 0.0, 900.0], [800.0, -600.0, 700.0], [-1200.0, 300.0, 1000.0]])
    whole = proj.person_cubes(hm, centers)
    proj.max_chunk_elems = 1  # one person per sampling call
    torch.testing.assert_close(proj.person_cubes(hm, centers), whole)


def test_missing_view_is_fused_like_a_rig_without_it(setup):
    rig, proj, hm = setup
    present = torch.tensor([True, True, False, True, True])
    fast = proj.root_volume(hm[:, 2:3], present)[0]
    sub = rig.subset([n for n, keep in zip(rig.names, present.tolist()) if keep])
    ref = reference_project(hm[present, 2:3], sub, (8000, 8000, 2000), (0, -500, 800), (20, 20, 8), INPUT)
    torch.testing.assert_close(fast, ref, atol=2e-5, rtol=1e-4)
    assert not torch.allclose(fast, proj.root_volume(hm[:, 2:3])[0])


def test_projection_finds_known_root_voxel_from_rendered_heatmaps():
    rig = make_rig()
    bins = (40, 40, 12)
    proj = VolumeProjector(
        ViewGeometry.from_rig(rig, (320, 192), (80, 48)),
        (8000, 8000, 2000),
        (0, -500, 800),
        bins,
        (2000, 2000, 2000),
        (16, 16, 16),
    )
    voxels = grid_points((8000, 8000, 2000), (0, -500, 800), bins).numpy().reshape(*bins, 3)
    for idx in [(20, 22, 5), (14, 25, 7), (27, 15, 3)]:
        root = voxels[idx]
        person = np.repeat(root[None], 15, 0)[None]  # every joint at the root: (1,J,3)
        hm = torch.from_numpy(render_heatmaps(rig, person, (320, 192), (80, 48), sigma=1.5))
        vol = proj.root_volume(hm[:, 2:3])[0, 0]
        found = np.unravel_index(int(vol.argmax()), bins)
        assert found == idx
