"""Training-time geometry: augmented view sets project consistently into heatmaps and volumes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from calib.configkit import from_dict
from engine.config import ModelConfig
from training import targets as tg
from training.augment import affine_transform, base_scale
from training.ssl.forward import SSLGeometry

INPUT = (320, 192)


def _geometry(rig) -> SSLGeometry:
    cfg = from_dict(
        ModelConfig,
        {
            "backbone": {"image_size": list(INPUT), "depth": 18},
            "root_net": {"bins": [40, 40, 12]},
            "pose_net": {"bins": [32, 32, 32]},
            "space_size_mm": [4000, 4000, 2000],
            "space_center_mm": [0, 0, 900],
        },
    )
    return SSLGeometry.from_rig(rig, cfg)


def _affines(rig, rotation_deg: float, zoom: float) -> torch.Tensor:
    out = [
        affine_transform(
            (c.width / 2, c.height / 2), base_scale((c.width, c.height), INPUT) * zoom, rotation_deg, INPUT
        )
        for c in rig
    ]
    return torch.as_tensor(np.stack(out), dtype=torch.float32)


@pytest.mark.parametrize("rotation_deg, zoom", [(0.0, 1.0), (30.0, 1.25), (-40.0, 0.85)])
def test_cube_of_rendered_heatmaps_peaks_at_the_3d_joints(toy_rig, rotation_deg, zoom):
    geo = _geometry(toy_rig)
    rng = np.random.default_rng(3)
    center = torch.tensor([150.0, -80.0, 900.0])
    joints = center + torch.as_tensor(rng.uniform(-500, 500, size=(15, 3)), dtype=torch.float32)
    affines = _affines(toy_rig, rotation_deg, zoom)
    uv = geo.project_input_px(joints[None], affines)  # (V,1,J,2)
    hm = tg.render_heatmaps(uv / geo.stride, geo.heatmap_size).requires_grad_(True)  # (V,J,h,w)
    cubes = geo.person_cubes(geo.view_geometry(affines), hm, center[None])  # (1,J,X,Y,Z)
    flat = cubes[0].reshape(15, -1).argmax(-1)
    idx = np.stack(np.unravel_index(flat.numpy(), geo.cube_bins), -1)
    found = torch.stack([geo.cube_axes[a][torch.as_tensor(idx[:, a])] for a in range(3)], -1) + center
    err = (found - joints).norm(dim=-1)
    assert float(err.max()) < 80.0, err  # within ~1 voxel (62.5 mm) of every joint
    cubes.sum().backward()
    assert hm.grad.abs().sum() > 0  # pose-net gradients reach the backbone heatmaps


def test_root_volume_peaks_at_the_root(toy_rig):
    geo = _geometry(toy_rig)
    root = torch.tensor([[600.0, -400.0, 950.0]])
    affines = _affines(toy_rig, 20.0, 1.1)
    uv = geo.project_input_px(root[None], affines)  # (V,1,1,2)
    hm = tg.render_heatmaps(uv / geo.stride, geo.heatmap_size)  # (V,1,h,w)
    vol = geo.root_volume(geo.view_geometry(affines), hm)[0, 0]
    idx = np.unravel_index(int(vol.argmax()), vol.shape)
    pos = torch.stack([torch.as_tensor(geo.room_points.reshape(*geo.root_bins, 3)[idx])])
    assert float((pos - root).norm()) < 200.0


def test_synthetic_root_heatmaps_land_on_the_projection(toy_rig):
    geo = _geometry(toy_rig)
    roots = torch.tensor([[[300.0, 200.0, 900.0]]])
    affines = _affines(toy_rig, -25.0, 0.9)
    hm = tg.synthetic_root_heatmaps(
        roots,
        torch.ones(1, 1, dtype=torch.bool),
        geo.cams,
        affines[None],
        geo.heatmap_size,
        stride=geo.stride,
        noise_std=0.0,
    )  # (1,V,1,h,w)
    uv = geo.project_input_px(roots[0], affines)[:, 0] / geo.stride  # (V,2)
    for v in range(len(toy_rig)):
        y, x = np.unravel_index(int(hm[0, v, 0].argmax()), hm.shape[-2:])
        assert abs(x - float(uv[v, 0])) <= 0.5 + 1e-6 and abs(y - float(uv[v, 1])) <= 0.5 + 1e-6
