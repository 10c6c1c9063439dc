"""Pseudo labels: layout mapping, hard variant, our file format and the three importers."""

from __future__ import annotations

import json
import os
import pickle

import numpy as np
import pytest

from calib.common.skeleton import PANOPTIC15
from training.errors import DatasetError
from training.pseudo_labels.importers import import_coco, import_openpose, import_selfpose3d_pickle
from calib.common.keypoint_maps import BODY25, COCO17, COCO18
from training.pseudo_labels.mapping import Detection, convert_detection, harden, to_panoptic15
from training.pseudo_labels.store import LabelEntry, PseudoLabelSet, ViewLabels

P = PANOPTIC15.index


def _keypoints(names, rng, n=2):
    kp = np.zeros((n, len(names), 3))
    kp[..., :2] = rng.uniform(100, 900, size=(n, len(names), 2))
    kp[..., 2] = rng.uniform(0.3, 0.9, size=(n, len(names)))
    return kp


def test_coco17_mapping_by_name_and_derived_joints(rng):
    kp = _keypoints(COCO17, rng)
    kp[1, COCO17.index("r_shoulder"), 2] = 0.0  # person 1: only the left shoulder
    kp[1, COCO17.index("l_hip"), 2] = 0.0
    kp[1, COCO17.index("r_hip"), 2] = 0.0  # person 1: no hip at all
    lab = to_panoptic15(kp, "coco17")
    for name in ("nose", "l_wrist", "r_ankle", "r_shoulder", "l_knee"):
        np.testing.assert_allclose(lab.joints_px[0, P(name)], kp[0, COCO17.index(name), :2], rtol=1e-6)
    ls, rs = kp[0, COCO17.index("l_shoulder")], kp[0, COCO17.index("r_shoulder")]
    np.testing.assert_allclose(lab.joints_px[0, P("neck")], (ls[:2] + rs[:2]) / 2, rtol=1e-6)
    assert lab.scores[0, P("neck")] == pytest.approx((ls[2] + rs[2]) / 2, rel=1e-6)
    np.testing.assert_allclose(lab.joints_px[1, P("neck")], kp[1, COCO17.index("l_shoulder"), :2], rtol=1e-6)
    assert not lab.visible[1, P("mid_hip")] and lab.visible[0].all()
    assert not lab.visible[1, P("r_shoulder")]


def test_openpose_layouts_use_their_own_neck_and_mid_hip(rng):
    kp = _keypoints(BODY25, rng, n=1)
    lab = to_panoptic15(kp, "body25")
    np.testing.assert_allclose(lab.joints_px[0, P("neck")], kp[0, 1, :2], rtol=1e-6)
    np.testing.assert_allclose(lab.joints_px[0, P("mid_hip")], kp[0, 8, :2], rtol=1e-6)
    np.testing.assert_allclose(lab.joints_px[0, P("l_ankle")], kp[0, BODY25.index("l_ankle"), :2], rtol=1e-6)
    kp18 = _keypoints(COCO18, rng, n=1)
    lab18 = to_panoptic15(kp18, "coco18")
    np.testing.assert_allclose(lab18.joints_px[0, P("neck")], kp18[0, 1, :2], rtol=1e-6)
    hips = (kp18[0, COCO18.index("l_hip"), :2] + kp18[0, COCO18.index("r_hip"), :2]) / 2
    np.testing.assert_allclose(lab18.joints_px[0, P("mid_hip")], hips, rtol=1e-6)


