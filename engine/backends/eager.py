"""Eager torch stages: inference_mode, channels-last, mixed bf16 or autocast, optional torch.compile."""

from __future__ import annotations

import contextlib
import logging

import torch
from torch import nn

log = logging.getLogger(__name__)

_TINY = torch.finfo(torch.float32).tiny  # smallest normal float32; below it: denormal


def memory_format_for(ndim: int) -> torch.memory_format:
    """channels_last for 4-D tensors, channels_last_3d for 5-D."""
    return torch.channels_last_3d if ndim == 5 else torch.channels_last


class EagerStage:
    """One network run eagerly (or through ``torch.compile``) on a device.

    Args:
        module: the network (moved to ``device``, eval mode; for bf16 a mixed copy is made).
        input_ndim: 4 for images, 5 for volumes (selects the channels-last layout).
        device: compute device.
        dtype: float32, bfloat16 (mixed: bf16 weights except the stage's fp32 islands,
            :func:`engine.precision.mixed_bf16`) or float16 (autocast).
        channels_last: use channels-last memory (needed for fast bf16 on CPU).
        compile: wrap with ``torch.compile`` (inductor, weights frozen).
        stage: ``backbone`` | ``root_net`` | ``pose_net`` (selects the fp32 islands of bf16);
            any other name runs the whole module in bf16.
    """

    def __init__(
        self,
        module: nn.Module,
        input_ndim: int,
        device: torch.device,
        dtype: torch.dtype,
        channels_last: bool = True,
        compile: bool = False,
        stage: str = "",
    ):
        self.device = device
        self.dtype = dtype
        self.memory_format = memory_format_for(input_ndim) if channels_last else torch.contiguous_format
        if dtype == torch.bfloat16:
            from engine.precision import mixed_bf16

            module = mixed_bf16(module, stage)
        self.module = module.to(device).eval()
        if channels_last:
            self.module = self.module.to(memory_format=self.memory_format)
        self.fn = self.module
        if compile:
            import torch._inductor.config as inductor_config

            inductor_config.freezing = True
            self.fn = torch.compile(self.module, dynamic=False)

    def _autocast(self):
        if self.dtype in (torch.float32, torch.bfloat16):  # bf16: the module casts at its fp32 islands
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.dtype)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if self.device.type == "cpu":
            # denormal floats (Gaussian tails of the heatmaps, ~1e-39) make x86 convolutions several
            # times slower: the released pose net ran 19 s -> 6.7 s for 3 people on 1 thread (Intel
            # Xeon model 167). Flushing them to zero changes no joint measurably. Set for the call
            # only: the flag lives in the calling thread's FPU state (the live worker calls from two
            # threads) and must not leak into the caller's other float work (numpy, tests).
            torch.set_flush_denormal(True)
        try:
            with torch.inference_mode(), self._autocast():
                x = x.to(self.device)
                if self.device.type == "cpu" and x.dtype == torch.float32:  # the other OpenMP threads keep
                    x = torch.where(x.abs() < _TINY, 0.0, x)  # denormals: none enter the network
                x = x.contiguous(memory_format=self.memory_format)
                return self.fn(x).float()
        finally:
            if self.device.type == "cpu":
                torch.set_flush_denormal(False)
