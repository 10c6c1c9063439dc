"""Local joint refinement (engine.refine): moves joints onto the views' consensus, own channel only,
no-ops where no view sees the joint, respects missing views; config and runtime wiring."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from calib.configkit import ConfigError
from calib.projection import project_points
from engine.config import PoseNetConfig, RefineConfig
from engine.detections import render_input_heatmaps
from engine.project import ViewGeometry, fuse_views, fuse_views_per_channel
from engine.refine import LocalRefiner
from engine.runtime import InferenceRuntime

from .conftest import tiny_config
from .test_runtime import _heatmaps, _trained_like

J = 15


def _geometry(rig):
    return ViewGeometry.from_rig(rig, (640, 384), (160, 96), "cpu")


def _skeleton(center_mm) -> np.ndarray:
    """(15,3) joints spread over a body-sized box around ``center_mm``."""
    rng = np.random.default_rng(3)
    return np.asarray(center_mm, float) + rng.uniform([-250, -250, -800], [250, 250, 800], size=(J, 3))


def _rendered(rig, geo, people: list[np.ndarray]) -> torch.Tensor:
    views = []
    for cam in rig:
        rows = np.zeros((len(people), J, 3), np.float32)
        for p, joints in enumerate(people):
            rows[p, :, :2] = project_points(joints, cam)
            rows[p, :, 2] = 1.0
        views.append(rows)
    return torch.from_numpy(render_input_heatmaps(views, geo.affine_hm.numpy(), geo.heatmap_wh, 2.0))


def test_refinement_pulls_perturbed_joints_onto_the_views_consensus(toy_rig):
    geo = _geometry(toy_rig)
    truth = _skeleton([100.0, -200.0, 900.0])
    hm = _rendered(toy_rig, geo, [truth])
    rng = np.random.default_rng(0)
    start = truth + rng.normal(0, 35.0, truth.shape)  # a pose net within about a voxel
    refined = LocalRefiner(geo, 80.0, 20.0, 100.0)(torch.tensor(start[None], dtype=torch.float32), hm)[0].numpy()
    before = np.linalg.norm(start - truth, axis=1).mean()
    after = np.linalg.norm(refined - truth, axis=1).mean()
    assert before > 45.0
    assert after < 0.4 * before, (before, after)


def test_only_the_joints_own_channel_is_sampled(toy_rig):
    """Another person's joints just outside the window, and every other channel at this joint's
    position, must not move it: a whole-cube soft-argmax would be pulled by both."""
    geo = _geometry(toy_rig)
    truth = _skeleton([0.0, 0.0, 900.0])
    other = truth + np.array([160.0, 0.0, 0.0])  # same joints, 160 mm away (outside ±80 mm)
    decoy = np.repeat(truth[3:4], J, axis=0)  # every joint type piled at joint 3's position
    hm = torch.maximum(_rendered(toy_rig, geo, [truth, other]), 0.9 * _rendered(toy_rig, geo, [decoy]))
    refined = LocalRefiner(geo, 80.0, 20.0, 100.0)(torch.tensor(truth[None], dtype=torch.float32), hm)[0].numpy()
    err = np.linalg.norm(refined - truth, axis=1)
    assert err.max() < 25.0, err


def test_joint_seen_by_no_view_stays_put_and_missing_views_are_left_out(toy_rig):
    geo = _geometry(toy_rig)
    truth = _skeleton([0.0, 0.0, 900.0])
    hm = _rendered(toy_rig, geo, [truth])
    far = np.full((1, J, 3), 1e6, np.float32)  # behind / outside every camera
    out = LocalRefiner(geo, 60.0, 20.0, 100.0)(torch.from_numpy(far), hm)
    assert torch.allclose(out, torch.from_numpy(far), atol=1e-2)
    # a view whose heatmaps are garbage is ignored when flagged absent
    noisy = hm.clone()
    noisy[1] = torch.roll(hm[1], shifts=(6, 9), dims=(1, 2))
    start = torch.tensor(truth[None] + 30.0, dtype=torch.float32)
    present = torch.tensor([True, False, True, True])
    masked = LocalRefiner(geo, 80.0, 20.0, 100.0)(start, noisy, present)[0].numpy()
    assert np.linalg.norm(masked - truth, axis=1).mean() < 20.0


def test_per_channel_fusion_equals_shared_fusion_when_points_agree(toy_rig):
    geo = _geometry(toy_rig)
    hm = torch.rand(len(toy_rig), 3, 96, 160)
    pts = torch.tensor(_skeleton([0.0, 0.0, 900.0])[:7], dtype=torch.float32)
    grid, mask = geo.sample_points(pts)  # (V,7,2)
    shared = fuse_views(hm, grid, mask)
    per = fuse_views_per_channel(hm, grid[:, None].expand(-1, 3, -1, -1), mask[:, None].expand(-1, 3, -1))
    assert torch.allclose(shared, per, atol=1e-6)


def test_config_validation_names_the_field():
    with pytest.raises(ConfigError, match="pose_net.refine.radius_mm"):
        RefineConfig(radius_mm=-1.0)
    with pytest.raises(ConfigError, match="radius_mm / step_mm"):
        RefineConfig(radius_mm=200.0, step_mm=10.0)
    assert PoseNetConfig().refine.radius_mm == 0.0  # off as released: upstream parity


def test_runtime_refines_only_when_configured(rig5, tiny):
    tiny = tiny_config(root_net=dataclasses.replace(tiny.root_net, threshold=-1e9))  # every proposal valid
    model = _trained_like(tiny)
    hm = _heatmaps(rig5, tiny)
    plain = InferenceRuntime(model, rig5, backend="eager", device="cpu").from_heatmaps(hm)
    assert "refine" not in plain.timings_ms
    on = InferenceRuntime(model, rig5, backend="eager", device="cpu", refine_radius_mm=60.0).from_heatmaps(hm)
    assert "refine" in on.timings_ms
    valid = plain.candidates[:, 0, 3] >= 0
    assert bool(valid.any())
    moved = (on.candidates[valid, :, :3] - plain.candidates[valid, :, :3]).norm(dim=-1)
    assert float(moved.max()) > 1.0 and float(moved.max()) < 60.0 * 3**0.5 + 1e-3  # stays inside the window
    assert torch.equal(on.candidates[:, :, 3:], plain.candidates[:, :, 3:])
    # the model config's setting is the default; refine_radius_mm=0 switches it off
    refined_cfg = dataclasses.replace(
        tiny, pose_net=dataclasses.replace(tiny.pose_net, refine=RefineConfig(radius_mm=60.0))
    )
    model.config = refined_cfg
    by_config = InferenceRuntime(model, rig5, backend="eager", device="cpu").from_heatmaps(hm)
    assert torch.allclose(by_config.candidates, on.candidates)
    off = InferenceRuntime(model, rig5, backend="eager", device="cpu", refine_radius_mm=0).from_heatmaps(hm)
    assert torch.allclose(off.candidates, plain.candidates)
    with pytest.raises(ConfigError, match="radius_mm"):
        InferenceRuntime(model, rig5, backend="eager", device="cpu", refine_radius_mm=-5)
