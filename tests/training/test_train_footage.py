"""``selfpose3d train`` on footage (``data.source: footage``): a tiny ``selfpose3d synth`` scene treated as
real footage, its pseudo labels from a fake estimator (the scene's exact 2D truth, as in
test_fit_rig.py); every stage runs, validation gives label-free (and truth) figures, the model loads
in the live app's image route; each bad input fails before training with one line and exit 2."""

from __future__ import annotations

import json
import math
import shutil

import numpy as np
import pytest

from app.cli import main
from calib.common.errors import DatasetError
from calib.configkit import from_dict
from tests.training.test_fit_rig import TruthDetector, _write_rig
from tests.training.test_ssl_stages import TINY_MODEL
from training.pseudo_labels.detect import generate
from training.pseudo_labels.footage import open_footage
from training.ssl.config import TrainConfig


@pytest.fixture(scope="module")
def scene(tmp_path_factory):
    """A 5-camera ring, 2 people, 20 frames at 320x180 as an image tree, its rig YAML and pseudo labels."""
    root = tmp_path_factory.mktemp("train_footage")
    args = ["synth", "--rig", "ring", "--people", "2", "--seconds", "4", "--fps", "5"]
    assert main(args + ["--image-size", "320", "180", "--media", "images", "--out", str(root)]) == 0
    seq = root / "synth_000"
    truth = np.load(seq / "truth.npz")
    names = [str(n) for n in truth["camera_names"]]
    s = {"seq": seq, "names": names, "rig": _write_rig(root / "rig.yaml", seq, names), "truth": truth}
    generate(open_footage(s["rig"]), TruthDetector(s), root / "labels" / "pseudo", source_name="truth")
    s["labels"] = root / "labels" / "pseudo"
    return s


def footage_config(scene, stage: str, init: str | None = None, **data) -> TrainConfig:
    d = {
        "source": "footage",
        "rig": str(scene["rig"]),
        "pseudo_labels": str(scene["labels"]),
        "frame_interval": 1,
        "val_every": 4,
        "min_frames_with_people": 5,
    }
    d.update(data)
    return from_dict(
        TrainConfig,
        {
            "stage": stage,
            "model": "light",
            "model_overrides": TINY_MODEL,
            "init": init,
            "epochs": 1,
            "steps_per_epoch": 2,
            "log_every": 1,
            "threads": 2,
            "val_frames": 3,
            "data": d,
            "attention": {"width": 8, "deconv_channels": [8, 8, 8]},
            "loss": {"l1_epoch": 0},
        },
    )


def test_every_stage_trains_on_the_footage_and_the_model_loads_in_the_image_route(scene, tmp_path):
    from app.route import build_predictor, choose_route
    from calib.rig_config import load_rig
    from training.ssl.trainer import Trainer

    init = None
    for stage in ("backbone", "rootnet", "posenet", "finetune"):
        variant = "hard" if stage == "finetune" else "soft"
        trainer = Trainer(footage_config(scene, stage, init, detector_variant=variant), tmp_path / stage, resume=False)
        assert len(trainer.dataset) == 15  # 20 frames, every 4th held out
        summary = trainer.run()
        assert summary["steps"] == 2 and all(
            math.isfinite(v) for k, v in summary["last"].items() if k.startswith("loss")
        ), summary
        init = summary["model"]
    record = json.loads((tmp_path / "footage_soft.json").read_text())
    assert record["train_frames"] == 15 and record["val_frames"] == 5 and record["frame_cache"] is None
    assert json.loads((tmp_path / "footage_hard.json").read_text())["variant"] == "hard"
    # held-out frames: label-free figures, and truth figures because the synth scene has truth.npz
    metrics = json.loads((tmp_path / "posenet" / "metrics.json").read_text())
    assert {"reproj_px", "ghost_rate", "people_per_frame_mean", "bone_length_std_mm", "mpjpe_mm", "mean_ap"} <= set(
        metrics
    )
    assert {f"reproj_px_{n}" for n in scene["names"]} <= set(metrics) and metrics["frames"] == 3
    assert (tmp_path / "posenet" / "model_best.pt").is_file()

    rig = load_rig(scene["rig"])
    route = choose_route("auto", init, rig)
    assert route.kind == "image"
    predictor = build_predictor(
        route, rig.cameras, estimator=None, volume_center_mm=rig.volume.center_mm, volume_size_mm=rig.volume.size_mm
    )
    import cv2

    images = [cv2.imread(str(scene["seq"] / "hdImgs" / n / f"{n}_00000003.jpg")) for n in scene["names"]]
    out = predictor.predict_images(images)
    assert out.poses_mm.shape[1:] == (15, 3) and out.candidates.shape[-1] == 5


