"""Device, precision and backend resolution (DESIGN.md §5), detected without raising.

``auto`` picks TensorRT only when CUDA and torch_tensorrt are both usable, else eager, and logs
why. Precision ``auto`` picks bf16 only on a CPU with native bf16 and a model whose release-time
deviation check passed (:func:`engine.precision.choose_precision`), else fp32, and logs both. An explicitly requested backend, device or precision that cannot run raises
:class:`BackendUnavailableError` with the fix; there is no silent fallback.
"""

from __future__ import annotations

import importlib.util
import logging
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import torch

from engine.errors import BackendUnavailableError

log = logging.getLogger(__name__)

BACKENDS = ("auto", "eager", "tensorrt")
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
BF16_FLAGS = ("amx_bf16", "avx512_bf16")  # native bf16 compute (oneDNN); without them bf16 is emulated
REPORTED_FLAGS = (
    "amx_bf16",
    "amx_tile",
    "amx_int8",
    "avx512_bf16",
    "avx512f",
    "avx512_vnni",
    "avx512_fp16",
    "avx2",
    "fma",
)
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


@lru_cache(maxsize=1)
def cpu_flags() -> frozenset[str]:
    """CPU feature flags from /proc/cpuinfo (empty where unavailable)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return frozenset()
    for line in text.splitlines():
        if line.startswith("flags"):
            return frozenset(line.split(":", 1)[1].split())
    return frozenset()


@lru_cache(maxsize=1)
def cpu_model_name() -> str:
    """``model name`` of /proc/cpuinfo (with the family/model numbers), or the platform's processor."""
    import platform

    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor() or platform.machine()
    fields = {}
    for line in text.splitlines():
        if ":" in line:
            k, v = line.split(":", 1)
            fields.setdefault(k.strip(), v.strip())
        elif fields:
            break  # first processor only
    name = fields.get("model name", platform.processor() or platform.machine())
    return f"{name} (family {fields.get('cpu family', '?')}, model {fields.get('model', '?')})"


def cpu_info() -> dict:
    """CPU model, core count and the bf16/AMX/AVX-512 flags (every benchmark JSON carries this)."""
    import os

    flags = cpu_flags()
    return {
        "model": cpu_model_name(),
        "logical_cpus": os.cpu_count(),
        "flags": {f: f in flags for f in REPORTED_FLAGS},
        "native_bf16": cpu_has_native_bf16(flags),
        "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(),
    }


def cpu_has_amx(flags: frozenset[str] | None = None) -> bool:
    """True if the CPU has AMX bf16 tiles (fast bf16 matmul/conv through oneDNN)."""
    return "amx_bf16" in (cpu_flags() if flags is None else flags)


def cpu_has_native_bf16(flags: frozenset[str] | None = None) -> bool:
    """True if the CPU computes bf16 natively (AMX or AVX512-BF16); otherwise bf16 is emulated."""
    return bool(set(BF16_FLAGS) & (cpu_flags() if flags is None else flags))


def bf16_flags_detail(flags: frozenset[str] | None = None) -> str:
    """What the bf16 detection saw, for the log: e.g. ``amx_bf16 yes, avx512_bf16 yes``."""
    flags = cpu_flags() if flags is None else flags
    if not flags:
        return "no /proc/cpuinfo flags"
    return ", ".join(f"{f} {'yes' if f in flags else 'no'}" for f in BF16_FLAGS)


def tensorrt_status() -> tuple[bool, str]:
    """(usable, reason) for the TensorRT backend; never raises."""
    if not torch.cuda.is_available():
        return False, f"no CUDA device (torch {torch.__version__}, cuda build: {torch.version.cuda})"
    if importlib.util.find_spec("torch_tensorrt") is None:
        return False, "torch_tensorrt is not installed (pip install -e '.[tensorrt]' with a CUDA torch)"
    try:
        import torch_tensorrt  # noqa: F401
    except Exception as exc:  # noqa: BLE001 - a broken install must not crash detection
        return False, f"torch_tensorrt fails to import: {type(exc).__name__}: {exc}"
    want = ".".join(torch.__version__.split(".")[:2])
    have = ".".join(str(getattr(torch_tensorrt, "__version__", "0.0")).split(".")[:2])
    if want != have:
        return False, f"torch_tensorrt {have} does not match torch {want}; install torch-tensorrt=={want}.*"
    return True, "CUDA and torch_tensorrt are usable"