def test_hard_variant_rules():
    kp = np.zeros((3, 17, 3))
    kp[..., :2] = 50.0
    kp[..., 2] = 0.5
    kp[0, 0, 2] = 0.04  # below 0.05: dropped
    kp[0, 1, :2] = [500.0, 50.0]  # outside its box: dropped
    kp[1, 3:, 2] = 0.01  # person 1: exactly 3 joints pass -> not "more than 3" -> all zero
    kp[2, :, :2] = 5000.0  # person 2: all pass the score, none in the image -> all zero
    kp[2, :4, :2] = 50.0  # ... except 4: still >= 3 kept -> person kept
    boxes = np.array([[0, 0, 100, 100], [0, 0, 100, 100], [0, 0, 10000, 10000]], float)
    out = harden(kp, boxes, (1000, 800))
    assert out[0, 0, 2] == 0 and out[0, 1, 2] == 0 and (out[0, 2:, 2] == 0.5).all()
    assert (out[1] == 0).all()
    assert (out[2, :4, 2] == 0.5).all() and (out[2, 4:] == 0).all()
    kp[2, 3, :2] = 5000.0  # now only 3 kept -> still >= 3 -> kept; 2 kept -> dropped
    kp[2, 2, :2] = 5000.0
    assert (harden(kp, boxes, (1000, 800))[2] == 0).all()
    soft = convert_detection(Detection(kp, boxes), "coco17", "soft")
    hard = convert_detection(Detection(kp, boxes), "coco17", "hard", (1000, 800))
    assert soft.visible.sum() > hard.visible.sum() and not hard.visible[1].any()


def test_store_round_trip_keeps_empty_entries(tmp_path, rng):
    lab = ViewLabels(
        rng.normal(size=(2, 15, 2)).astype(np.float32),
        rng.random((2, 15)).astype(np.float32),
        rng.random((2, 15)) > 0.5,
    )
    s = PseudoLabelSet(
        [
            LabelEntry("seqA", 3, "00_03", lab, "a.jpg", (1920, 1080)),
            LabelEntry("seqA", 3, "00_06", ViewLabels.empty()),
        ],
        "hard",
        "test",
    )
    back = PseudoLabelSet.load(s.save(tmp_path / "labels.npz"))
    assert back.variant == "hard" and len(back) == 2 and back.num_persons() == 2
    got = back.get("seqA", 3, "00_03")
    np.testing.assert_array_equal(got.joints_px, lab.joints_px)
    np.testing.assert_array_equal(got.visible, lab.visible)
    assert back.has("seqA", 3, "00_06") and len(back.get("seqA", 3, "00_06")) == 0
    assert len(back.get("seqB", 1, "00_03")) == 0 and back.frames() == [("seqA", 3)]
    with pytest.raises(DatasetError, match="duplicate"):
        PseudoLabelSet([s.entries[0], s.entries[0]])


def _coco_person(rng, box):
    kp = np.zeros((17, 3))
    kp[:, :2] = rng.uniform(box[0], box[0] + box[2], size=(17, 2))
    kp[:, 2] = 0.8
    return kp.ravel().tolist()


def test_import_coco_dataset_and_results_forms(tmp_path, rng):
    images = [
        {"id": 1, "file_name": "160906_band1/hdImgs/00_03/00_03_00000168.jpg", "width": 1920, "height": 1080},
        {"id": 2, "file_name": "160906_band1/hdImgs/00_06/00_06_00000168.jpg", "width": 1920, "height": 1080},
    ]
    anns = [
        {
            "image_id": 1,
            "keypoints": _coco_person(rng, [100, 100, 200, 400]),
            "bbox": [100, 100, 200, 400],
            "score": 0.9,
        },
        {
            "image_id": 1,
            "keypoints": _coco_person(rng, [600, 100, 200, 400]),
            "bbox": [600, 100, 200, 400],
            "score": 0.5,
        },
    ]
    (tmp_path / "ds.json").write_text(json.dumps({"images": images, "annotations": anns}))
    s = import_coco(tmp_path / "ds.json", "soft")
    assert s.frames() == [("160906_band1", 168)] and s.cameras() == ["00_03", "00_06"]
    assert len(s.get("160906_band1", 168, "00_03")) == 2 and len(s.get("160906_band1", 168, "00_06")) == 0
    (tmp_path / "res.json").write_text(json.dumps(anns))
    (tmp_path / "imgs.json").write_text(json.dumps({"images": images}))
    r = import_coco(tmp_path / "res.json", "hard", images_json=tmp_path / "imgs.json", min_person_score=0.7)
    assert len(r.get("160906_band1", 168, "00_03")) == 1 and r.variant == "hard"
    with pytest.raises(DatasetError, match="image list"):
        import_coco(tmp_path / "res.json")


