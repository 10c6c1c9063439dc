"""Mixed bf16/fp32 inference and the choice of precision (issue 25).

bf16 keeps 8 mantissa bits (relative rounding ~2^-9 per activation). The soft-argmax of the pose
net (beta 100) and the local refinement (beta 100 on the fused heatmaps) turn small volume or
heatmap errors into joint shifts of millimetres, and a root-score tie can move a proposal by a
whole voxel. So only the heavy trunks run in bf16; the layers that write what the soft-argmax,
the refinement and the NMS read stay fp32 (:data:`FP32_ISLANDS`), as do the projection/sampling
indices and the soft-argmax itself (they never run under this policy).

``--precision auto`` picks bf16 only where the CPU computes bf16 natively (AMX or AVX512-BF16)
*and* the model file carries a release-time deviation check (``meta['bf16_check']``) within
:data:`BF16_BAR_MM`; everywhere else fp32 (emulated bf16 on AVX2 is slower than fp32).
"""

from __future__ import annotations

import copy
import json
import logging
from dataclasses import dataclass
from typing import Iterable, Mapping, Sequence

import numpy as np
import torch
from torch import nn

log = logging.getLogger(__name__)

BF16_BAR_MM = 1.0  # p99 joint deviation bf16 vs fp32 a model must meet for auto to pick bf16
MIXED_POLICY = "mixed-v1"  # name of the island set below, stored with every deviation figure

# stage -> sub-module names (dotted, relative to the stage module) kept fp32 inside a bf16 stage
FP32_ISLANDS: dict[str, tuple[str, ...]] = {
    # the deconv head and the 1x1 joint layer write the heatmaps the projection and refinement read
    "backbone": ("deconv_layers", "final_layer"),
    # root scores feed a 3D NMS + top-K: one bf16 tie moves a proposal by a voxel (250 mm light);
    # the root net is small next to the pose net, so it runs fp32 whole
    "root_net": ("",),
    # full-resolution tail of the V2V (skip branch, last upsampling, 1x1 output) feeds the soft-argmax
    "pose_net": (
        "v2v_net.encoder_decoder.skip_res1",
        "v2v_net.encoder_decoder.decoder_upsample1",
        "v2v_net.output_layer",
    ),
}


def _cast_inputs(module: nn.Module, args: tuple) -> tuple:
    dtype = next(module.parameters()).dtype
    return tuple(a.to(dtype) if isinstance(a, torch.Tensor) and a.is_floating_point() else a for a in args)


def mixed_bf16(module: nn.Module, stage: str) -> nn.Module:
    """A copy of ``module`` with bf16 weights except the stage's :data:`FP32_ISLANDS`.

    Every module that owns weights casts its input to its own weight dtype (a forward pre-hook),
    so activations change dtype exactly at the island borders; the stage output is whatever
    the last layer computes (fp32 where that layer is an island). The state-dict keys are those of
    ``module`` (no wrappers), and ``module`` itself is left untouched.
    """
    islands = FP32_ISLANDS.get(stage, ())
    out = copy.deepcopy(module)
    if "" in islands:
        return out.float()
    out.to(torch.bfloat16)
    for name in islands:
        out.get_submodule(name).float()
    for m in out.modules():
        if any(True for _ in m.parameters(recurse=False)):
            m.register_forward_pre_hook(_cast_inputs)
    return out


# ---- deviation between two runs ------------------------------------------------------------------
def joint_deviations_mm(
    ref_candidates: np.ndarray, test_candidates: np.ndarray, match_mm: float = 300.0
) -> tuple[np.ndarray, int]:
    """Per-joint distances (mm) between the valid people of two runs of one frame.

    Each reference person is matched to the test person with the nearest mean joint (within
    ``match_mm``). Args are (K,J,5) candidates (x, y, z mm, flag, score).
    Returns:
        (distances (M*J,), unmatched): people of either run without a partner count as unmatched.
    """
    ref = ref_candidates[ref_candidates[:, 0, 3] >= 0, :, :3]
    test = test_candidates[test_candidates[:, 0, 3] >= 0, :, :3]
    out, used = [], set()
    for person in ref:
        if len(test) == 0:
            break
        mean = np.linalg.norm(test - person[None], axis=-1).mean(-1)
        k = int(mean.argmin())
        if mean[k] <= match_mm and k not in used:
            used.add(k)
            out.append(np.linalg.norm(test[k] - person, axis=-1))
    unmatched = (len(ref) - len(used)) + (len(test) - len(used))
    return (np.concatenate(out) if out else np.zeros(0)), unmatched


