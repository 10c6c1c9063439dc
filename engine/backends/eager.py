"""Eager torch stages: inference_mode, channels-last, mixed bf16 or autocast, optional torch.compile."""

from __future__ import annotations

import contextlib
import logging

import torch
from torch import nn

log = logging.getLogger(__name__)


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

    def __init__(self, module: nn.Module, input_ndim: int, device: torch.device, dtype: torch.dtype,
                 channels_last: bool = True, compile: bool = False, stage: str = ""):
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
        with torch.inference_mode(), self._autocast():
            x = x.to(self.device).contiguous(memory_format=self.memory_format)
            return self.fn(x).float()
