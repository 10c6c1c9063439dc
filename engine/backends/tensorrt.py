"""TensorRT stages through torch-tensorrt (imported lazily), static shapes, on-disk engine cache.

Cache key = weights hash, stage name, input shape, precision, torch/torch-tensorrt/TensorRT
versions and GPU name (DESIGN.md §5), so a changed model, shape or machine never reuses a stale
engine.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

import torch
from torch import nn

from engine.errors import BackendUnavailableError

log = logging.getLogger(__name__)


def _versions() -> str:
    import torch_tensorrt

    try:
        import tensorrt

        trt = tensorrt.__version__
    except Exception:  # noqa: BLE001 - the version is only part of a cache key
        trt = "unknown"
    return f"torch{torch.__version__}-tt{torch_tensorrt.__version__}-trt{trt}"


def engine_cache_key(
    weights_hash: str, stage: str, shape: tuple[int, ...], precision: str, versions: str, gpu_name: str
) -> str:
    """Deterministic file stem for a compiled stage."""
    text = "|".join([weights_hash, stage, "x".join(map(str, shape)), precision, versions, gpu_name])
    return f"{stage}-{hashlib.sha256(text.encode()).hexdigest()[:20]}"


class TensorRTStage:
    """One network compiled by torch-tensorrt for a static input shape.

    Args:
        module: the network.
        stage: stage name (``backbone``, ``root_net``, ``pose_net``).
        input_shape: the static input shape (pose net: padded to max people).
        device: a CUDA device.
        precision: ``fp32`` | ``fp16`` | ``bf16``.
        weights_hash: hash of the module's weights.
        cache_dir: where serialised engines are kept.
    """

    def __init__(
        self,
        module: nn.Module,
        stage: str,
        input_shape: tuple[int, ...],
        device: torch.device,
        precision: str,
        weights_hash: str,
        cache_dir: Path,
    ):
        try:
            import torch_tensorrt
        except ImportError as exc:
            raise BackendUnavailableError(
                f"tensorrt stage '{stage}': torch_tensorrt cannot be imported ({exc}); "
                "pip install -e '.[tensorrt]' with a CUDA build of torch, or use --backend eager"
            ) from None
        self.stage = stage
        self.input_shape = tuple(int(s) for s in input_shape)
        self.device = device
        dtype = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[precision]
        gpu = torch.cuda.get_device_name(device)
        key = engine_cache_key(weights_hash, stage, self.input_shape, precision, _versions(), gpu)
        cache_dir = Path(cache_dir)
        cache_dir.mkdir(parents=True, exist_ok=True)
        path = cache_dir / f"{key}.ep"
        example = torch.zeros(self.input_shape, dtype=torch.float32, device=device)
        if path.is_file():
            log.info("tensorrt %s: loading cached engine %s", stage, path)
            self.fn = torch_tensorrt.load(str(path)).module()
        else:
            log.info("tensorrt %s: compiling for %s %s (cached at %s)", stage, self.input_shape, precision, path)
            module = module.to(device).eval()
            with torch.no_grad():
                compiled = torch_tensorrt.compile(
                    module,
                    ir="dynamo",
                    inputs=[torch_tensorrt.Input(self.input_shape, dtype=torch.float32)],
                    enabled_precisions={dtype},
                    truncate_double=True,
                )
                torch_tensorrt.save(compiled, str(path), inputs=[example])
            self.fn = compiled
        self.cache_path = path

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if tuple(x.shape) != self.input_shape:
            raise ValueError(f"tensorrt stage '{self.stage}' was built for {self.input_shape}, got {tuple(x.shape)}")
        with torch.no_grad():
            return self.fn(x.to(self.device, torch.float32).contiguous()).float()
