"""Shelf trainers: synthetic inputs match the engine's detection rendering, coverage box, configs."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from calib.camera import Camera, rig_from_cameras
from engine.detections import render_input_heatmaps
from engine.project import ViewGeometry
from training.errors import DatasetError
from training.shelf.config import CONFIG_DIR, load_config
from training.shelf.data import parse_frames
from training.shelf.trainer import coverage_box, render_detections, sample_synthetic_scene, to_heatmap_px


def _rig() -> "CameraRig":  # noqa: F821
    """Two cameras 5 m away on the x and y axes, 1.5 m high, looking at the origin."""
    from capture.synthetic.rigs import intrinsics_from_fov, look_at_rotation

    cams = []
    for name, c in (("a", (5000.0, 0.0, 1500.0)), ("b", (0.0, -5000.0, 1500.0))):
        R = look_at_rotation(c, (0.0, 0.0, 900.0))
        cams.append(Camera.from_center(name, 640, 480, intrinsics_from_fov(640, 480, 60.0), np.zeros(5), R, c))
    return rig_from_cameras(cams)


def test_rendered_synthetic_detections_equal_the_engine_rendering():
    rig = _rig()
    geo = ViewGeometry.from_rig(rig, (256, 192), (64, 48))
    points = torch.tensor([[[0.0, 0.0, 900.0], [300.0, 200.0, 1400.0]]])  # (P=1,J=2,3)
    uv, front = to_heatmap_px(points, geo)  # (V,1,2,2)
    assert bool(front.all())
    amp = torch.tensor([0.7, 0.4]).expand(1, 2, 1, 2)  # (B,V,P,J)
    ours = render_detections(uv[None], amp, geo.heatmap_wh)[0]  # (B=1,V,P=1,J,2) -> (V,J,H,W)
    from calib.projection import project_points

    per_view = []
    for cam in rig:
        px = project_points(points[0].numpy().astype(np.float64), cam)  # (2,2)
        per_view.append(np.concatenate([px, np.array([[0.7], [0.4]])], 1)[None])  # (1,J,3)
    engine = render_input_heatmaps(per_view, geo.affine_hm.numpy(), geo.heatmap_wh)
    assert engine.max() > 0.3
    # The engine windows its Gaussians at 3 sigma; inside the window both renderings agree.
    inside = engine > 0
    assert np.allclose(ours.numpy()[inside], engine[inside], atol=2e-3)
    assert ours.numpy()[~inside].max() < 0.012


def test_coverage_box_is_where_the_cameras_look():
    rig = _rig()
    box = coverage_box(rig, (8000, 8000, 2000), (0, 0, 800), (500, 1200), min_views=2)
    assert box.shape == (3, 2)
    assert box[0, 0] < 0 < box[0, 1] and box[1, 0] < 0 < box[1, 1]
    assert box[0, 1] < 5000 and box[1, 0] > -5000  # not behind either camera
    assert list(box[2]) == [500, 1200]
    with pytest.raises(ValueError, match="min_views"):
        coverage_box(rig, (8000, 8000, 2000), (0, 0, 800), (500, 1200), min_views=3)


def test_synthetic_scene_places_people_in_the_box():
    bank = torch.zeros((3, 15, 3))
    bank[:, :, 2] = torch.linspace(100, 1700, 15)
    bank[:, 3, 0] = 200.0  # a left shoulder 200 mm off the root axis
    box = np.array([[1000.0, 2000.0], [-500.0, 500.0], [0.0, 0.0]])
    poses, valid = sample_synthetic_scene(bank, box, batch=6, people_range=(2, 4), gen=torch.Generator().manual_seed(0))
    assert poses.shape == (6, 4, 15, 3) and valid.shape == (6, 4)
    assert bool((valid.sum(1) >= 2).all()) and bool((valid.sum(1) <= 4).all())
    root = poses[:, :, 2]
    assert bool(((root[..., 0] >= 1000) & (root[..., 0] <= 2000) & (root[..., 1].abs() <= 500)).all())
    arm = (poses[:, :, 3, :2] - root[..., :2]).norm(dim=-1)
    assert torch.allclose(arm, torch.full_like(arm, 200.0), atol=1e-3)  # rotated about z, not stretched


def test_parse_frames():
    avail = list(range(300, 601))
    assert parse_frames("450-600", avail) == list(range(450, 601))
    assert parse_frames("300-301,305", avail) == [300, 301, 305]
    assert parse_frames(None, avail) == avail
    with pytest.raises(DatasetError, match="not in the detections"):
        parse_frames("590-610", avail)
    with pytest.raises(DatasetError, match="first-last"):
        parse_frames("a-b", avail)


@pytest.mark.parametrize("path", sorted(CONFIG_DIR.glob("shelf_*.yaml")), ids=lambda p: p.stem)
def test_shelf_configs_load(path):
    cfg = load_config(path.stem)
    assert cfg.model == "shelf"
    assert (cfg.pose.steps == 0) == (path.stem == "shelf_rootnet")


def test_unknown_config_lists_the_available_ones():
    from calib.configkit import ConfigError

    with pytest.raises(ConfigError, match="shelf_ssl_a"):
        load_config("shelf_nope")
