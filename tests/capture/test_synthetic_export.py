"""Panoptic-tree export of a synthetic scene: layout, units, round trip through the loaders."""

from __future__ import annotations

import importlib

import json
import re

import cv2
import numpy as np
import pytest

from calib.io_panoptic import load_panoptic_calibration
from capture.synthetic.export_panoptic import BODY_DIR, export_panoptic_sequence
from capture.synthetic.rigs import ring_rig
from capture.synthetic.world import SyntheticWorld

FRAMES = range(3, 9)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    rig = ring_rig(5, radius_mm=3500.0, height_mm=2000.0, target_mm=(0.0, -500.0, 900.0), width=320, height=180, seed=4)
    world = SyntheticWorld(rig, num_people=3, seed=21, fps=15.0)
    out = tmp_path_factory.mktemp("panoptic")
    seq = export_panoptic_sequence(world, out, "synth_rt", FRAMES, media=("images", "video"))
    return world, seq


def test_tree_has_the_panoptic_layout(exported):
    world, seq = exported
    assert (seq / "calibration_synth_rt.json").is_file()
    for name in world.rig.names:
        assert re.fullmatch(r"\d\d_\d\d", name)
        imgs = sorted(p.name for p in (seq / "hdImgs" / name).iterdir())
        assert imgs == [f"{name}_{k:08d}.jpg" for k in FRAMES]
        assert (seq / "hdVideos" / f"hd_{name}.mp4").is_file()
    bodies = sorted(p.name for p in (seq / BODY_DIR).iterdir())
    assert bodies == [f"body3DScene_{k:08d}.json" for k in FRAMES]


def test_calibration_round_trips(exported):
    world, seq = exported
    rig = load_panoptic_calibration(seq / "calibration_synth_rt.json")
    assert rig.names == world.rig.names
    for a, b in zip(rig, world.rig):
        assert (a.width, a.height) == (b.width, b.height)
        assert np.allclose(a.K, b.K) and np.allclose(a.dist, b.dist)
        assert np.allclose(a.R, b.R, atol=1e-12) and np.allclose(a.t_mm, b.t_mm, atol=1e-9)


def test_bodies_round_trip_through_the_panoptic_loader(exported):
    panoptic = importlib.import_module("training.datasets.panoptic")
    world, seq = exported
    for k in FRAMES:
        bodies = panoptic.read_body3d_scene(seq / BODY_DIR / f"body3DScene_{k:08d}.json")
        people = world.people(k)
        expected = {int(i): people.joints_mm[p] for p, i in enumerate(people.ids) if people.present[p]}
        assert sorted(b.id for b in bodies) == sorted(expected)
        for b in bodies:
            assert b.visible.all()
            assert np.allclose(b.joints_mm, expected[b.id], atol=0.01)  # 1e-4 cm in the file


def test_bodies_are_centimetres_y_down(exported):
    world, seq = exported
    k = FRAMES[0]
    doc = json.loads((seq / BODY_DIR / f"body3DScene_{k:08d}.json").read_text())
    people = world.people(k)
    p = int(np.flatnonzero(people.present)[0])
    j19 = np.array(next(b for b in doc["bodies"] if b["id"] == people.ids[p])["joints19"]).reshape(19, 4)
    # Panoptic: y points down, so a standing person's nose has a smaller (more negative) y than the ankle.
    assert j19[1, 1] < j19[8, 1] < 0
    assert np.allclose(j19[:15, 1], -people.joints_mm[p, :, 2] / 10)
    assert np.all(j19[15:, 3] == -1) and np.all(j19[:15, 3] > 0.1)


def test_images_and_video_hold_the_rendered_frames(exported):
    world, seq = exported
    k = FRAMES[2]
    name = world.rig.names[1]
    rendered = world.render(k, views=[1])[0].astype(float)
    jpeg = cv2.imread(str(seq / "hdImgs" / name / f"{name}_{k:08d}.jpg")).astype(float)
    assert np.abs(jpeg - rendered).mean() < 4.0
    cap = cv2.VideoCapture(str(seq / "hdVideos" / f"hd_{name}.mp4"))
    frames = []
    while True:
        ok, img = cap.read()
        if not ok:
            break
        frames.append(img)
    cap.release()
    assert len(frames) == max(FRAMES) + 1  # as in Panoptic, video frame n is HD frame n
    assert np.abs(frames[k].astype(float) - rendered).mean() < 6.0


def test_panoptic_sequence_reader_reads_images_and_videos(exported):
    panoptic = importlib.import_module("training.datasets.panoptic")
    world, seq = exported
    reader = panoptic.PanopticSequence(seq, camera_names=world.rig.names)
    assert reader.load_rig().names == world.rig.names
    assert [panoptic.body_file_frame(p) for p in reader.body_files()] == list(FRAMES)
    for k in (FRAMES[0], FRAMES[-1]):
        rendered = world.render(k, views=[3])[0][..., ::-1].astype(float)  # the reader gives RGB
        assert np.abs(reader.read_image(world.rig.names[3], k).astype(float) - rendered).mean() < 4.0


