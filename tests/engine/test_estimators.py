"""The bundled 2D estimator: accuracy on real photos, geometry, registry, bad model files."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from engine.errors import CheckpointError
from engine.estimators import Estimator, EstimatorConfig, People2D, build_estimator, register_estimator
from engine.estimators.movenet import COCO17_FLIP, MULTIPOSE_FILE, Letterbox
from training.pck import pck_on_folder

HERE = Path(__file__).parent


@pytest.fixture(scope="module")
def movenet_384():
    return build_estimator(EstimatorConfig(input_long_side_px=384, threads=1))


@pytest.mark.data
def test_pck_on_real_photos_meets_the_goal(shared_data, movenet_384):
    """PCK@0.2 on 12 real photos (30 people, COCO/OCHuman/CrowdPose/AIC): the 0.90 goal at 384 px."""
    result = pck_on_folder(
        shared_data / "real_2d_samples", lambda p: movenet_384.detect([cv2.imread(str(p))])[0].keypoints
    )
    assert result.people == 30
    assert result.pck >= 0.90, result.to_dict()
    assert result.missed_people == 0


@pytest.mark.data
def test_pck_at_live_size_meets_the_requirement(shared_data):
    """The live default (256 px) keeps the 0.85 requirement only with flip; plain 256 is measured ~0.85."""
    est = build_estimator(EstimatorConfig(input_long_side_px=256, threads=1, flip=True))
    result = pck_on_folder(shared_data / "real_2d_samples", lambda p: est.detect([cv2.imread(str(p))])[0].keypoints)
    assert result.pck >= 0.88, result.to_dict()


def test_letterbox_portrait_geometry_round_trip():
    box = Letterbox.fit((1088, 1920), 256)
    assert box.content_wh == (145, 256) and box.input_wh == (160, 256)
    # a point at original pixel (x, y) → its normalised (y, x) in the padded input → back
    xy = np.array([[0.0, 0.0], [1087.0, 1919.0], [500.25, 1000.5]])
    yx_norm = np.stack(
        [(xy[:, 1] + 0.5) * box.scale / box.input_wh[1], (xy[:, 0] + 0.5) * box.scale / box.input_wh[0]], 1
    )
    np.testing.assert_allclose(box.to_original(yx_norm), xy, atol=1e-9)


def test_flip_map_is_an_involution_that_swaps_sides():
    assert (COCO17_FLIP[COCO17_FLIP] == np.arange(17)).all()
    assert COCO17_FLIP[5] == 6 and COCO17_FLIP[0] == 0  # l_shoulder <-> r_shoulder, nose stays


def test_no_person_gives_an_empty_list(movenet_384):
    people = movenet_384.detect(np.zeros((2, 360, 640, 3), np.uint8))
    assert len(people) == 2 and all(p.num_people == 0 and p.keypoints.shape == (0, 17, 3) for p in people)
    assert people[0].to_panoptic15().shape == (0, 15, 3)


@pytest.mark.data
def test_portrait_frame_people_in_original_pixels(shared_data, movenet_384):
    """A real 1088x1920 Pose2Sim frame: people found, keypoints inside the frame, mapped to Panoptic-15."""
    cap = cv2.VideoCapture(str(shared_data / "pose2sim_demos/Demo_MultiPerson/videos/cam01.mp4"))
    ok, frame = cap.read()
    cap.release()
    assert ok and frame.shape == (1920, 1088, 3)
    people = movenet_384.detect([frame])[0]
    assert people.num_people >= 2
    main = people.keypoints[:2]
    seen = main[:, :, 2] > 0.3
    assert seen.sum() > 20
    assert (main[seen][:, 0] >= 0).all() and (main[seen][:, 0] < 1088).all() and (main[seen][:, 1] < 1920).all()
    p15 = people.to_panoptic15()
    assert p15.shape == (people.num_people, 15, 3)


def test_missing_truncated_and_foreign_model_files_are_named(tmp_path):
    with pytest.raises(CheckpointError, match="missing.*build_movenet_onnx"):
        build_estimator(EstimatorConfig(model_path=str(tmp_path / "nope.onnx")))
    cut = tmp_path / "cut.onnx"
    cut.write_bytes(MULTIPOSE_FILE.read_bytes()[:4000])
    with pytest.raises(CheckpointError, match="cut.onnx.*truncated"):
        build_estimator(EstimatorConfig(model_path=str(cut)))
    with pytest.raises(CheckpointError, match="identity_1x4.onnx' is not a MoveNet MultiPose model"):
        build_estimator(EstimatorConfig(model_path=str(HERE / "data" / "identity_1x4.onnx")))


def test_config_names_bad_fields():
    from calib.configkit import ConfigError

    with pytest.raises(ConfigError, match="estimator.input_long_side_px"):
        EstimatorConfig(input_long_side_px=300)
    with pytest.raises(ConfigError, match="unknown estimator 'openpifpaf'"):
        EstimatorConfig(name="openpifpaf")


class _StubEstimator(Estimator):
    """One fixed person per image, at the image centre."""

    def detect(self, images, bgr=True):
        out = []
        for im in images:
            h, w = np.asarray(im).shape[:2]
            kp = np.zeros((1, 17, 3), np.float32)
            kp[0, :, 0], kp[0, :, 1], kp[0, :, 2] = w / 2, h / 2, 0.9
            out.append(People2D(kp, np.array([0.77], np.float32)))
        return out


def test_a_second_estimator_joins_by_config_without_touching_callers(tmp_path):
    """Registered by name, the stub runs through the unchanged detect2d command."""
    from app.commands import detect2d

    register_estimator("stub")(lambda config: _StubEstimator())
    cv2.imwrite(str(tmp_path / "a.png"), np.zeros((40, 60, 3), np.uint8))
    out = tmp_path / "r.json"
    parser = argparse.ArgumentParser()
    detect2d.add_arguments(parser)
    assert detect2d.run(parser.parse_args(["--images", str(tmp_path), "--out", str(out), "--estimator", "stub"])) == 0
    rows = json.loads(out.read_text())
    assert rows == [{"file_name": "a.png", "keypoints": [30.0, 20.0, 0.9] * 17, "score": 0.77}]


def test_detect2d_names_and_counts_undecodable_images(tmp_path, capsys):
    from app.commands import detect2d

    good = np.full((120, 160, 3), 90, np.uint8)
    cv2.imwrite(str(tmp_path / "ok.jpg"), good)
    data = (tmp_path / "ok.jpg").read_bytes()
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "cut.jpg").write_bytes(data[: len(data) // 2])
    (tmp_path / "junk.png").write_bytes(b"not an image")
    out = tmp_path / "r.json"
    parser = argparse.ArgumentParser()
    detect2d.add_arguments(parser)
    assert detect2d.run(parser.parse_args(["--images", str(tmp_path), "--out", str(out), "--input-size", "256"])) == 0
    captured = capsys.readouterr()
    assert "sub/cut.jpg: is a truncated JPEG" in captured.err  # named with the reason, by the shared decoder
    assert "junk.png: cannot be decoded as an image" in captured.err
    assert "1 images, 0 people; 2 undecodable" in captured.out
    assert json.loads(out.read_text()) == []
