"""Check and refine on the real CMU Panoptic rig with its real 3D ground-truth bodies (data marker).

The take is built from the GT: 12 bodies (4 frames x 3 people, each as its own frame), their
ground-truth 2D projections in the 5 HD cameras plus 1.5 px detector-like noise.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from calib.camera import CameraRig
from calib.check import PoseTake, check_rig, match_take
from calib.refine import refine_extrinsics

from tests.calib.test_tools_refine import bump

pytestmark = pytest.mark.data


@pytest.fixture
def panoptic(shared_data):
    from calib.io import load_calibration

    root = shared_data / "panoptic_body3d_samples"
    rig = load_calibration(root / "cameras_voxelpose.json", image_size=(1920, 1080))
    z = np.load(root / "samples.npz")
    assert list(z["camera_names"]) == rig.names
    joints = z["joints15_voxelpose_mm"]  # (12,15,3) world mm, z up
    uv = z["uv_hd_1920x1080"][:, :, :15]  # (12,5,15,2) GT projections
    vis = z["vis15"]  # (12,15)
    rng = np.random.default_rng(0)
    det = (uv + rng.normal(0, 1.5, uv.shape))[:, :, None]  # (F=12,V=5,N=1,J,2)
    scores = np.broadcast_to(vis[:, None, None, :], det.shape[:-1]).astype(float)
    return rig, PoseTake(joints[:, None], det, scores, tuple(rig.names), "panoptic GT")


def test_real_rig_passes_and_a_bumped_camera_is_flagged_and_refined(panoptic):
    rig, take = panoptic
    assert check_rig(rig, match_take(rig, take)).bumped == []
    bumped = CameraRig(tuple(bump(c, 1.0, (0.0, 30.0, 0.0)) if c.name == "00_12" else c for c in rig))
    corr = match_take(bumped, take)
    assert check_rig(bumped, corr).bumped == ["00_12"]
    result = refine_extrinsics(bumped, corr)
    est, true = result.rig["00_12"], rig["00_12"]
    assert np.rad2deg(Rotation.from_matrix(est.R @ true.R.T).magnitude()) < 0.15
    assert np.linalg.norm(est.center_mm - true.center_mm) < 20.0
    assert result.before_px["00_12"] > 3 * result.after_px["00_12"]
    assert check_rig(result.rig, corr).bumped == []
