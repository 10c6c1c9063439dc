"""The composed runtime and the public API on a tiny model: shapes, padding, people counts,
missing views, images in, backend resolution and bf16 parity."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch

from calib.camera import CalibrationError
from engine.api import load_model
from engine.checkpoints import save_checkpoint
from engine.device import cpu_has_native_bf16, resolve
from engine.errors import BackendUnavailableError
from engine.model import build_model
from engine.runtime import InferenceRuntime

from .conftest import render_heatmaps, tiny_config

PEOPLE = np.array([[0.0, 0.0, 900.0], [1500.0, -1800.0, 850.0], [-1700.0, 1200.0, 950.0]])


def _trained_like(cfg):
    """Random but non-degenerate weights: V2V outputs that follow their input volume."""
    torch.manual_seed(0)
    model = build_model(cfg)
    for m in model.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.running_var.uniform_(0.5, 1.5)
            m.running_mean.uniform_(-0.1, 0.1)
    return model


def _heatmaps(rig, cfg, people=PEOPLE):
    skel = people[:, None, :] + np.linspace(-300, 300, cfg.num_joints)[None, :, None] * np.array([0.3, 0.2, 1.0])
    return torch.from_numpy(render_heatmaps(rig, skel, cfg.backbone.image_size, cfg.backbone.heatmap_size))


def test_shapes_and_people_counts(rig5, tiny):
    rt = InferenceRuntime(_trained_like(tiny), rig5, backend="eager", device="cpu")
    out = rt.from_heatmaps(_heatmaps(rig5, tiny))
    K, J = tiny.root_net.max_people, tiny.num_joints
    assert out.candidates.shape == (K, J, 5) and out.proposals.shape == (K, 5)
    assert out.root_cube.shape == tiny.root_net.bins
    assert {"root_projection", "root_net", "proposals"} <= set(out.timings_ms)
    # zero people: the threshold above any score
    rt.config = tiny_config(root_net=tiny.root_net.__class__(**{**tiny.root_net.__dict__, "threshold": 1e9}))
    none = rt.from_heatmaps(_heatmaps(rig5, tiny))
    assert bool((none.candidates[:, :, 3] == -1).all()) and float(none.candidates[:, :, :3].abs().sum()) == 0.0
    assert "pose_net" not in none.timings_ms
    # max people: every candidate valid
    rt.config = tiny_config(root_net=tiny.root_net.__class__(**{**tiny.root_net.__dict__, "threshold": -1e9}))
    full = rt.from_heatmaps(_heatmaps(rig5, tiny))
    assert bool((full.candidates[:, :, 3] == 0).all())
    assert bool((full.candidates[:, :, :3].abs().sum((1, 2)) > 0).all())


def test_padding_to_max_people_gives_identical_poses(rig5, tiny):
    model = _trained_like(tiny)
    hm = _heatmaps(rig5, tiny)
    cfg = tiny_config(root_net=tiny.root_net.__class__(**{**tiny.root_net.__dict__, "threshold": -1e9}))
    model.config = cfg
    exact = InferenceRuntime(model, rig5, backend="eager", device="cpu", pad_people=False).from_heatmaps(hm)
    padded = InferenceRuntime(model, rig5, backend="eager", device="cpu", pad_people=True).from_heatmaps(hm)
    torch.testing.assert_close(exact.candidates, padded.candidates, atol=1e-3, rtol=1e-5)


def test_missing_view_equals_rig_without_that_view(rig5, tiny):
    model = _trained_like(tiny)
    hm = _heatmaps(rig5, tiny)
    keep = [True, True, True, False, True]
    a = InferenceRuntime(model, rig5, backend="eager", device="cpu").from_heatmaps(hm, keep)
    sub = rig5.subset([n for n, k in zip(rig5.names, keep) if k])
    b = InferenceRuntime(model, sub, backend="eager", device="cpu").from_heatmaps(hm[torch.tensor(keep)])
    torch.testing.assert_close(a.candidates, b.candidates, atol=1e-3, rtol=1e-5)
    torch.testing.assert_close(a.root_cube, b.root_cube, atol=1e-5, rtol=1e-5)


def test_api_images_and_heatmaps_through_our_checkpoint(tmp_path, rig5, tiny):
    model = _trained_like(tiny)
    path = save_checkpoint(tmp_path / "tiny.pt", model)
    pred = load_model(str(path), rig5, backend="auto", device="cpu")
    assert pred.runtime.resolved.backend == "eager"
    rng = np.random.default_rng(0)
    images = rng.integers(0, 255, (5, 360, 640, 3), dtype=np.uint8)
    p = pred.predict_images(images)
    assert p.poses_mm.shape[1:] == (15, 3) and p.poses_mm.shape[0] == p.scores.shape[0]
    assert {"preprocess", "backbone"} <= set(p.timings_ms)
    assert p.to_dict()["skeleton"]["joints"][2] == "mid_hip"
    p2 = pred.predict_images(images, views_present=[True, False, True, True, True])
    assert p2.candidates.shape == (tiny.root_net.max_people, 15, 5)
    hm = pred.predict_heatmaps(_heatmaps(rig5, tiny).numpy())
    assert hm.proposals.shape == (tiny.root_net.max_people, 5)
    with pytest.raises(CalibrationError, match="cam0.*calibration says 360x640"):
        pred.predict_images(np.zeros((5, 100, 100, 3), np.uint8))
    with pytest.raises(CalibrationError, match="views_present"):
        pred.predict_images(images, views_present=[True, False])


def test_backend_resolution(caplog):
    with caplog.at_level(logging.INFO, logger="engine.device"):
        r = resolve("auto", "cpu", "fp32")
    assert r.backend == "eager" and "TensorRT" in r.reason and "eager" in caplog.text
    if not torch.cuda.is_available():
        with pytest.raises(BackendUnavailableError, match="tensorrt.*--backend eager"):
            resolve("tensorrt", "auto", "fp32")
        with pytest.raises(BackendUnavailableError, match="CUDA is not available.*--device cpu"):
            resolve("eager", "cuda:0", "fp32")
    with pytest.raises(BackendUnavailableError, match="fp16.*CPU"):
        resolve("eager", "cpu", "fp16")
    with pytest.raises(BackendUnavailableError, match="unknown"):
        resolve("onnx", "cpu", "fp32")


def test_bf16_parity_with_fp32(rig5):
    cfg = tiny_config(
        root_net=tiny_config().root_net.__class__(bins=(12, 12, 4), max_people=3, v2v=tiny_config().root_net.v2v),
        pose_net=tiny_config().pose_net.__class__(bins=(8, 8, 8), v2v=tiny_config().pose_net.v2v),
    )
    model = _trained_like(cfg)
    hm = _heatmaps(rig5, cfg)
    fp32 = InferenceRuntime(model, rig5, backend="eager", device="cpu", precision="fp32")
    bf16 = InferenceRuntime(model, rig5, backend="eager", device="cpu", precision="bf16")
    a, b = fp32.from_heatmaps(hm), bf16.from_heatmaps(hm)
    scale = float(a.root_cube.abs().max())
    assert scale > 0 and float((a.root_cube - b.root_cube).abs().max()) <= 0.02 * scale
    # pose stage on identical cubes (proposal ties could reorder between precisions)
    centers = torch.tensor(PEOPLE, dtype=torch.float32)
    cubes = fp32.projector.person_cubes(hm, centers)
    from engine.posenet import soft_argmax

    axes = fp32.projector.cube_axes
    va, vb = fp32.stages["pose_net"](cubes), bf16.stages["pose_net"](cubes)
    assert vb.dtype == torch.float32 and float((va - vb).abs().max()) <= 0.02 * float(va.abs().max())
    ja, jb = soft_argmax(va, centers, axes, 100.0), soft_argmax(vb, centers, axes, 100.0)
    err_mm = float((ja - jb).norm(dim=-1).max())
    voxel_mm = float(axes[0][1] - axes[0][0])  # 286 mm on this 8^3 test cube
    # beta=100 amplifies bf16's ~1% volume error; on untrained weights allow 0.2 voxel
    assert err_mm < 0.2 * voxel_mm, f"bf16 deviates {err_mm:.2f} mm (native bf16: {cpu_has_native_bf16()})"


def test_3d_part_matches_upstream_style_loops(rig5, tiny):
    """Whole 3D part vs upstream's structure: per-view projection per call, one pose-net call per slot."""
    from engine.posenet import soft_argmax
    from engine.rootnet import extract_proposals

    from .test_projection import reference_project

    cfg = tiny_config(root_net=tiny.root_net.__class__(**{**tiny.root_net.__dict__, "threshold": -1e9}))
    model = _trained_like(cfg)
    hm = _heatmaps(rig5, cfg)
    ours = InferenceRuntime(model, rig5, backend="eager", device="cpu").from_heatmaps(hm)
    inp, size, center = cfg.backbone.image_size, cfg.space_size_mm, cfg.space_center_mm
    with torch.inference_mode():
        model_c = model.to(memory_format=torch.contiguous_format)
        vol = reference_project(hm[:, 2:3], rig5, size, center, cfg.root_net.bins, inp)[None]
        root = model_c.root_net(vol)
        props = extract_proposals(root, size, center, cfg.root_net.max_people, cfg.root_net.threshold)[0]
        torch.testing.assert_close(ours.proposals, props, atol=1e-3, rtol=1e-5)
        axes = [torch.linspace(-s / 2, s / 2, n) for s, n in zip(cfg.pose_net.cube_size_mm, cfg.pose_net.bins)]
        for k in range(cfg.root_net.max_people):
            cube = reference_project(hm, rig5, cfg.pose_net.cube_size_mm, props[k, :3].tolist(), cfg.pose_net.bins, inp)
            joints = soft_argmax(model_c.pose_net(cube[None]), props[k : k + 1, :3], axes, cfg.pose_net.beta)[0]
            torch.testing.assert_close(ours.candidates[k, :, :3], joints, atol=0.05, rtol=0)


