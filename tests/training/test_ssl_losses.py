"""Self-supervised losses (SPEC.md §3): values, gradients, and that a correct pose scores best."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from training import targets as tg
from training.ssl import losses as L


def test_heatmap_mse_weights_and_zero():
    pred = torch.rand(2, 3, 15, 8, 10)
    assert float(L.heatmap_mse(pred, pred.clone())) == 0.0
    target = pred.clone()
    target[:, :, 4] += 1.0  # only joint 4 differs
    w = torch.ones(2, 3, 15)
    assert float(L.heatmap_mse(pred, target, w)) == pytest.approx(1.0 / 15, rel=1e-5)
    w[..., 4] = 0.0
    assert float(L.heatmap_mse(pred, target, w)) == 0.0


def test_synthetic_root_target_peaks_at_root_voxel_and_loss_is_zero_there():
    size, center, bins = (8000.0, 8000.0, 2000.0), (0.0, -500.0, 800.0), (40, 40, 12)
    axes = tg.voxel_axes(size, center, bins)
    roots = torch.stack([axes[0][7], axes[1][30], axes[2][5]])[None, None]  # a voxel centre (1,1,3)
    cube = tg.root_target_cubes(roots, torch.ones(1, 1, dtype=torch.bool), size, center, bins)
    assert np.unravel_index(int(cube.argmax()), cube.shape[1:]) == (7, 30, 5)
    assert float(cube.max()) == pytest.approx(1.0)
    assert float(L.synthetic_root_loss([cube, cube, cube], [cube, cube, cube])) == 0.0
    moved = torch.roll(cube, 3, dims=1)
    loss = L.synthetic_root_loss([moved, cube, cube], [cube, cube, cube], weight=100.0)
    assert float(loss) == pytest.approx(100.0 * float((moved - cube).pow(2).mean()), rel=1e-6)


def test_root_consistency_stops_gradient_at_the_unaugmented_set():
    c1, c2, c3 = (torch.rand(1, 4, 4, 4, requires_grad=True) for _ in range(3))
    loss = L.root_consistency_loss([c1, c2, c3], weight=2.0)
    loss.backward()
    assert c3.grad is None and c1.grad.abs().sum() > 0 and c2.grad.abs().sum() > 0
    expected = 2.0 * ((c1 - c3).pow(2).mean() + (c2 - c3).pow(2).mean())
    assert float(loss.detach()) == pytest.approx(float(expected.detach()), rel=1e-6)


def _render(points_px: torch.Tensor, hm_size=(60, 40)) -> torch.Tensor:
    return tg.render_heatmaps(points_px[None], hm_size)  # (J,H,W)


def test_cross_view_pose_loss_prefers_the_pose_that_explains_the_targets():
    rng = torch.Generator().manual_seed(0)
    true = torch.rand(15, 2, generator=rng) * torch.tensor([50.0, 30.0]) + 5  # heatmap px
    T1, T2 = _render(true), _render(true + 1.0)
    good = L.cross_view_pose_loss(T1, _render(true), None, T2, _render(true + 1.0), None)
    off = true + 4.0
    bad = L.cross_view_pose_loss(T1, _render(off), None, T2, _render(off + 1.0), None)
    assert float(good) == pytest.approx(0.0, abs=1e-7) and float(bad) > 1e-3
    # attention re-weights per pixel: zero attention removes the term, the regulariser pulls it back to 1
    zero = torch.zeros_like(T1)
    assert float(L.cross_view_pose_loss(T1, _render(off), zero, T2, _render(off + 1.0), zero)) == 0.0
    assert float(L.attention_regularizer(zero, zero, 0.1)) == pytest.approx(0.2)
    assert float(L.attention_regularizer(torch.ones(3), torch.ones(3))) == 0.0


def test_pose_loss_gradient_moves_rendered_joints_toward_the_targets():
    true = torch.tensor([[20.0, 15.0]] * 15)
    pred = (true + torch.tensor([2.0, -1.5])).requires_grad_(True)
    T = _render(true)
    loss = L.cross_view_pose_loss(T, _render(pred), None, T, _render(pred), None)
    loss.backward()
    step = -pred.grad[0]
    assert step[0] < 0 and step[1] > 0  # descent points back toward the true position


def test_hungarian_l1_matches_hand_computed_value():
    W, H = 100.0, 50.0
    gt = torch.zeros(1, 1, 2, 15, 2)
    gt[0, 0, 0] = torch.tensor([10.0, 10.0])
    gt[0, 0, 1] = torch.tensor([80.0, 40.0])
    vis = torch.ones(1, 1, 2, 15, dtype=torch.bool)
    vis[0, 0, 1, 3] = False  # an unlabelled joint counts as zero error
    pred = torch.zeros(1, 1, 3, 15, 2)
    pred[0, 0, 0] = torch.tensor([81.0, 40.0])  # near gt 1
    pred[0, 0, 1] = torch.tensor([10.0, 12.0])  # near gt 0
    pred[0, 0, 2] = torch.tensor([0.0, 0.0])  # invalid slot
    pred[0, 0, 0, 3] = torch.tensor([0.0, 0.0])  # wrong, but gt 1's joint 3 is invisible
    pred.requires_grad_(True)
    valid = torch.tensor([[True, True, False]])
    loss = L.hungarian_l1_loss(pred, valid, gt, vis, (W, H), drop_largest=False)
    # gt0 <- pred1: |dy| = 2/50 on 15 joints, mean over 30 entries; gt1 <- pred0: |dx| = 1/100 on 14 joints
    expected = (15 * 2 / H) / 30 + (14 * 1 / W) / 30
    assert float(loss.detach()) == pytest.approx(expected, rel=1e-5)
    loss.backward()
    assert pred.grad[0, 0, 2].abs().sum() == 0 and pred.grad[0, 0, :2].abs().sum() > 0


def test_hungarian_l1_drops_the_largest_entry_and_handles_empty_sides():
    gt = torch.zeros(1, 3, 1, 15, 2)
    pred = torch.zeros(1, 3, 1, 15, 2)
    pred[0, 0] += 10.0
    pred[0, 1] += 50.0
    vis = torch.ones(1, 3, 1, 15, dtype=torch.bool)
    vis[0, 2] = False  # view 2 has no pseudo person: entry 0
    valid = torch.ones(1, 1, dtype=torch.bool)
    costs = [10.0 / 100 / 2 + 10.0 / 50 / 2, 50.0 / 100 / 2 + 50.0 / 50 / 2, 0.0]
    plain = L.hungarian_l1_loss(pred, valid, gt, vis, (100, 50), drop_largest=False)
    dropped = L.hungarian_l1_loss(pred, valid, gt, vis, (100, 50), drop_largest=True)
    assert float(plain) == pytest.approx(sum(costs) / 3, rel=1e-6)
    assert float(dropped) == pytest.approx((costs[0] + costs[2]) / 2, rel=1e-6)
    none = L.hungarian_l1_loss(pred, torch.zeros(1, 1, dtype=torch.bool), gt, vis, (100, 50))
    assert float(none) == 0.0
