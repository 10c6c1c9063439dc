"""Fixtures for capture tests: short ipc endpoints and tiny media rigs on disk."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import cv2
import numpy as np
import pytest


@pytest.fixture
def ipc_endpoint():
    """A fresh ``ipc://`` endpoint under /tmp (ipc paths must stay short)."""
    d = Path(tempfile.mkdtemp(prefix="sp3d-", dir="/tmp"))
    yield f"ipc://{d}/bus"
    shutil.rmtree(d, ignore_errors=True)


def pattern_image(k: int, w: int = 64, h: int = 48) -> np.ndarray:
    """Frame ``k``: flat green level 20*k (survives JPEG), a red corner block."""
    img = np.zeros((h, w, 3), np.uint8)
    img[:, :, 1] = 20 * k % 256
    img[: h // 2, : w // 2, 2] = 200
    return img


def green_level(img: np.ndarray) -> int:
    return int(round(float(img[:, :, 1].mean()) / 20))


@pytest.fixture
def image_rig(tmp_path, toy_rig):
    """A rig YAML whose 4 toy cameras read image folders (6 frames each at 12 fps, 64x48)."""
    from calib.camera import CameraRig
    from calib.io import scale_intrinsics
    from calib.rig_config import SourceConfig, save_rig

    sources = []
    for cam in toy_rig.names:
        folder = tmp_path / "frames" / cam
        folder.mkdir(parents=True)
        for k in range(6):
            cv2.imwrite(str(folder / f"{k:04d}.png"), pattern_image(k))
        sources.append(SourceConfig(kind="images", uri=str(folder), fps=12.0, realtime=False))
    small = CameraRig(tuple(scale_intrinsics(c, 64, 48) for c in toy_rig))
    return save_rig(small, tmp_path / "rig.yaml", name="toy", sources=sources)


@pytest.fixture
def video_rig(tmp_path, toy_rig):
    """A rig YAML whose 4 toy cameras read MJPG video files (6 frames each at 12 fps, 64x48)."""
    from calib.camera import CameraRig
    from calib.io import scale_intrinsics
    from calib.rig_config import SourceConfig, save_rig

    sources = []
    for cam in toy_rig.names:
        path = tmp_path / f"{cam}.avi"
        writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 12.0, (64, 48))
        for k in range(6):
            writer.write(pattern_image(k))
        writer.release()
        sources.append(SourceConfig(kind="file", uri=str(path), fps=12.0, realtime=False))
    small = CameraRig(tuple(scale_intrinsics(c, 64, 48) for c in toy_rig))
    return save_rig(small, tmp_path / "rig.yaml", name="toy", sources=sources)