def test_load_model_from_preset_with_overrides_warns_untrained(rig5, caplog):
    with caplog.at_level(logging.WARNING, logger="engine.api"):
        pred = load_model(
            "light",
            rig5,
            device="cpu",
            config_overrides=("root_net.max_people=4",),
            volume_center_mm=(0, 0, 900),
            volume_size_mm=(6000, 6000, 2000),
        )
    assert "WITHOUT weights" in caplog.text and pred.reports == []
    assert pred.config.name == "light" and pred.config.root_net.max_people == 4
    assert pred.runtime.space_center_mm == (0, 0, 900)
    out = pred.predict_heatmaps(np.zeros((5, 15, *pred.config.backbone.heatmap_size[::-1]), np.float32))
    assert out.proposals.shape == (4, 5)


def test_compiled_runtime_pads_people_to_few_buckets_and_results_match(toy_rig):
    """With compile the pose net sees only PEOPLE_BUCKETS batch sizes; padding never changes a result."""
    import torch

    from engine.config import load_preset
    from engine.model import SelfPose3dModel
    from engine.runtime import PEOPLE_BUCKETS, InferenceRuntime

    torch.manual_seed(0)
    model = SelfPose3dModel(load_preset("light", ("root_net.threshold=0.0",))).eval()
    plain = InferenceRuntime(model, toy_rig, backend="eager", device="cpu")
    padded = InferenceRuntime(model, toy_rig, backend="eager", device="cpu")
    padded.compiled = True  # bucket logic only; compiling itself is exercised by the live app
    assert [plain.people_slots(p) for p in (1, 3, 7)] == [1, 3, 7]
    assert [padded.people_slots(p) for p in (1, 3, 5, 7, 10)] == [1, 3, 6, 10, 10]
    assert set(padded.people_slots(p) for p in range(1, 11)) == set(PEOPLE_BUCKETS) | {10}
    seen = []
    stage = padded.stages["pose_net"]
    padded.stages["pose_net"] = lambda x: (seen.append(x.shape[0]), stage(x))[1]
    hm = torch.rand(padded._heatmap_shape)
    a, b = plain.from_heatmaps(hm), padded.from_heatmaps(hm)
    torch.testing.assert_close(a.candidates, b.candidates)
    n = int((a.candidates[:, 0, 3] >= 0).sum())
    assert n >= 1 and seen == [padded.people_slots(n)]