@dataclass
class DeviationSummary:
    """Joint deviation of one precision against fp32 over a set of frames."""

    frames: int
    joints: int
    unmatched_people: int
    p50_mm: float
    p99_mm: float
    max_mm: float

    @classmethod
    def of(cls, distances: Iterable[np.ndarray], unmatched: int, frames: int) -> "DeviationSummary":
        d = np.concatenate([np.asarray(x, float).reshape(-1) for x in distances] or [np.zeros(0)])
        if d.size == 0:
            return cls(frames, 0, unmatched, float("nan"), float("nan"), float("nan"))
        return cls(
            frames, int(d.size), unmatched, float(np.percentile(d, 50)), float(np.percentile(d, 99)), float(d.max())
        )

    @property
    def passed(self) -> bool:
        """Within the bar: p99 <= :data:`BF16_BAR_MM`, every person matched, some joints compared."""
        return self.joints > 0 and self.unmatched_people == 0 and self.p99_mm <= BF16_BAR_MM

    def to_meta(self, inputs: str) -> dict:
        """The release-file record (``meta['bf16_check']``, stored as JSON)."""
        return {
            "policy": MIXED_POLICY,
            "inputs": inputs,
            "frames": self.frames,
            "joints": self.joints,
            "unmatched_people": self.unmatched_people,
            "p50_mm": round(self.p50_mm, 4),
            "p99_mm": round(self.p99_mm, 4),
            "max_mm": round(self.max_mm, 4),
            "bar_mm": BF16_BAR_MM,
            "passed": self.passed,
        }


def compare_runs(ref: Sequence[np.ndarray], test: Sequence[np.ndarray]) -> DeviationSummary:
    """Summary over frames of (K,J,5) candidates of a reference run and a test run."""
    dists, unmatched = [], 0
    for a, b in zip(ref, test):
        d, u = joint_deviations_mm(np.asarray(a), np.asarray(b))
        dists.append(d)
        unmatched += u
    return DeviationSummary.of(dists, unmatched, len(ref))


# ---- choice --------------------------------------------------------------------------------------
def parse_bf16_check(meta: Mapping | None) -> dict | None:
    """``meta['bf16_check']`` of a model file (a dict or its JSON), or None."""
    raw = (meta or {}).get("bf16_check")
    if raw is None:
        return None
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except json.JSONDecodeError:
            return None
    return dict(raw) if isinstance(raw, Mapping) else None


def choose_precision(native_bf16: bool, cpu_detail: str, bf16_check: Mapping | None) -> tuple[str, str]:
    """``auto`` on a CPU: (precision, reason). bf16 only with native bf16 and a passed check."""
    if not native_bf16:
        return "fp32", f"fp32: the CPU has no native bf16 ({cpu_detail}); emulated bf16 is slower"
    if bf16_check is None:
        return "fp32", f"fp32: CPU has native bf16 ({cpu_detail}) but the model carries no bf16 deviation check"
    p99 = bf16_check.get("p99_mm")
    ok = (
        bf16_check.get("policy") == MIXED_POLICY
        and bool(bf16_check.get("passed"))
        and isinstance(p99, (int, float))
        and p99 <= BF16_BAR_MM
    )
    if not ok:
        return "fp32", (
            f"fp32: CPU has native bf16 ({cpu_detail}) but the model's bf16 check "
            f"(policy {bf16_check.get('policy')}, p99 {p99} mm, bar {BF16_BAR_MM} mm) did not pass"
        )
    return "bf16", f"bf16 (mixed): CPU has native bf16 ({cpu_detail}) and the model's bf16 check passed (p99 {p99} mm)"
