"""Shared fixtures and resource-marker handling.

Tests marked ``gpu``, ``tensorrt``, ``display`` or ``data`` are *skipped* (with the reason shown
by ``-ra``) when the resource is missing; they never pass vacuously.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from calib.common.paths import REPO_ROOT

SHARED_DATA = Path(os.environ.get("SELFPOSE3D_SHARED_DATA", REPO_ROOT.parent / "shared" / "data"))


def _cuda_available() -> bool:
    if importlib.util.find_spec("torch") is None:
        return False
    import torch

    return torch.cuda.is_available()


def _tensorrt_available() -> bool:
    return _cuda_available() and importlib.util.find_spec("torch_tensorrt") is not None


def _display_available() -> bool:
    return bool(os.environ.get("DISPLAY")) or shutil.which("Xvfb") is not None


def pytest_collection_modifyitems(config, items):
    checks = {
        "gpu": (_cuda_available, "no CUDA GPU on this machine"),
        "tensorrt": (_tensorrt_available, "torch_tensorrt and a CUDA GPU are not both available"),
        "display": (_display_available, "no DISPLAY and no Xvfb installed"),
        "data": (SHARED_DATA.is_dir, f"real data folder {SHARED_DATA} not found"),
    }
    cache: dict[str, bool] = {}
    for item in items:
        for marker, (check, reason) in checks.items():
            if marker in item.keywords:
                if marker not in cache:
                    cache[marker] = bool(check())
                if not cache[marker]:
                    item.add_marker(pytest.mark.skip(reason=f"{marker}: {reason}"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Path to ../shared/data (tests using it carry the ``data`` marker)."""
    return SHARED_DATA


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


@pytest.fixture
def toy_rig():
    """Four distorted cameras on a ring looking at the origin of a 4 m room (mm, z up)."""
    from calib.camera import Camera, CameraRig

    cams = []
    for i, yaw in enumerate(np.deg2rad([0.0, 90.0, 180.0, 270.0])):
        center = np.array([4000.0 * np.cos(yaw), 4000.0 * np.sin(yaw), 1800.0])
        target = np.array([0.0, 0.0, 900.0])
        z = target - center
        z /= np.linalg.norm(z)
        x = np.cross(z, [0.0, 0.0, 1.0])
        x /= np.linalg.norm(x)
        y = np.cross(z, x)
        R = np.stack([x, y, z])
        K = np.array([[900.0, 0.0, 640.0], [0.0, 900.0, 360.0], [0.0, 0.0, 1.0]])
        dist = np.array([-0.2, 0.08, 0.001, -0.0015, -0.01])
        cams.append(Camera.from_center(f"cam{i}", 1280, 720, K, dist, R, center, source="toy_rig"))
    return CameraRig(tuple(cams))