def test_video_footage_is_decoded_once_into_the_run_cache(scene, tmp_path):
    """A videos folder (one file per camera): frames cached downscaled, resized back on reading."""
    import cv2

    videos = tmp_path / "videos"
    videos.mkdir()
    for n in scene["names"]:
        w = cv2.VideoWriter(str(videos / f"{n}.avi"), cv2.VideoWriter_fourcc(*"MJPG"), 5, (320, 180))
        for f in range(20):
            w.write(cv2.imread(str(scene["seq"] / "hdImgs" / n / f"{n}_{f:08d}.jpg")))
        w.release()
    det = TruthDetector(scene)
    lookup = {}  # MJPG re-encodes: match frames by position instead of by image hash
    for cam in scene["names"]:
        for f in range(20):
            img = cv2.imread(str(scene["seq"] / "hdImgs" / cam / f"{cam}_{f:08d}.jpg"))
            lookup[(cam, f)] = det(img)
    from training.pseudo_labels.detect import generate as gen

    footage = open_footage(videos)
    order = iter([(s.camera, f) for s in footage.streams for f in range(0, 20, 2)])
    gen(footage, lambda image: lookup[next(order)], tmp_path / "labels" / "pseudo", every=2)
    from training.ssl.trainer import Trainer

    cfg = footage_config(
        scene,
        "backbone",
        footage=str(videos),
        pseudo_labels=str(tmp_path / "labels"),
        frame_interval=2,
        val_every=5,
        frame_cache_long_side_px=160,
    )
    trainer = Trainer(cfg, tmp_path / "run" / "backbone", resume=False)
    assert len(trainer.dataset) == 8  # 10 sampled frames, 2 held out
    cached = sorted((tmp_path / "run" / "cache" / "frames").rglob("*.jpg"))
    assert len(cached) == 10 * 5 and cv2.imread(str(cached[0])).shape[:2] == (90, 160)
    item = trainer.dataset[0]
    assert item["images"].shape[-2:] == (64, 64) and float(item["heatmaps"].max()) > 0.5
    assert trainer.run()["steps"] == 2


def _cli(scene, out, *sets):
    import yaml

    config = out.parent / f"{out.name}.yaml"
    data = {"source": "footage", "rig": str(scene["rig"]), "val_every": 4, "frame_interval": 1}
    body = {"stage": "backbone", "model": "light", "model_overrides": TINY_MODEL, "epochs": 1, "data": data}
    config.write_text(yaml.safe_dump(body | {"steps_per_epoch": 1, "threads": 2}))
    args = ["train", "--config", str(config), "--out", str(out), "--set", "data.min_frames_with_people=5"]
    for s in sets:
        args += ["--set", s]
    return main(args)


def test_bad_footage_and_labels_fail_before_training_with_one_line(scene, tmp_path, capsys):
    labels = f"data.pseudo_labels={scene['labels']}"
    # footage camera names disagree with the rig
    renamed = tmp_path / "renamed"
    shutil.copytree(scene["seq"] / "hdImgs", renamed)
    (renamed / scene["names"][0]).rename(renamed / "camX")
    for p in (renamed / "camX").iterdir():
        p.rename(p.with_name(p.name.replace(scene["names"][0], "camX")))
    assert _cli(scene, tmp_path / "a", labels, f"data.footage={renamed}") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "do not match rig" in err[0] and "camX" in err[0]
    # frame counts disagree
    short = tmp_path / "short"
    shutil.copytree(scene["seq"] / "hdImgs", short)
    (short / scene["names"][1] / f"{scene['names'][1]}_00000019.jpg").unlink()
    assert _cli(scene, tmp_path / "b", labels, f"data.footage={short}") == 2
    assert "different frame counts" in capsys.readouterr().err
    # frame size disagrees with the calibration
    small = tmp_path / "small"
    shutil.copytree(scene["seq"] / "hdImgs", small)
    import cv2

    first = sorted((small / scene["names"][0]).iterdir())[0]
    cv2.imwrite(str(first), cv2.resize(cv2.imread(str(first)), (160, 90)))
    assert _cli(scene, tmp_path / "c", labels, f"data.footage={small}") == 2
    assert "160x90 px but the rig calibrates 320x180" in capsys.readouterr().err
    # pseudo labels made for another rig: other camera names, other image size
    from training.pseudo_labels.store import LabelEntry, PseudoLabelSet

    base = PseudoLabelSet.load(f"{scene['labels']}_soft.npz")
    for tag, change in (
        ("names", lambda e: (e.camera + "x", e.image_size)),
        ("size", lambda e: (e.camera, (640, 360))),
    ):
        other = tmp_path / f"other_{tag}" / "pseudo"
        entries = [LabelEntry(e.sequence, e.frame, change(e)[0], e.labels, e.image, change(e)[1]) for e in base]
        PseudoLabelSet(entries, "soft").save(f"{other}_soft.npz")
        assert _cli(scene, tmp_path / f"d_{tag}", f"data.pseudo_labels={other}") == 2
        err = capsys.readouterr().err
        assert "made for another rig" in err and ("640x360" in err if tag == "size" else "x'" in err), err
    # missing pseudo labels named: no silent estimator run when a path was given
    assert _cli(scene, tmp_path / "e", f"data.pseudo_labels={tmp_path / 'nothing' / 'pseudo'}") == 2
    assert "no pseudo labels there" in capsys.readouterr().err
    # too few frames with people (labels where nobody was found)
    empty = tmp_path / "empty" / "pseudo"
    generate(open_footage(scene["rig"]), TruthDetector(scene, people=False), empty, source_name="nobody")
    assert _cli(scene, tmp_path / "f", f"data.pseudo_labels={empty}") == 2
    err = capsys.readouterr().err
    assert "only 0 of 15 sampled training frames have a person" in err
    assert not (tmp_path / "f" / "checkpoint.pt").exists()


