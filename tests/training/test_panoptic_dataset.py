"""Panoptic parser: real GT samples, frame sampling and the sequence index."""

from __future__ import annotations

import json

import numpy as np
import pytest

from calib.projection import project_points
from training.datasets.panoptic import (
    HD_CAMERAS,
    PanopticSequence,
    index_frames,
    read_body3d_scene,
)
from training.errors import DatasetError


def _body(body_id, joints_cm_conf):
    return {"id": body_id, "joints19": np.asarray(joints_cm_conf, float).ravel().tolist()}


def _write_scene(path, bodies):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"version": 0.7, "bodies": bodies}))


@pytest.mark.data
def test_real_samples_match_reference_conversion(shared_data):
    ref = np.load(shared_data / "panoptic_body3d_samples" / "samples.npz")
    root = shared_data / "panoptic_body3d_samples"
    frames = index_frames(root, "train", sequences=["160906_band1", "160906_band2"], interval=1)
    assert [(f.sequence, f.frame) for f in frames] == [
        ("160906_band1", 168),
        ("160906_band1", 169),
        ("160906_band2", 139),
        ("160906_band2", 140),
    ]
    got = {(f.sequence, f.frame, b.id): b for f in frames for b in f.bodies}
    assert len(got) == 12
    for i in range(12):
        body = got[(str(ref["sequence"][i]), int(ref["frame"][i]), int(ref["body_id"][i]))]
        np.testing.assert_allclose(body.joints_mm, ref["joints15_voxelpose_mm"][i], atol=1e-9)
        np.testing.assert_array_equal(body.visible, ref["vis15"][i])


@pytest.mark.data
def test_real_samples_project_onto_reference_pixels(shared_data):
    ref = np.load(shared_data / "panoptic_body3d_samples" / "samples.npz")
    seq = PanopticSequence(shared_data / "panoptic_body3d_samples" / "160906_band1")
    rig = seq.load_rig()
    assert rig.names == list(HD_CAMERAS) == [str(n) for n in ref["camera_names"]]
    bodies = read_body3d_scene(seq.body_files()[0])
    i = int(
        np.flatnonzero((ref["sequence"] == "160906_band1") & (ref["frame"] == 168) & (ref["body_id"] == bodies[0].id))[
            0
        ]
    )
    for v, cam in enumerate(rig):
        np.testing.assert_allclose(
            project_points(bodies[0].joints_mm, cam), ref["uv_hd_1920x1080"][i, v, :15], atol=1e-4
        )


def test_root_invisible_bodies_dropped_and_visibility_threshold(tmp_path):
    joints = np.zeros((19, 4))
    joints[:, :3] = np.arange(57).reshape(19, 3)
    joints[:, 3] = 0.5
    joints[4, 3] = 0.1  # exactly at the threshold: invisible (conf > 0.1 required)
    hidden_root = joints.copy()
    hidden_root[2, 3] = -1.0
    path = tmp_path / "body3DScene_00000001.json"
    _write_scene(path, [_body(7, joints), _body(8, hidden_root)])
    bodies = read_body3d_scene(path)
    assert [b.id for b in bodies] == [7]
    assert bodies[0].visible.tolist() == [True] * 4 + [False] + [True] * 10
    # (x, y, z) cm, y down -> (x, z, -y) mm, z up
    np.testing.assert_allclose(bodies[0].joints_mm[1], [30.0, 50.0, -40.0])


def test_malformed_body_file_names_file(tmp_path):
    path = tmp_path / "body3DScene_00000001.json"
    path.write_text(json.dumps({"bodies": [{"id": 0}]}))
    with pytest.raises(DatasetError, match="body3DScene_00000001.json.*joints19"):
        read_body3d_scene(path)


def test_interval_sampling_skips_empty_frames(tmp_path):
    seq = tmp_path / "160906_ian5"
    joints = np.ones((19, 4))
    for frame in range(10):
        bodies = [] if frame == 3 else [_body(0, joints)]
        _write_scene(seq / "hdPose3d_stage1_coco19" / f"body3DScene_{frame:08d}.json", bodies)
    frames = index_frames(tmp_path, "validation", sequences=["160906_ian5"], interval=3)
    assert [f.frame for f in frames] == [0, 6, 9]  # files 0,3,6,9; 3 has no body
    s = PanopticSequence(seq)
    assert s.image_path("00_03", 6).as_posix().endswith("160906_ian5/hdImgs/00_03/00_03_00000006.jpg")
    assert s.video_path("00_23").as_posix().endswith("hdVideos/hd_00_23.mp4")


def test_missing_sequence_is_an_error_unless_allowed(tmp_path):
    with pytest.raises(DatasetError, match="160906_pizza1"):
        index_frames(tmp_path, "validation")
    assert index_frames(tmp_path, "validation", require_all=False) == []


def test_read_image_from_jpg_or_video(tmp_path):
    import cv2

    (tmp_path / "160906_band1").mkdir()
    seq = PanopticSequence(tmp_path / "160906_band1")
    frames = [np.full((48, 64, 3), (10 * i, 100, 200 - 10 * i), np.uint8) for i in range(6)]  # RGB
    vid = seq.video_path("00_06")
    vid.parent.mkdir(parents=True)
    writer = cv2.VideoWriter(str(vid), cv2.VideoWriter_fourcc(*"mp4v"), 30.0, (64, 48))
    for f in frames:
        writer.write(cv2.cvtColor(f, cv2.COLOR_RGB2BGR))
    writer.release()
    for n in (0, 1, 4, 2):  # sequential reads and seeks
        img = seq.read_image("00_06", n)
        assert img.shape == (48, 64, 3) and np.abs(img.astype(int) - frames[n]).mean() < 4
    jpg = seq.image_path("00_03", 7)
    jpg.parent.mkdir(parents=True)
    cv2.imwrite(str(jpg), cv2.cvtColor(frames[3], cv2.COLOR_RGB2BGR))
    assert np.abs(seq.read_image("00_03", 7).astype(int) - frames[3]).mean() < 4
    with pytest.raises(DatasetError, match="hd_00_12.mp4"):
        seq.read_image("00_12", 0)
    seq.close()
