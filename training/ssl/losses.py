"""Self-supervised losses of SelfPose3d (SPEC.md §3), vectorised over batch, views and persons.

Shapes: ``B`` samples, ``V`` views, ``J`` joints, ``P`` predicted persons, ``G`` pseudo persons,
heatmaps ``(H, W)``. Every function returns a scalar tensor; weights are applied here so the
trainer only sums.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch


def heatmap_mse(pred: torch.Tensor, target: torch.Tensor, weights: torch.Tensor | None = None) -> torch.Tensor:
    """2D heatmap loss (SPEC.md §3.1 / §3.3 step 1).

    Args:
        pred, target: (...,J,H,W).
        weights: optional (...,J) joint weights (1 = the joint is labelled in that view); the
            loss is then ``mean((w·(pred - target))²)`` as upstream's per-joint MSE.
    """
    diff = pred.float() - target.float()
    if weights is not None:
        diff = diff * weights.to(diff.dtype)[..., None, None]
    return diff.pow(2).mean()


def synthetic_root_loss(
    syn_cubes: Sequence[torch.Tensor], target_cubes: Sequence[torch.Tensor], weight: float = 100.0
) -> torch.Tensor:
    """``weight · Σ_k MSE(syn_cube_k, target_cube_k)`` over the view sets (SPEC.md §3.2 a).

    Args:
        syn_cubes: per view set (B,X,Y,Z) root-net output on synthetic root heatmaps.
        target_cubes: per view set (B,X,Y,Z) Gaussian targets (no gradient).
    """
    terms = [(s.float() - t.detach().float()).pow(2).mean() for s, t in zip(syn_cubes, target_cubes, strict=True)]
    return weight * torch.stack(terms).sum()


def root_consistency_loss(real_cubes: Sequence[torch.Tensor], weight: float = 1.0) -> torch.Tensor:
    """``weight · [MSE(c1, sg(c3)) + MSE(c2, sg(c3))]`` (SPEC.md §3.2 b).

    Args:
        real_cubes: the three (B,X,Y,Z) root cubes of view sets 1, 2, 3 (set 3 un-augmented).
    """
    c1, c2, c3 = (c.float() for c in real_cubes)
    anchor = c3.detach()
    return weight * ((c1 - anchor).pow(2).mean() + (c2 - anchor).pow(2).mean())


def cross_view_pose_loss(
    targets_1: torch.Tensor,
    rendered_21: torch.Tensor,
    attn_1: torch.Tensor | None,
    targets_2: torch.Tensor,
    rendered_12: torch.Tensor,
    attn_2: torch.Tensor | None,
) -> torch.Tensor:
    """``mean((T1 - R21)² ⊙ A1) + mean((T2 - R12)² ⊙ A2)`` (SPEC.md §3.3 step 5).

    ``R21`` is the pose predicted from view set 2 rendered into view set 1's frame (and vice
    versa), so each augmentation's pose must explain the other augmentation's pseudo heatmaps.

    Args:
        targets_k: (...,J,H,W) pseudo target heatmaps of view set k.
        rendered_jk: (...,J,H,W) heatmaps rendered from the other set's 3D poses.
        attn_k: (...,J,H,W) attention in (0,1), or None for uniform weight 1.
    """

    def term(t: torch.Tensor, r: torch.Tensor, a: torch.Tensor | None) -> torch.Tensor:
        sq = (t.float() - r.float()).pow(2)
        return (sq if a is None else sq * a.float()).mean()

    return term(targets_1, rendered_21, attn_1) + term(targets_2, rendered_12, attn_2)


def attention_regularizer(attn_1: torch.Tensor, attn_2: torch.Tensor, weight: float = 0.1) -> torch.Tensor:
    """``weight · [MSE(A1, 1) + MSE(A2, 1)]``: keeps the attention away from the trivial A = 0 (§3.3 step 6)."""
    return weight * ((attn_1.float() - 1.0).pow(2).mean() + (attn_2.float() - 1.0).pow(2).mean())


def l1_cost_matrix(
    pred_px: torch.Tensor, gt_px: torch.Tensor, gt_visible: torch.Tensor, image_size: tuple[float, float]
) -> torch.Tensor:
    """Matching costs ``d[g, p] = mean_{J×2} |(P_p - G_g) ⊙ vis_g|`` in image-normalised units.

    Args:
        pred_px: (...,P,J,2) projected predicted joints (input px).
        gt_px: (...,G,J,2) pseudo joints (input px).
        gt_visible: (...,G,J) bool/float.
        image_size: (W,H) normaliser (x / W, y / H).
    Returns:
        (...,G,P) costs (differentiable w.r.t. ``pred_px``).
    """
    norm = torch.tensor([1.0 / image_size[0], 1.0 / image_size[1]], dtype=pred_px.dtype, device=pred_px.device)
    p = (pred_px * norm).unsqueeze(-4)  # (...,1,P,J,2)
    g = (gt_px.to(pred_px.dtype) * norm).unsqueeze(-3)  # (...,G,1,J,2)
    vis = gt_visible.to(pred_px.dtype)[..., :, None, :, None]  # (...,G,1,J,1)
    return ((p - g).abs() * vis).mean(dim=(-2, -1))


def hungarian_l1_loss(
    pred_px: torch.Tensor,
    pred_valid: torch.Tensor,
    gt_px: torch.Tensor,
    gt_visible: torch.Tensor,
    image_size: tuple[float, float],
    drop_largest: bool = True,
) -> torch.Tensor:
    """Hungarian-matched 2D L1 between projected predictions and pseudo persons (SPEC.md §3.3 step 7).

    For every (sample, view): optimal assignment (``scipy.optimize.linear_sum_assignment`` on the
    detached costs, rectangular allowed) between the pseudo persons ``G`` (rows with any visible
    joint) and the valid predictions; ``L_bv`` = sum of matched costs (0 when either side is empty).
    With ``drop_largest`` the single largest ``L_bv`` is dropped and the rest averaged over
    ``B·V - 1`` entries (upstream's ``L1_ATTN``), else the plain mean over ``B·V``.

    Args:
        pred_px: (B,V,P,J,2) projected predicted joints, input px.
        pred_valid: (B,P) bool, valid predictions.
        gt_px: (B,V,G,J,2) pseudo joints, input px.
        gt_visible: (B,V,G,J) bool.
        image_size: (W,H) input size for normalisation.
    Returns:
        scalar (unweighted).
    """
    from scipy.optimize import linear_sum_assignment

    B, V = pred_px.shape[:2]
    costs = l1_cost_matrix(pred_px, gt_px, gt_visible, image_size)  # (B,V,G,P)
    gt_valid = gt_visible.bool().any(-1).cpu().numpy()  # (B,V,G)
    pv = pred_valid.bool().cpu().numpy()  # (B,P)
    detached = costs.detach().float().cpu().numpy()
    idx_b, idx_v, idx_g, idx_p = [], [], [], []
    for b in range(B):
        cols = np.flatnonzero(pv[b])
        for v in range(V):
            rows = np.flatnonzero(gt_valid[b, v])
            if rows.size == 0 or cols.size == 0:
                continue
            r, c = linear_sum_assignment(detached[b, v][np.ix_(rows, cols)])
            idx_b += [b] * len(r)
            idx_v += [v] * len(r)
            idx_g += rows[r].tolist()
            idx_p += cols[c].tolist()
    per_entry = costs.new_zeros(B * V)
    if idx_b:
        dev = costs.device
        ib, iv, ig, ip = (torch.as_tensor(i, device=dev) for i in (idx_b, idx_v, idx_g, idx_p))
        per_entry = per_entry.index_add(0, ib * V + iv, costs[ib, iv, ig, ip])
    if drop_largest and per_entry.numel() > 1:
        keep = torch.ones_like(per_entry, dtype=torch.bool)
        keep[int(torch.argmax(per_entry.detach()))] = False
        return per_entry[keep].sum() / (per_entry.numel() - 1)
    return per_entry.mean()