def test_import_openpose_folder(tmp_path, rng):
    cam = tmp_path / "Shelf" / "Camera1"
    cam.mkdir(parents=True)
    kp = _keypoints(BODY25, rng, n=1)[0]
    (cam / "img_000300_keypoints.json").write_text(json.dumps({"people": [{"pose_keypoints_2d": kp.ravel().tolist()}]}))
    (cam / "img_000301_keypoints.json").write_text(json.dumps({"people": []}))
    s = import_openpose(tmp_path / "Shelf", "soft", image_size=(1032, 776))
    got = s.get("Shelf", 300, "Camera1")
    assert len(got) == 1 and len(s.get("Shelf", 301, "Camera1")) == 0
    np.testing.assert_allclose(got.joints_px[0, P("mid_hip")], kp[8, :2], rtol=1e-6)


class _Evil:
    def __reduce__(self):
        return (os.getcwd, ())


def test_import_selfpose3d_pickle_and_refuse_code(tmp_path, rng):
    j = rng.uniform(0, 1900, size=(15, 2))
    vis = np.ones((15, 2), bool)
    vis[4] = False
    db = {
        "sequence_list": ["160906_band1"],
        "interval": 3,
        "cam_list": [(0, 3)],
        "db": [
            {
                "key": "160906_band1_00_03_00000168",
                "image": "x/00_03_00000168.jpg",
                "height": 1080,
                "width": 1920,
                "joints_2d": [j],
                "joints_2d_vis": [vis],
                "bboxes": [np.zeros(4)],
                "scores": [np.float64(0.9)],
            },
            {"key": "160906_band1_00_06_00000168", "image": "y.jpg", "joints_2d": [], "joints_2d_vis": []},
        ],
    }
    path = tmp_path / "group_train_cam5_pseudo_hrnet_soft_9videos.pkl"
    path.write_bytes(pickle.dumps(db))
    s = import_selfpose3d_pickle(path)
    assert s.variant == "soft" and len(s) == 2
    got = s.get("160906_band1", 168, "00_03")
    np.testing.assert_allclose(got.joints_px[0, 0], j[0], rtol=1e-6)
    assert got.visible[0].tolist() == [True] * 4 + [False] + [True] * 10 and got.joints_px[0, 4].tolist() == [0, 0]
    evil = tmp_path / "evil.pkl"
    evil.write_bytes(pickle.dumps({"db": [_Evil()]}))
    with pytest.raises(DatasetError, match="refusing to load"):
        import_selfpose3d_pickle(evil)


def test_pseudo_labels_command_imports_coco(tmp_path, rng, capsys):
    from app.cli import main

    images = [{"id": 7, "file_name": "seqX/Camera0/img_000012.png", "width": 640, "height": 480}]
    anns = [{"image_id": 7, "keypoints": _coco_person(rng, [10, 10, 200, 300]), "bbox": [10, 10, 200, 300]}]
    (tmp_path / "k.json").write_text(json.dumps({"images": images, "annotations": anns}))
    out = tmp_path / "labels.npz"
    assert (
        main(["pseudo-labels", "--from", "coco", str(tmp_path / "k.json"), "--variant", "hard", "--out", str(out)]) == 0
    )
    s = PseudoLabelSet.load(out)
    assert s.variant == "hard" and len(s.get("seqX", 12, "Camera0")) == 1
    assert "1 persons" in capsys.readouterr().out
