"""Pseudo labels from footage with the bundled estimator (``pseudo-labels --detector movenet``)."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from app.cli import main
from training.pseudo_labels.detect import generate, output_paths
from training.pseudo_labels.footage import open_footage
from training.pseudo_labels.store import PseudoLabelSet


@pytest.mark.data
def test_pose2sim_videos_give_two_people_per_view_and_resume(shared_data, tmp_path, capsys):
    videos = shared_data / "pose2sim_demos/Demo_MultiPerson/videos"
    out = tmp_path / "labels"
    args = [
        "pseudo-labels",
        "--detector",
        "movenet",
        str(videos),
        "--out",
        str(out),
        "--every",
        "40",
        "--input-size",
        "256",
        "--threads",
        "1",
    ]
    assert main(args) == 0
    paths = output_paths(out)
    summary = json.loads(paths["summary"].read_text())
    assert set(summary["cameras"]) == {"cam01", "cam02", "cam03", "cam04"}
    for cam, c in summary["cameras"].items():
        assert c["frames"] == 3 and c["undecodable"] == 0  # frames 0, 40, 80 of 100
        assert c["people_per_frame"] >= 2.0, (cam, c)  # the man and the second person, in every view
        assert c["mean_person_score"] > 0.3
    soft, hard = PseudoLabelSet.load(paths["soft"]), PseudoLabelSet.load(paths["hard"])
    assert len(soft) == len(hard) == 12 and soft.variant == "soft" and hard.variant == "hard"
    assert sum(int(e.labels.visible.sum()) for e in hard) < sum(int(e.labels.visible.sum()) for e in soft)
    entry = soft.get("Demo_MultiPerson", 40, "cam03")
    assert len(entry) >= 2 and entry.joints_px[:, :, 1].max() < 1920 and entry.joints_px[:, :, 0].max() < 1088
    assert "cam01: 3 frames, 0 undecodable" in capsys.readouterr().out

    calls = []
    footage = open_footage(videos)
    generate(footage, lambda im: calls.append(1) or (np.zeros((0, 17, 3)), np.zeros(0)), out, every=40)
    assert calls == []  # everything was in the cache: resumed, nothing re-run


def test_panoptic_tree_with_a_truncated_frame_is_named_and_counted(tmp_path):
    for cam in ("00_03", "00_06"):
        (tmp_path / "seq" / "hdImgs" / cam).mkdir(parents=True)
        for frame in (1, 2):
            cv2.imwrite(
                str(tmp_path / "seq" / "hdImgs" / cam / f"{cam}_{frame:08d}.jpg"), np.full((48, 64, 3), 99, np.uint8)
            )
    bad = tmp_path / "seq" / "hdImgs" / "00_06" / "00_06_00000002.jpg"
    bad.write_bytes(bad.read_bytes()[:200])
    footage = open_footage(tmp_path)
    assert footage.cameras == ["00_03", "00_06"]
    summary = generate(footage, lambda im: (np.zeros((0, 17, 3)), np.zeros(0)), tmp_path / "out")
    assert summary["images"] == 4 and summary["undecodable"] == 1
    assert summary["cameras"]["00_06"]["undecodable_frames"] == [str(bad)]
    soft = PseudoLabelSet.load(output_paths(tmp_path / "out")["soft"])
    assert sorted(e.key for e in soft) == [("seq", 1, "00_03"), ("seq", 1, "00_06"), ("seq", 2, "00_03")]


def test_a_crash_mid_run_resumes_from_the_cache(tmp_path):
    for frame in range(4):
        cv2.imwrite(str(tmp_path / f"img_{frame:04d}.png"), np.full((32, 32, 3), 50, np.uint8))
    footage = open_footage(tmp_path)
    seen = []

    def crashing(image):
        seen.append(1)
        if len(seen) == 3:
            raise KeyboardInterrupt
        return np.zeros((0, 17, 3)), np.zeros(0)

    with pytest.raises(KeyboardInterrupt):
        generate(footage, crashing, tmp_path / "o")
    with output_paths(tmp_path / "o")["detections"].open("a") as f:
        f.write('{"sequence": "cut')  # a line the crash cut in half
    again = []
    summary = generate(footage, lambda im: again.append(1) or (np.zeros((0, 17, 3)), np.zeros(0)), tmp_path / "o")
    assert len(again) == 2 and summary["images"] == 4


def test_not_footage_is_a_clear_error(tmp_path):
    from training.errors import DatasetError

    with pytest.raises(DatasetError, match="no footage found"):
        open_footage(tmp_path)
    with pytest.raises(DatasetError, match="no such file"):
        open_footage(tmp_path / "missing")


@pytest.mark.data
def test_a_rig_yaml_is_footage_too(shared_data):
    """`pseudo-labels --detector` on the Pose2Sim rig file: its four video sources, named by camera."""
    from calib.common.paths import CONFIGS_DIR

    footage = open_footage(CONFIGS_DIR / "rigs" / "pose2sim_multiperson.yaml")
    assert footage.cameras == ["cam01", "cam02", "cam03", "cam04"]
    frames = list(footage.frames(every=50, max_frames=2))
    assert [(f.camera, f.frame) for f in frames[:2]] == [("cam01", 0), ("cam01", 50)]
    assert len(frames) == 8 and all(f.image.shape == (1920, 1088, 3) for f in frames)
    assert {f.sequence for f in frames} == {"pose2sim_multiperson"}


def test_every_picks_the_same_frame_numbers_in_every_camera_whatever_the_folder_starts_at(tmp_path):
    """A folder numbered from 1 (and one camera missing a file) sampled with every=2 gives frames
    2, 4, 6 in every camera: the frame numbers the trainer's frame_interval keeps, as for videos."""
    for cam in ("cam1", "cam2"):
        (tmp_path / "seq" / cam).mkdir(parents=True)
        for frame in range(1, 7):
            if cam == "cam2" and frame == 1:
                continue  # a camera whose first file is missing must not shift its sampling
            cv2.imwrite(str(tmp_path / "seq" / cam / f"img_{frame:04d}.jpg"), np.full((24, 32, 3), 50, np.uint8))
    footage = open_footage(tmp_path / "seq")
    got = sorted((f.camera, f.frame) for f in footage.frames(every=2))
    assert got == [(c, k) for c in ("cam1", "cam2") for k in (2, 4, 6)]