def resolve_device(device: str) -> torch.device:
    """``auto`` -> cuda:0 when available else cpu; explicit CUDA without a GPU is an error."""
    if device == "auto":
        return torch.device("cuda:0" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except RuntimeError:
        raise BackendUnavailableError(f"device '{device}' is not valid; use auto, cpu or cuda:N") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise BackendUnavailableError(
                f"device '{device}' requested but CUDA is not available (torch {torch.__version__}); "
                "use --device cpu or install a CUDA build of torch"
            )
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise BackendUnavailableError(
                f"device '{device}': only {torch.cuda.device_count()} CUDA device(s); use cuda:0.."
            )
    return dev


@dataclass(frozen=True)
class Resolved:
    """The backend/device/precision a runtime will use, and why."""

    backend: str
    device: torch.device
    precision: str
    reason: str

    @property
    def dtype(self) -> torch.dtype:
        return DTYPES[self.precision]


def resolve(
    backend: str = "auto",
    device: str = "auto",
    precision: str = "fp32",
    bf16_check: dict | None = None,
    flags: frozenset[str] | None = None,
) -> Resolved:
    """Resolve the user's choices; explicit impossible requests raise BackendUnavailableError.

    Args:
        bf16_check: the model file's release-time bf16 deviation record (``auto`` reads it).
        flags: CPU flags (default: this machine's /proc/cpuinfo; tests pass fakes).
    """
    if backend not in BACKENDS:
        raise BackendUnavailableError(f"backend '{backend}' unknown; choose one of {list(BACKENDS)}")
    if precision not in PRECISIONS:
        raise BackendUnavailableError(f"precision '{precision}' unknown; choose one of {list(PRECISIONS)}")
    dev = resolve_device(device)
    trt_ok, trt_reason = tensorrt_status()
    if backend == "tensorrt":
        if not trt_ok:
            raise BackendUnavailableError(
                f"backend 'tensorrt' requested but unavailable: {trt_reason}; use --backend eager "
                "(or auto), or run on a machine with an NVIDIA GPU and torch-tensorrt"
            )
        if dev.type != "cuda":
            raise BackendUnavailableError(
                f"backend 'tensorrt' needs a CUDA device, got '{device}'; use --device cuda:0 or auto"
            )
        reason = "requested"
    elif backend == "auto":
        if trt_ok and dev.type == "cuda":
            backend, reason = "tensorrt", trt_reason
        else:
            backend = "eager"
            reason = f"eager because TensorRT is unusable: {trt_reason}" if not trt_ok else "eager on CPU"
        log.info("backend auto -> %s (%s)", backend, reason)
    else:
        reason = "requested"
    if precision == "auto":
        if dev.type == "cpu":
            from engine.precision import choose_precision

            precision, why = choose_precision(cpu_has_native_bf16(flags), bf16_flags_detail(flags), bf16_check)
        else:
            precision, why = "fp32", f"fp32 on {dev} (fp16/bf16 there only on request)"
        log.info("precision auto -> %s", why)
        reason = f"{reason}; {why}"
    if dev.type == "cpu" and precision == "fp16":
        raise BackendUnavailableError("precision 'fp16' is not supported on CPU; use fp32 or bf16 (with AMX)")
    if dev.type == "cpu" and precision == "bf16" and not cpu_has_native_bf16(flags):
        log.warning("precision bf16 on a CPU without AMX/AVX512-BF16: bf16 is emulated and slower than fp32")
    return Resolved(backend, dev, precision, reason)
