"""What every benchmark JSON records about where it ran: CPU model and its bf16/AMX/AVX-512 flags,
torch threads and version, load average and the UTC date (figures are only comparable on one CPU)."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from engine.device import cpu_info  # noqa: E402


def environment() -> dict:
    """CPU (model, flags, native bf16), threads, torch version, load average and date (UTC)."""
    return {
        "cpu": cpu_info(),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "loadavg": list(os.getloadavg()),
        "date_utc": time.strftime("%Y-%m-%d %H:%M", time.gmtime()),
    }
