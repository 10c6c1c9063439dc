"""TensorRT backend: parity with eager and the on-disk engine cache (skipped visibly without a
CUDA GPU and torch_tensorrt); the cache key is tested everywhere."""

from __future__ import annotations

import pytest
import torch

from engine.backends.tensorrt import engine_cache_key
from engine.runtime import InferenceRuntime

from .test_runtime import _heatmaps, _trained_like


def test_engine_cache_key_changes_with_every_component():
    base = dict(
        weights_hash="abc",
        stage="pose_net",
        shape=(10, 15, 64, 64, 64),
        precision="fp16",
        versions="torch2.13-tt2.13-trt10",
        gpu_name="NVIDIA H100",
    )
    key = engine_cache_key(**base)
    assert key.startswith("pose_net-") and key == engine_cache_key(**base)
    for field, other in [
        ("weights_hash", "abd"),
        ("shape", (9, 15, 64, 64, 64)),
        ("precision", "fp32"),
        ("versions", "torch2.13-tt2.13-trt11"),
        ("gpu_name", "NVIDIA H200"),
        ("stage", "root_net"),
    ]:
        assert engine_cache_key(**{**base, field: other}) != key, field


@pytest.mark.gpu
@pytest.mark.tensorrt
@pytest.mark.parametrize("precision,tol_mm", [("fp32", 1.0), ("fp16", 10.0)])
def test_tensorrt_matches_eager_and_reuses_cached_engines(tmp_path, rig5, tiny, precision, tol_mm):
    model = _trained_like(tiny)
    hm = _heatmaps(rig5, tiny).cuda()
    eager = InferenceRuntime(model, rig5, backend="eager", device="cuda:0", pad_people=True).from_heatmaps(hm)
    trt_rt = InferenceRuntime(model, rig5, backend="tensorrt", device="cuda:0", precision=precision, cache_dir=tmp_path)
    assert trt_rt.resolved.backend == "tensorrt" and trt_rt.pad_people
    trt = trt_rt.from_heatmaps(hm)
    torch.testing.assert_close(trt.proposals[:, 3], eager.proposals[:, 3])
    valid = eager.candidates[:, 0, 3] >= 0
    err = (trt.candidates[valid, :, :3] - eager.candidates[valid, :, :3]).norm(dim=-1)
    assert err.numel() == 0 or float(err.max()) < tol_mm
    cached = sorted(p.name for p in tmp_path.glob("*.ep"))
    assert len(cached) == 3
    again = InferenceRuntime(model, rig5, backend="tensorrt", device="cuda:0", precision=precision, cache_dir=tmp_path)
    assert sorted(p.name for p in tmp_path.glob("*.ep")) == cached
    torch.testing.assert_close(again.from_heatmaps(hm).candidates, trt.candidates)


def test_weights_hash_tracks_weights(tiny):
    from engine.checkpoints import weights_hash
    from engine.model import build_model

    model = build_model(tiny)
    h = weights_hash(model.pose_net)
    assert h == weights_hash(model.pose_net) and len(h) == 16
    with torch.no_grad():
        model.pose_net.v2v_net.output_layer.bias[0] += 1.0
    assert weights_hash(model.pose_net) != h
