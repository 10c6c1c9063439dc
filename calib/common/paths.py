"""Folders of the repository checkout, computed once (every package imports them from here)."""

from __future__ import annotations

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]  # calib/common/paths.py -> the checkout
CONFIGS_DIR = REPO_ROOT / "configs"
MODELS_DIR = REPO_ROOT / "models"
DEFAULT_MODEL = MODELS_DIR / "light_synthetic.pt"  # the committed light model
SHARED_DATA_DIR = REPO_ROOT.parent / "shared" / "data"  # real data beside the checkout (may be absent)
