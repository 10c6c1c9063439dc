"""Precision choice (auto by CPU flags and the model's release-time bf16 check) and mixed bf16."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest
import torch

from engine import device as device_mod
from engine.checkpoints import load_model_file, save_checkpoint
from engine.device import cpu_info, resolve
from engine.model import build_model
from engine.precision import (
    BF16_BAR_MM,
    FP32_ISLANDS,
    MIXED_POLICY,
    compare_runs,
    joint_deviations_mm,
    mixed_bf16,
    parse_bf16_check,
)
from engine.runtime import InferenceRuntime

from .conftest import tiny_config

AMX = frozenset({"avx2", "avx512f", "amx_bf16", "amx_tile", "avx512_bf16"})
AVX512_BF16 = frozenset({"avx2", "avx512f", "avx512_bf16"})
AVX2 = frozenset({"avx2", "fma"})
PASSED = {"policy": MIXED_POLICY, "p99_mm": 0.4, "passed": True}
FAILED = {"policy": MIXED_POLICY, "p99_mm": 6.7, "passed": False}


@pytest.mark.parametrize(
    "flags,check,want",
    [
        (AMX, PASSED, "bf16"),
        (AVX512_BF16, PASSED, "bf16"),
        (AVX2, PASSED, "fp32"),  # emulated bf16 is slower: never auto
        (frozenset(), PASSED, "fp32"),  # no /proc/cpuinfo
        (AMX, None, "fp32"),  # model never checked
        (AMX, FAILED, "fp32"),  # check failed
        (AMX, {**PASSED, "p99_mm": BF16_BAR_MM + 0.01}, "fp32"),  # a figure over the bar is not a pass
        (AMX, {**PASSED, "policy": "older-islands"}, "fp32"),  # checked under another island set
    ],
)
def test_auto_picks_bf16_only_with_native_bf16_and_a_passed_check(flags, check, want, caplog):
    with caplog.at_level(logging.INFO, logger="engine.device"):
        r = resolve("eager", "cpu", "auto", bf16_check=check, flags=flags)
    assert r.precision == want
    line = next(rec.getMessage() for rec in caplog.records if "precision auto" in rec.getMessage())
    assert line.startswith(f"precision auto -> {want}")
    if flags:  # the log says what the detection saw
        assert "amx_bf16" in line or "no native bf16" in line


def test_explicit_precisions_are_kept():
    assert resolve("eager", "cpu", "bf16", flags=AVX2).precision == "bf16"  # on request, with a warning
    assert resolve("eager", "cpu", "fp32", bf16_check=PASSED, flags=AMX).precision == "fp32"


def test_cpu_info_names_the_model_and_the_bf16_flags():
    info = cpu_info()
    assert info["model"] and set(info["flags"]) >= {"amx_bf16", "avx512_bf16", "avx512f"}
    assert info["native_bf16"] == (info["flags"]["amx_bf16"] or info["flags"]["avx512_bf16"])


def test_mixed_bf16_keeps_islands_fp32_keys_and_the_original():
    model = build_model(tiny_config())
    for stage in ("backbone", "pose_net"):
        module = getattr(model, stage)
        mixed = mixed_bf16(module, stage)
        assert list(mixed.state_dict()) == list(module.state_dict())
        assert all(p.dtype == torch.float32 for p in module.parameters())  # original untouched
        for name, p in mixed.named_parameters():
            island = any(name.startswith(i + ".") for i in FP32_ISLANDS[stage])
            assert p.dtype == (torch.float32 if island else torch.bfloat16), name
    assert all(p.dtype == torch.float32 for p in mixed_bf16(model.root_net, "root_net").parameters())
    cubes = torch.rand(2, 15, 8, 8, 8)
    with torch.inference_mode():
        out = mixed_bf16(model.pose_net, "pose_net")(cubes)
        ref = model.pose_net(cubes)
    assert out.dtype == torch.float32  # the 1x1 output layer is an fp32 island
    assert float((out - ref).abs().max()) <= 0.05 * float(ref.abs().max()) + 1e-6


def _cand(people: np.ndarray, flags=None) -> np.ndarray:
    K, J = 4, people.shape[1]
    c = np.zeros((K, J, 5))
    c[:, :, 3] = -1
    c[: len(people), :, :3] = people
    c[: len(people), :, 3] = 0
    return c


def test_joint_deviations_match_people_and_count_the_unmatched():
    a = np.stack([np.full((15, 3), 0.0), np.full((15, 3), 1000.0)])
    b = a[::-1].copy()  # same people, other order
    b[0, 3] += [0.0, 3.0, 4.0]  # one joint 5 mm off
    d, unmatched = joint_deviations_mm(_cand(a), _cand(b))
    assert unmatched == 0 and d.size == 30 and d.max() == pytest.approx(5.0) and np.sort(d)[-2] == 0
    d, unmatched = joint_deviations_mm(_cand(a), _cand(a[:1]))
    assert unmatched == 1 and d.size == 15
    s = compare_runs([_cand(a)], [_cand(b)])
    assert s.max_mm == pytest.approx(5.0) and not s.passed  # p99 of 30 joints sits near the 5 mm outlier


def test_runtime_auto_reads_the_model_files_check(tmp_path, rig5, monkeypatch):
    model = build_model(tiny_config())
    path = save_checkpoint(tmp_path / "m.pt", model, {"bf16_check": json.dumps(PASSED)})
    loaded, _ = load_model_file(path)
    assert parse_bf16_check({"bf16_check": json.dumps(PASSED)}) == PASSED == loaded.bf16_check
    monkeypatch.setattr(device_mod, "cpu_flags", lambda: AMX)
    assert InferenceRuntime(loaded, rig5, backend="eager", device="cpu").resolved.precision == "bf16"
    monkeypatch.setattr(device_mod, "cpu_flags", lambda: AVX2)
    assert InferenceRuntime(loaded, rig5, backend="eager", device="cpu").resolved.precision == "fp32"
    failed = save_checkpoint(tmp_path / "f.pt", model, {"bf16_check": json.dumps(FAILED)})
    monkeypatch.setattr(device_mod, "cpu_flags", lambda: AMX)
    assert (
        InferenceRuntime(load_model_file(failed)[0], rig5, backend="eager", device="cpu").resolved.precision == "fp32"
    )
    assert InferenceRuntime(model, rig5, backend="eager", device="cpu").resolved.precision == "fp32"  # no file


def test_write_bf16_check_keeps_weights_bit_identical(tmp_path):
    from app.commands.bench import write_bf16_check

    model = build_model(tiny_config())
    path = save_checkpoint(tmp_path / "m.pt", model, {"stage": "posenet"})
    before = torch.load(path, weights_only=True)
    write_bf16_check(path, FAILED)
    after = torch.load(path, weights_only=True)
    assert after["meta"]["stage"] == "posenet" and json.loads(after["meta"]["bf16_check"]) == FAILED
    assert after["config"] == before["config"] and list(after["state_dict"]) == list(before["state_dict"])
    assert all(torch.equal(before["state_dict"][k], v) for k, v in after["state_dict"].items())


def test_committed_models_carry_their_bf16_check():
    from pathlib import Path

    root = Path(__file__).resolve().parents[2] / "models"
    for name in ("light_synthetic.pt", "shelf_ssl.pt"):
        meta = torch.load(root / name, weights_only=True)["meta"]
        check = parse_bf16_check(meta)
        assert check is not None and check["policy"] == MIXED_POLICY and check["joints"] > 0, name
        assert check["passed"] == (check["p99_mm"] <= BF16_BAR_MM and check["unmatched_people"] == 0)