def test_footage_config_refuses_exact_labels():
    from calib.configkit import ConfigError

    with pytest.raises(ConfigError, match="data.labels"):
        from_dict(TrainConfig, {"data": {"source": "footage", "labels": "exact"}})


def test_pseudo_labels_folder_with_two_outputs_is_ambiguous(tmp_path):
    from training.ssl.footage import label_files

    (tmp_path / "a_soft.npz").touch()
    (tmp_path / "b_soft.npz").touch()
    with pytest.raises(DatasetError, match="expected one"):
        label_files(tmp_path, tmp_path)
    assert label_files(tmp_path / "a_soft.npz", tmp_path)["hard"] == tmp_path / "a_hard.npz"


def test_synthetic_root_shrink_is_scaled_to_a_small_rig_volume():
    """The default shrink (set for an 8 x 8 x 2 m room) empties a 3 x 2.8 m volume: it is scaled, and
    the roots then fall inside the volume; a room where it fits keeps the configured shrink."""
    from training.ssl.config import LossConfig
    from training.ssl.trainer import fitted_syn_range
    from training.targets import synthetic_root_box

    size, center = (3000.0, 2800.0, 2200.0), (-700.0, 0.0, 950.0)
    with pytest.raises(ValueError):
        synthetic_root_box(size, center, LossConfig().syn_range_mm)
    box = synthetic_root_box(size, center, fitted_syn_range(LossConfig(), size, center).syn_range_mm)
    lo, hi = np.subtract(center, np.divide(size, 2)), np.add(center, np.divide(size, 2))
    assert np.all(box[:, 0] > lo) and np.all(box[:, 1] < hi) and np.all(box[:, 1] - box[:, 0] > 300)
    assert fitted_syn_range(LossConfig(), (8000.0, 8000.0, 2000.0), (0, -500, 800)) == LossConfig()


def test_fit_rig_image_variant_runs_labels_and_the_four_stages_and_resumes(scene, tmp_path, capsys):
    from engine.checkpoints import model_input
    from training.fit_rig.config import load_config
    from training.fit_rig.image_variant import fit_rig_image

    over = ("image.steps=2", "image.val_frames=2", "labels.val_every=4", "labels.min_frames_with_people=5")
    cfg = load_config("cpu", over)
    out = tmp_path / "run"
    summary = fit_rig_image(scene["rig"], None, out, cfg, detect=TruthDetector(scene))
    assert list(summary["stages"]) == ["backbone", "rootnet", "posenet", "finetune"]
    assert all(summary["stages"][s]["steps"] == 2 for s in summary["stages"])
    held = summary["stages"]["finetune"]["held_out"]
    assert held["frames"] == 2 and "reproj_px" in held and "mpjpe_mm" in held
    assert model_input(out / "model.pt") == "images" and (out / "labels" / "split.json").is_file()
    capsys.readouterr()
    again = fit_rig_image(scene["rig"], None, out, cfg, detect=TruthDetector(scene, people=False))
    assert "skipped" in capsys.readouterr().out and again["stages"]["finetune"]["steps"] == 2


def test_without_pseudo_labels_the_estimator_runs_once_into_the_run_folder(scene, tmp_path):
    from calib.rig_config import load_rig
    from training.ssl.footage import build_footage_data

    cfg = footage_config(scene, "backbone", pseudo_labels=None, frame_interval=2, val_every=5)
    detector = TruthDetector(scene)
    data = build_footage_data(cfg.data, load_rig(scene["rig"]), "soft", tmp_path, detect=detector)
    assert detector.calls == 10 * 5  # every 2nd of 20 frames, 5 cameras
    assert (tmp_path / "pseudo_labels" / "pseudo_soft.npz").is_file()
    assert len(data.train) == 8 and len(data.val) == 2 and all(f % 2 == 0 for _, f in data.train + data.val)
    assert not set(data.train) & set(data.val)
    again = build_footage_data(cfg.data, load_rig(scene["rig"]), "hard", tmp_path, detect=detector)
    assert detector.calls == 50 and again.train == data.train  # labels reused, same split
