"""Preprocessing: letter-box affine warp (OpenCV, as upstream), BGR->RGB, ImageNet normalisation."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from calib.camera import CalibrationError
from engine.preprocess import MEAN_RGB, STD_RGB, Preprocessor
from engine.project import get_affine, image_scale

from .conftest import make_rig


@pytest.mark.parametrize("bgr", [True, False])
def test_preprocess_matches_reference(bgr):
    rig = make_rig()
    images = np.random.default_rng(0).integers(0, 255, (5, 360, 640, 3), dtype=np.uint8)
    x = Preprocessor(rig, (128, 96), bgr=bgr)(images)
    assert x.shape == (5, 3, 96, 128) and x.is_contiguous(memory_format=torch.channels_last)
    A = get_affine((320, 180), image_scale(640, 360, (128, 96)), 0.0, (128, 96))
    warped = cv2.warpAffine(images[1], A, (128, 96), flags=cv2.INTER_LINEAR)
    rgb = warped[..., ::-1] if bgr else warped
    ref = (rgb / 255.0 - np.array(MEAN_RGB)) / np.array(STD_RGB)
    np.testing.assert_allclose(x[1].permute(1, 2, 0).numpy(), ref, atol=1e-5)
    # letter-box: 640x360 into 128x96 leaves black (normalised 0) rows at top and bottom
    assert np.allclose(x[0, :, 0].numpy(), (-np.array(MEAN_RGB) / np.array(STD_RGB))[:, None], atol=1e-5)


def test_wrong_image_size_names_camera():
    rig = make_rig()
    with pytest.raises(CalibrationError, match="cam0"):
        Preprocessor(rig, (128, 96))(np.zeros((5, 10, 10, 3), np.uint8))