@pytest.mark.data
def test_layout_and_units_match_the_real_panoptic_samples(exported, shared_data):
    world, seq = exported
    real_seq = shared_data / "panoptic_body3d_samples" / "160906_band1"
    real_body = json.loads(next((real_seq / BODY_DIR).glob("body3DScene_*.json")).read_text())
    ours = json.loads(next((seq / BODY_DIR).glob("body3DScene_*.json")).read_text())
    assert set(ours) == set(real_body)
    assert set(ours["bodies"][0]) == set(real_body["bodies"][0])
    assert len(ours["bodies"][0]["joints19"]) == len(real_body["bodies"][0]["joints19"]) == 76
    real_cal = json.loads((real_seq / "calibration_160906_band1.json").read_text())
    real_hd = next(c for c in real_cal["cameras"] if c["type"] == "hd")
    our_cam = json.loads((seq / "calibration_synth_rt.json").read_text())["cameras"][0]
    assert set(real_hd) <= set(our_cam)
    assert np.array(our_cam["t"]).shape == np.array(real_hd["t"]).shape == (3, 1)
    # Units: real and synthetic people and camera distances are of the same magnitude (cm, y down).
    real_j = np.array(real_body["bodies"][0]["joints19"]).reshape(19, 4)
    our_j = np.array(ours["bodies"][0]["joints19"]).reshape(19, 4)
    for j in (real_j, our_j):
        height_cm = j[:15, 1].max() - j[:15, 1].min()
        assert 100 < height_cm < 200
    assert 100 < np.linalg.norm(np.array(our_cam["t"])) < 1000


def test_synth_command_writes_tree_truth_and_labels(tmp_path):
    from app.cli import main

    rc = main(
        [
            "synth",
            "--rig",
            "ring",
            "--people",
            "2",
            "--seconds",
            "0.4",
            "--fps",
            "10",
            "--media",
            "images",
            "--set",
            "ring.num_cameras=3",
            "--set",
            "ring.width=256",
            "--set",
            "ring.height=144",
            "--out",
            str(tmp_path),
        ]
    )
    assert rc == 0
    seq = tmp_path / "synth_000"
    assert len(list((seq / BODY_DIR).glob("*.json"))) == 4
    truth = np.load(seq / "truth.npz")
    assert truth["joints_2d"].shape == (4, 3, 2, 15, 2) and truth["visible"].any()
    labels = importlib.import_module("training.pseudo_labels.store")
    hard = labels.PseudoLabelSet.load(seq / "pseudo_labels_hard.npz")
    assert hard.variant == "hard" and len(hard) == 4 * 3 and hard.num_persons() > 0
    assert (seq / "config.resolved.yaml").is_file()


def test_video_only_tree_reads_back_by_frame_number(tmp_path):
    panoptic = importlib.import_module("training.datasets.panoptic")
    world = SyntheticWorld(ring_rig(2, width=192, height=108, seed=6), num_people=2, seed=8, fps=10.0)
    seq = export_panoptic_sequence(world, tmp_path, "vid", [2, 5], media=("video",))
    assert not (seq / "hdImgs").exists()
    reader = panoptic.PanopticSequence(seq, camera_names=world.rig.names)
    expected = {k: world.render(k, views=[1])[0][..., ::-1].astype(float) for k in (2, 5)}
    assert np.abs(expected[2] - expected[5]).mean() > 0.5  # the two frames differ
    for k, other in ((5, 2), (2, 5)):  # out of order: the reader seeks
        got = reader.read_image(world.rig.names[1], k).astype(float)
        assert np.abs(got - expected[k]).mean() < 6.0
        assert np.abs(got - expected[k]).mean() < np.abs(got - expected[other]).mean()


def test_replay_source_reads_the_exported_tree(exported):
    sources = importlib.import_module("capture.sources.panoptic")
    world, seq = exported
    cam = world.rig.names[0]
    assert sources.panoptic_hd_cameras(seq) == sorted(world.rig.names)
    assert sources.panoptic_calibration_path(seq).name == "calibration_synth_rt.json"
    src = sources.PanopticSource(cam, seq, first_frame=sources.panoptic_first_frame(seq, [cam]), realtime=False)
    src.open()
    numbers = []
    while (frame := src.read()) is not None:
        numbers.append(frame.frame_index)
        expected = world.render(frame.frame_index, views=[0])[0].astype(float)
        assert np.abs(frame.image.astype(float) - expected).mean() < 4.0
    assert numbers == list(FRAMES)