def test_split_stages_on_two_threads_equal_the_whole_frame(tmp_path, rig5, tiny):
    """start_images on one thread, finish on another (the live worker's pipeline) == predict_images."""
    import threading

    cfg = tiny_config(root_net=tiny.root_net.__class__(**{**tiny.root_net.__dict__, "threshold": -1e9}))
    pred = load_model(str(save_checkpoint(tmp_path / "tiny.pt", _trained_like(cfg))), rig5, device="cpu")
    rng = np.random.default_rng(1)
    frames = [rng.integers(0, 255, (5, 360, 640, 3), dtype=np.uint8) for _ in range(3)]
    whole = [pred.predict_images(f, [True, True, False, True, True]) for f in frames]
    started = [pred.start_images(f, [True, True, False, True, True]) for f in frames]
    for f in frames:
        f[:] = 0  # the images are not read after start_images returns
    out: list = []
    worker = threading.Thread(target=lambda: out.extend(pred.finish(s) for s in started))
    worker.start()
    worker.join()
    assert len(out) == 3 and len(whole[0].poses_mm) == tiny.root_net.max_people
    for a, b in zip(whole, out):
        np.testing.assert_allclose(a.candidates, b.candidates, atol=1e-4)
        assert {"backbone", "root_net", "pose_net"} <= set(b.timings_ms)


def test_compiled_cube_sampling_equals_eager(rig5, tiny):
    """The torch.compile'd person-cube projection (live default) gives the eager grids and masks,
    for one and several people (one graph for P=1, one dynamic in P for the rest)."""
    from engine.project import VolumeProjector, ViewGeometry

    b = tiny.backbone
    geom = ViewGeometry.from_rig(rig5, b.image_size, b.heatmap_size)
    args = (geom, (8000, 8000, 2000), (0, -500, 800), (8, 8, 4), (2000, 2000, 2000), (8, 8, 8))
    eager, compiled = VolumeProjector(*args), VolumeProjector(*args, compile=True)
    for people in (1, 2, 3, 4):
        centers = torch.as_tensor(np.resize(PEOPLE, (people, 3)), dtype=torch.float32) + 37.0 * people
        (g0, m0), (g1, m1) = eager.cube_sampling(centers), compiled.cube_sampling(centers)
        torch.testing.assert_close(g1, g0, atol=1e-4, rtol=1e-5)
        torch.testing.assert_close(m1, m0)
        assert float(m0.mean()) > 0.2  # the cubes are seen, so the comparison is not of empty masks
