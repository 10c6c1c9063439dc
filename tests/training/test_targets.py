"""Target codecs: dataset heatmaps, rendered heatmaps, synthetic roots."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from calib.projection import project_points as project_np
from calib.projection_torch import CameraTensors
from training.augment import affine_transform, apply_affine
from training.targets import (
    dataset_target_heatmaps,
    render_heatmaps,
    root_target_cubes,
    sample_synthetic_roots,
    synthetic_root_box,
    synthetic_root_heatmaps,
    voxel_axes,
)

torch.set_num_threads(2)


def _reference_heatmaps(joints, vis, W=240, H=128, stride=4, sigma=3):
    """Straight per-joint loop of SPEC.md §4.8 (window paste with max)."""
    J = joints.shape[1]
    out = np.zeros((J, H, W))
    r = int(3 * sigma)
    for n in range(joints.shape[0]):
        for j in range(J):
            if not vis[n, j]:
                continue
            mx, my = int(joints[n, j, 0] / stride), int(joints[n, j, 1] / stride)
            for y in range(my - r, my + r + 1):
                for x in range(mx - r, mx + r + 1):
                    if 0 <= x < W and 0 <= y < H:
                        g = np.exp(-((x - mx) ** 2 + (y - my) ** 2) / (2 * sigma**2))
                        out[j, y, x] = max(out[j, y, x], g)
    return out


def test_dataset_heatmaps_match_loop_reference(rng):
    joints = rng.uniform(-60, 1000, size=(3, 15, 2))
    joints[0, 0] = [-3.0, -3.0]  # trunc toward zero -> centre (0, 0), not (-1, -1)
    joints[1, 0] = [5.0, 7.0]  # overlaps person 0's joint 0: max, not sum
    vis = rng.random((3, 15)) > 0.3
    vis[:2, 0] = True
    hm, w = dataset_target_heatmaps(joints, vis)
    np.testing.assert_allclose(hm, _reference_heatmaps(joints, vis), atol=1e-6)
    assert hm[0, 0, 0] == pytest.approx(1.0) and hm.max() <= 1.0
    np.testing.assert_array_equal(w, vis.any(0).astype(np.float32))
    hm0, w0 = dataset_target_heatmaps(np.zeros((0, 15, 2)), np.zeros((0, 15), bool))
    assert hm0.shape == (15, 128, 240) and hm0.max() == 0 and w0.sum() == 0


def test_dataset_heatmap_window_and_sigma():
    joints = np.zeros((1, 15, 2))
    joints[0, 4] = [41.0, 22.9]  # -> (10, 5) in heatmap px
    vis = np.zeros((1, 15), bool)
    vis[0, 4] = True
    hm, _ = dataset_target_heatmaps(joints, vis)
    assert hm[4, 5, 10] == 1.0
    assert hm[4, 5, 19] == pytest.approx(np.exp(-81 / 18), rel=1e-5)  # 9 px away: inside window
    assert hm[4, 5, 20] == 0.0  # 10 px away: outside the 19x19 window
    assert hm[:4].max() == 0.0


def test_rendered_heatmaps_sum_clip_and_gradient():
    centers = torch.tensor([[[10.3, 20.7]], [[12.0, 20.0]], [[200.0, 100.0]]], requires_grad=True)  # (P=3,J=1,2)
    hm = render_heatmaps(centers, (240, 128), person_mask=torch.tensor([True, True, False])).detach()
    assert hm.shape == (1, 128, 240)
    x, y = 16, 26  # both persons contribute, sum < 1
    expected = sum(
        np.exp(-0.5 * ((x - cx) / 3) ** 2 - 0.5 * ((y - cy) / 3) ** 2) for cx, cy in [(10.3, 20.7), (12.0, 20.0)]
    )
    assert 0.05 < expected < 1.0
    assert float(hm[0, y, x]) == pytest.approx(expected, rel=1e-5)
    assert float(hm[0, 100, 200]) == 0.0  # masked person
    assert float(hm.max()) == 1.0  # overlap sums beyond 1 and is clipped
    single = render_heatmaps(centers[:1], (240, 128))
    assert float(single.detach().max()) < 1.0  # continuous centre: no pixel exactly on it
    single[0, 20, 10].backward()
    assert centers.grad is not None and torch.all(torch.isfinite(centers.grad)) and centers.grad[0].abs().sum() > 0


def test_synthetic_root_box_and_sampling():
    box = synthetic_root_box((8000, 8000, 2000), (0, -500, 800), ((2500, -2000), (1500, -1500), (250, -300)))
    np.testing.assert_allclose(box, [[-1500, 2000], [-3000, 2000], [50, 1500]])
    g = torch.Generator().manual_seed(3)
    counts = set()
    for _ in range(40):
        roots, valid = sample_synthetic_roots(4, box, generator=g, z_jitter_mm=0.0)
        assert roots.shape == (4, 9, 3)
        n = valid.sum(1)
        assert bool((n == n[0]).all()) and 1 <= int(n[0]) <= 9  # shared by the batch
        counts.add(int(n[0]))
        r = roots[valid]
        assert bool((r[:, 0] >= -1500).all() and (r[:, 0] <= 2000).all() and (r[:, 1] >= -3000).all())
        z = roots[..., 2]
        assert torch.allclose(z, z[:, :1].expand_as(z))  # one z per sample without jitter
    assert len(counts) > 4


def test_root_target_cube_values():
    size, center, shape = (8000, 8000, 2000), (0, -500, 800), (80, 80, 20)
    gx, gy, gz = voxel_axes(size, center, shape, dtype=torch.float64)
    mu = torch.tensor([[[gx[40], gy[30], gz[10]], [gx[10], gy[10], gz[5]]]], dtype=torch.float64)
    cubes = root_target_cubes(mu, torch.tensor([[True, False]]), size, center, shape)
    assert cubes.shape == (1, 80, 80, 20)
    assert float(cubes[0, 40, 30, 10]) == pytest.approx(1.0)
    d = float(gx[41] - gx[40])
    assert float(cubes[0, 41, 30, 10]) == pytest.approx(np.exp(-d * d / (2 * 200.0**2)))
    assert float(cubes[0, 10, 10, 5]) == 0.0  # invalid root
    # window: voxels more than 600 mm away along x are zero even though the Gaussian is not
    far = int(torch.nonzero(gx > gx[40] + 600)[0])
    assert float(cubes[0, far - 1, 30, 10]) > 0 and float(cubes[0, far, 30, 10]) == 0.0
    both = root_target_cubes(mu, torch.tensor([[True, True]]), size, center, shape)
    assert float(both[0, 10, 10, 5]) == pytest.approx(1.0) and float(both.max()) == pytest.approx(1.0)


def test_synthetic_root_heatmap_peaks_where_roots_project(toy_rig):
    cams = CameraTensors.from_rig(toy_rig, dtype=torch.float64)
    roots = torch.tensor([[[100.0, -200.0, 900.0], [0.0, 0.0, 0.0]]], dtype=torch.float64)
    valid = torch.tensor([[True, False]])
    scale = np.array([1280 / 200, 1280 / 960 * 512 / 200])
    A = affine_transform((640, 360), scale, 0.0, (960, 512))
    heat = synthetic_root_heatmaps(roots, valid, cams, torch.as_tensor(A)[None], noise_std=0.0)
    assert heat.shape == (1, 4, 1, 128, 240)
    for v, cam in enumerate(toy_rig):
        uv = apply_affine(project_np(roots[0, 0].numpy(), cam), A) / 4.0
        iy, ix = np.unravel_index(int(torch.argmax(heat[0, v, 0])), (128, 240))
        assert abs(ix - uv[0]) <= 0.5 + 1e-9 and abs(iy - uv[1]) <= 0.5 + 1e-9
    noisy = synthetic_root_heatmaps(
        roots, valid, cams, torch.as_tensor(A)[None], generator=torch.Generator().manual_seed(0)
    )
    assert 0.0 <= float(noisy.min()) and float(noisy.max()) <= 1.0
    assert 0.005 < float((noisy - heat).std()) < 0.03


def test_exact_centre_targets_peak_at_the_sub_pixel_joint_and_trunc_is_biased():
    """``centre="exact"``: the Gaussian sits at x / stride (where the engine samples a joint);
    SPEC's truncation moves it by the fractional part (toward up-left for positive coordinates)."""
    rng = np.random.default_rng(1)
    joints = rng.uniform([40, 40], [900, 470], size=(1, 15, 2))
    vis = np.ones((1, 15), bool)
    exact, _ = dataset_target_heatmaps(joints, vis, (960, 512), (240, 128), centre="exact")
    trunc, _ = dataset_target_heatmaps(joints, vis, (960, 512), (240, 128), centre="trunc")
    np.testing.assert_allclose(trunc, _reference_heatmaps(joints, vis), atol=1e-6)  # default path unchanged

    def centroid(hm):
        """Sub-pixel peak per channel from the log of the 3 samples around the maximum (exact for a Gaussian)."""
        out = []
        for m in hm.astype(np.float64):
            y, x = np.unravel_index(m.argmax(), m.shape)
            lx, ly = np.log(m[y, x - 1 : x + 2]), np.log(m[y - 1 : y + 2, x])
            out.append(
                [
                    x + (lx[0] - lx[2]) / (2 * (lx[0] - 2 * lx[1] + lx[2])),
                    y + (ly[0] - ly[2]) / (2 * (ly[0] - 2 * ly[1] + ly[2])),
                ]
            )
        return np.array(out)

    truth = joints[0] / 4.0
    assert np.abs(centroid(exact) - truth).max() < 1e-3
    bias = (centroid(trunc) - truth).mean(0)
    assert np.all(bias < -0.25), bias  # about -0.5 px on each axis for uniform fractions
    assert exact.max() <= 1.0 and np.all(exact.max(axis=(1, 2)) > 0.94)
    with pytest.raises(ValueError, match="centre"):
        dataset_target_heatmaps(joints, vis, centre="round")
