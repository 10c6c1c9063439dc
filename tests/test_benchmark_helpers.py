"""The measuring helpers the accuracy benchmarks rely on (a wrong ruler would mislead every figure)."""

from __future__ import annotations

import numpy as np

from benchmarks.diag_synthetic_errors import heatmap_errors_px
from engine.detections import render_input_heatmaps

IDENTITY = np.array([[[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]])  # (V=1,2,3): original px = heatmap px


def _heatmaps(pos: np.ndarray, wh=(40, 30)) -> np.ndarray:
    """(1,J,H,W) Gaussians (σ 2 px) at (P,J,2) heatmap positions."""
    poses = np.concatenate([pos, np.ones((*pos.shape[:2], 1))], -1).astype(np.float32)
    return render_input_heatmaps([poses], IDENTITY, wh, sigma_px=2.0, scale_by_score=False)


def test_subpixel_peak_finds_an_off_grid_joint_that_the_argmax_misses_by_its_rounding():
    pos = np.array([[[10.3, 12.0], [20.0, 8.4], [25.35, 17.3]]])  # (P=1,J=3,2)
    hm = _heatmaps(pos)
    plain = heatmap_errors_px(hm, pos[None])
    sub = heatmap_errors_px(hm, pos[None], subpixel=True)
    assert np.allclose(plain, [0.3, 0.4, np.hypot(0.35, 0.3)], atol=1e-6)
    assert max(sub) < 0.1


def test_a_wrong_peak_is_measured_and_ambiguous_or_border_joints_are_skipped():
    truth = np.array([[[10.0, 12.0]], [[30.0, 15.0]], [[33.0, 15.0]], [[1.0, 1.0]]])  # (P=4,J=1,2)
    drawn = truth.copy()
    drawn[0, 0] += (2.0, 0.0)  # person 0's peak is 2 px off
    hm = _heatmaps(drawn)
    joints: list[int] = []
    errs = heatmap_errors_px(hm, truth[None], subpixel=True, joints_out=joints)
    # persons 1 and 2 are 3 px apart (< min_sep 6): skipped; person 3 sits on the border: skipped
    assert len(errs) == 1 and joints == [0]
    assert abs(errs[0] - 2.0) < 0.1
