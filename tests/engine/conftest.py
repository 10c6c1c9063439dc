"""Engine fixtures: a 5-camera distorted rig and a tiny model config that runs in milliseconds."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from calib.camera import Camera, CameraRig
from engine.config import BackboneConfig, ModelConfig, PoseNetConfig, RootNetConfig, V2VConfig


@pytest.fixture(autouse=True)
def _two_threads():
    torch.set_num_threads(2)


def make_rig(width: int = 640, height: int = 360, n: int = 5) -> CameraRig:
    """n distorted cameras on a 4 m ring, 1.8 m high, looking at (0, 0, 0.9 m)."""
    cams = []
    for i, yaw in enumerate(np.deg2rad(np.arange(n) * 360.0 / n + 10.0)):
        center = np.array([4000.0 * np.cos(yaw), 4000.0 * np.sin(yaw), 1800.0])
        z = np.array([0.0, 0.0, 900.0]) - center
        z /= np.linalg.norm(z)
        x = np.cross(z, [0.0, 0.0, 1.0])
        x /= np.linalg.norm(x)
        R = np.stack([x, np.cross(z, x), z])
        f = 0.75 * width
        K = np.array([[f, 0.0, width / 2 + 3.0], [0.0, f * 1.01, height / 2 - 2.0], [0.0, 0.0, 1.0]])
        dist = np.array([-0.12, 0.03, 0.0008, -0.0006, -0.004])
        cams.append(Camera.from_center(f"cam{i}", width, height, K, dist, R, center, source="engine-test"))
    return CameraRig(tuple(cams))


@pytest.fixture
def rig5() -> CameraRig:
    return make_rig()


def tiny_config(**changes) -> ModelConfig:
    """A small model with the released structure (ResNet-18 trunk, V2V at 1/4 width)."""
    base = dict(
        name="tiny",
        backbone=BackboneConfig(depth=18, width=8, deconv_channels=(16, 16, 16), image_size=(128, 96)),
        root_net=RootNetConfig(bins=(20, 20, 8), v2v=V2VConfig(width=0.25, front_kernel=3), max_people=4),
        pose_net=PoseNetConfig(bins=(16, 16, 16), v2v=V2VConfig(width=0.25, front_kernel=3)),
        with_attn=False,
    )
    base.update(changes)
    return ModelConfig(**base)


@pytest.fixture
def tiny() -> ModelConfig:
    return tiny_config()


def render_heatmaps(
    rig: CameraRig, points_w: np.ndarray, input_size, heatmap_size, num_joints: int = 15, sigma: float = 2.0
) -> np.ndarray:
    """(P,J,3) world joints -> (V,J,h,w) Gaussian heatmaps as the backbone would see them."""
    from engine.project import rig_input_affines
    from calib.projection import project_points

    aff = rig_input_affines(rig, input_size)
    W, H = heatmap_size
    s = np.array([W / input_size[0], H / input_size[1]])
    xs, ys = np.meshgrid(np.arange(W), np.arange(H))
    out = np.zeros((len(rig), num_joints, H, W), dtype=np.float32)
    for v, cam in enumerate(rig):
        for person in points_w:
            uv = np.asarray(project_points(person, cam))  # (J,2)
            hm = (uv @ aff[v][:, :2].T + aff[v][:, 2]) * s
            for j, (x, y) in enumerate(hm):
                g = np.exp(-((xs - x) ** 2 + (ys - y) ** 2) / (2 * sigma**2))
                out[v, j] = np.maximum(out[v, j], g)
    return out
