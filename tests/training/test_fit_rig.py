"""``selfpose3d fit-rig`` end to end on a tiny synthetic scene (3D truth), resume, and each bad input.

The 2D estimator is replaced by the scene's exact 2D truth (looked up by image content), so these
tests need no MoveNet run on rendered images; the Pose2Sim test runs the bundled estimator.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from app.cli import main
from calib.common.paths import CONFIGS_DIR
from calib.common.errors import CalibrationError, DatasetError
from engine.checkpoints import COCO_TO_PANOPTIC
from training.fit_rig.config import load_config
from training.fit_rig.run import fit_rig

TINY = (
    "rig.steps=3",
    "ssl.steps=4",
    "checkpoint_every=2",
    "labels.val_every=3",
    "labels.min_frames_with_people=5",
)

RIG_YAML = """name: synth_ring
calibration: {{path: {calib}, format: panoptic}}
volume: {{center_mm: [-500.0, 0.0, 1000.0], size_mm: [5000.0, 5000.0, 2200.0]}}
cameras:
{cameras}
"""


def _write_rig(path: Path, scene: Path, names) -> Path:
    cams = "\n".join(f'  - {{name: "{n}", source: {{kind: panoptic, uri: {scene}}}}}' for n in names)
    path.write_text(RIG_YAML.format(calib=scene / f"calibration_{scene.name}.json", cameras=cams))
    return path


@pytest.fixture(scope="module")
def scene(tmp_path_factory):
    """A 5-camera ring, 2 people, 10 frames at 320x180 (``selfpose3d synth``), and its rig YAML."""
    root = tmp_path_factory.mktemp("fit_rig_synth")
    args = ["synth", "--rig", "ring", "--people", "2", "--seconds", "2", "--fps", "5"]
    assert main(args + ["--image-size", "320", "180", "--media", "images", "--out", str(root)]) == 0
    seq = root / "synth_000"
    truth = np.load(seq / "truth.npz")
    names = [str(n) for n in truth["camera_names"]]
    return {"seq": seq, "names": names, "rig": _write_rig(root / "rig.yaml", seq, names), "truth": truth}


class TruthDetector:
    """``detect(image)``: the scene's exact 2D people of that image in COCO-17 (eyes and ears absent)."""

    def __init__(self, scene, people: bool = True):
        t = scene["truth"]
        self.calls = 0
        self.by_hash = {}
        for i, frame in enumerate(t["frame"]):
            for v, cam in enumerate(scene["names"]):
                img = cv2.imread(str(scene["seq"] / "hdImgs" / cam / f"{cam}_{int(frame):08d}.jpg"))
                kp = np.zeros((0, 17, 3), np.float32)
                if people:
                    p = t["present"][i] & (t["visible"][i, v].sum(-1) >= 4)
                    xy, vis = t["joints_2d"][i, v][p], t["visible"][i, v][p]
                    kp = np.zeros((len(xy), 17, 3), np.float32)
                    for j, c in enumerate(COCO_TO_PANOPTIC):
                        if j not in (0, 2):  # neck and mid-hip are derived, not COCO joints
                            kp[:, c, :2] = xy[:, j]
                            kp[:, c, 2] = np.where(vis[:, j], 0.9, 0.0)
                self.by_hash[hashlib.md5(img.tobytes()).hexdigest()] = kp

    def __call__(self, image):
        self.calls += 1
        kp = self.by_hash[hashlib.md5(image.tobytes()).hexdigest()]
        return kp, np.full(len(kp), 0.8, np.float32)


def test_fit_rig_end_to_end_release_loads_in_the_live_route_and_finds_people(scene, tmp_path):
    from calib.rig_config import load_rig
    from app.route import build_predictor, choose_route
    from engine.checkpoints import model_input, read_file
    from engine.estimator_route import StartedPeople
    from engine.estimators import EstimatorConfig
    from training.fit_rig.labels import load_split

    out = tmp_path / "run"
    cfg = load_config("cpu", TINY)
    summary = fit_rig(scene["rig"], None, out, cfg, detect=TruthDetector(scene), detector_name="truth")
    assert summary["stages"]["labels"]["frames"] == 10
    assert summary["stages"]["labels"]["val_frames"] == 4 and summary["stages"]["labels"]["train_frames"] == 6
    assert summary["stages"]["rig"]["steps"] == 3 and summary["stages"]["ssl"]["steps"] == 4
    engines = summary["validation"]["engines"]
    assert set(engines) == {"triangulate", "generic", "adapted_rig", "adapted_ssl"}
    for name, fig in engines.items():
        assert fig["frames"] == 4 and fig["predicted"] >= 1, name
        assert set(fig["reprojection_px_median_per_camera"]) == set(scene["names"])
        assert 0.0 <= fig["ghost_rate"] <= 1.0 and 0.0 <= fig["precision"] <= 1.0
        assert "truth" in fig and fig["truth"]["mpjpe_mm"] > 0  # the synth scene has 3D truth
    # exact 2D in: triangulation sits on the truth (sanity of the yardstick itself)
    assert engines["triangulate"]["truth"]["mpjpe_mm"] < 60 and engines["triangulate"]["precision"] == 1.0
    assert json.loads((out / "summary.json").read_text())["release"] == str(out / "model.pt")

    rig = load_rig(scene["rig"])
    release = out / "model.pt"
    assert model_input(release) == "detections"
    meta = read_file(release)["meta"]
    assert meta["rig"] == "synth_ring" and json.loads(meta["rig_cameras"]) == scene["names"]
    assert set(json.loads(meta["stages"])) == {"labels", "rig", "ssl"} and "adapted_ssl" in json.loads(
        meta["validation"]
    )
    weights = [v for v in read_file(release)["state_dict"].values() if v.is_floating_point()]
    assert weights and all(str(v.dtype) == "torch.float16" for v in weights)  # as the committed models

    route = choose_route("auto", str(release), rig)
    assert route.kind == "learned"
    predictor = build_predictor(
        route,
        rig.cameras,
        estimator=EstimatorConfig(),
        estimator_workers=1,
        volume_center_mm=rig.volume.center_mm,
        volume_size_mm=rig.volume.size_mm,
    )
    found = []
    for f in load_split(out, rig).val:
        pred = predictor.finish(StartedPeople(f.p15, np.ones(len(f.p15), bool), {}))
        found.append(pred.num_people)
    assert sum(n > 0 for n in found) >= 3, found  # people in (nearly) every held-out frame


def test_an_interrupted_stage_resumes_from_its_checkpoint_and_finished_stages_are_skipped(scene, tmp_path, capsys):
    out = tmp_path / "run"
    cfg = load_config("cpu", TINY)
    detector = TruthDetector(scene)

    def interrupt(stage, step):
        if stage == "ssl" and step == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        fit_rig(scene["rig"], None, out, cfg, detect=detector, on_step=interrupt)
    assert detector.calls == 50 and (out / "rig" / "done.json").is_file()
    assert not (out / "ssl" / "done.json").exists() and not (out / "model.pt").exists()
    rig_done = (out / "rig" / "done.json").read_text()
    capsys.readouterr()
    fit_rig(scene["rig"], None, out, cfg, detect=detector)
    text = capsys.readouterr().out
    assert detector.calls == 50  # labels came from the stage's output, not a new estimator run
    assert "[labels] done" in text and "[rig] done" in text and "at step 2\n" in text
    assert (out / "rig" / "done.json").read_text() == rig_done
    steps = [json.loads(line)["step"] for line in (out / "ssl" / "log.jsonl").read_text().splitlines()]
    assert steps == [1, 2, 3, 4]  # step 3 was lost with the interrupt (checkpoint at 2): its record too
    assert (out / "model.pt").is_file()


def _cli(scene_rig, footage, out, *extra) -> list[str]:
    args = ["fit-rig", "--rig", str(scene_rig), "--out", str(out)] + (["--footage", str(footage)] if footage else [])
    return args + [a for s in TINY for a in ("--set", s)] + list(extra)


def test_footage_with_other_camera_names_is_refused_naming_them(scene, tmp_path, capsys):
    rig = _write_rig(tmp_path / "rig4.yaml", scene["seq"], scene["names"][:4])
    assert main(_cli(rig, scene["seq"], tmp_path / "run")) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "do not match rig" in err and "'00_04'" in err


def _copy_tree(scene, tmp_path) -> Path:
    dst = tmp_path / "footage" / scene["seq"].name
    shutil.copytree(scene["seq"] / "hdImgs", dst / "hdImgs")
    return dst


def test_footage_of_another_frame_size_is_refused(scene, tmp_path, capsys):
    dst = _copy_tree(scene, tmp_path)
    for p in (dst / "hdImgs" / "00_02").glob("*.jpg"):
        cv2.imwrite(str(p), cv2.resize(cv2.imread(str(p)), (160, 90)))
    assert main(_cli(scene["rig"], dst, tmp_path / "run")) == 2
    err = capsys.readouterr().err
    assert "'00_02' frames are 160x90 px but the rig calibrates 320x180" in err


def test_cameras_with_different_frame_counts_are_refused(scene, tmp_path, capsys):
    dst = _copy_tree(scene, tmp_path)
    (dst / "hdImgs" / "00_01" / "00_01_00000009.jpg").unlink()
    assert main(_cli(scene["rig"], dst, tmp_path / "run")) == 2
    assert "different frame counts" in capsys.readouterr().err


def test_a_rig_whose_cameras_share_no_volume_is_refused(tmp_path):
    from calib.camera import Camera, CameraRig
    from calib.rig_config import save_rig
    from capture.synthetic.rigs import look_at_rotation

    K = np.array([[500.0, 0, 320], [0, 500.0, 180], [0, 0, 1]])
    cams = []
    for i, az in enumerate((0.0, 2.1, 4.2)):  # on a ring, each looking outwards
        c = np.array([3000 * np.cos(az), 3000 * np.sin(az), 1500.0])
        R = look_at_rotation(c, 2 * c * [1, 1, 0] + [0, 0, 1000])
        cams.append(Camera.from_center(f"c{i}", 640, 360, K, np.zeros(5), R, c))
    rig = save_rig(CameraRig(tuple(cams)), tmp_path / "outward.yaml")
    with pytest.raises(CalibrationError, match="no volume and cameras"):
        fit_rig(rig, None, tmp_path / "run", load_config("cpu", TINY))
    assert not (tmp_path / "run").exists()  # refused before anything was written


def test_footage_without_people_is_refused_after_the_labels_stage(scene, tmp_path):
    with pytest.raises(DatasetError, match=r"only 0 of 10 frames have a person in >= 2 views"):
        fit_rig(scene["rig"], None, tmp_path / "run", load_config("cpu", TINY), detect=TruthDetector(scene, False))
    assert not (tmp_path / "run" / "rig").exists()  # no training started


def test_pseudo_labels_of_another_rig_in_the_run_folder_are_refused(scene, tmp_path, capsys):
    labels = tmp_path / "run" / "labels"
    labels.mkdir(parents=True)
    rec = {
        "sequence": "s",
        "frame": 0,
        "camera": "cam01",
        "source": "x",
        "size": [1088, 1920],
        "keypoints": [],
        "scores": [],
    }
    (labels / "pseudo_detections.jsonl").write_text(json.dumps(rec) + "\n")
    assert main(_cli(scene["rig"], None, tmp_path / "run")) == 2
    err = capsys.readouterr().err
    assert "pseudo labels for cameras ['cam01']" in err and "made for another rig" in err

    rec.update(camera="00_00")  # right camera name, another image size
    (labels / "pseudo_detections.jsonl").write_text(json.dumps(rec) + "\n")
    assert main(_cli(scene["rig"], None, tmp_path / "run")) == 2
    assert "1088x1920 px but the rig calibrates 320x180" in capsys.readouterr().err


@pytest.mark.data
def test_pose2sim_footage_with_a_tiny_budget_gives_sane_validation_figures(tmp_path):
    from calib.common.paths import CONFIGS_DIR

    rig = CONFIGS_DIR / "rigs" / "pose2sim_multiperson.yaml"
    cfg = load_config(
        "cpu",
        (
            "rig.steps=4",
            "ssl.steps=4",
            "labels.every=5",
            "labels.val_every=4",
            "labels.min_frames_with_people=10",
            "expected_people=2",
        ),
    )
    summary = fit_rig(rig, None, tmp_path / "run", cfg)
    engines = summary["validation"]["engines"]
    assert summary["stages"]["labels"]["frames_with_people"] == 20
    tri = engines["triangulate"]
    assert tri["frames"] == 5 and tri["recall"] == 1.0 and tri["precision"] == 1.0 and tri["ghost_rate"] == 0.0
    for name, fig in engines.items():
        px = [v for v in fig["reprojection_px_median_per_camera"].values()]
        assert all(v is not None and 3.0 < v < 60.0 for v in px), (name, px)  # on the estimator's people
        assert 1.5 <= fig["people_per_frame_mean"] <= 6, name
        assert fig["bone_length_std_mm"] is not None and 0 < fig["bone_length_std_mm"] < 150, name
    assert (tmp_path / "run" / "model.pt").is_file()


def test_a_run_folder_of_another_calibration_is_refused(scene, tmp_path, capsys):
    from calib.rig_config import load_rig
    from training.fit_rig.checks import check_run_folder

    rig = load_rig(scene["rig"])
    check_run_folder(tmp_path / "run", rig, rig.volume.center_mm, rig.volume.size_mm, scene["seq"])
    check_run_folder(tmp_path / "run", rig, rig.volume.center_mm, rig.volume.size_mm, scene["seq"])  # same: fine
    with pytest.raises(DatasetError, match="was started on footage"):
        check_run_folder(tmp_path / "run", rig, rig.volume.center_mm, rig.volume.size_mm, tmp_path)
    moved = tmp_path / "moved.yaml"
    moved.write_text(scene["rig"].read_text().replace("[-500.0, 0.0, 1000.0]", "[-400.0, 0.0, 1000.0]"))
    assert main(_cli(moved, None, tmp_path / "run")) == 2
    assert "was started for rig 'synth_ring'" in capsys.readouterr().err


@pytest.mark.parametrize(
    "bad, field",
    [
        ("labels.every=0", "labels.every"),
        ("labels.val_every=1", "labels.val_every"),
        ("labels.max_frames=-1", "labels.max_frames"),
        ("labels.min_frames_with_people=0", "labels.min_frames_with_people"),
        ("rig.people=[3,1]", "rig.people"),
        ("rig.bystander_prob=1.5", "rig.bystander_prob"),
        ("image.val_frames=-2", "image.val_frames"),
        ("checkpoint_every=0", "checkpoint_every"),
        ("labels.nonsense=1", "nonsense"),
    ],
)
def test_a_bad_config_value_is_one_line_naming_the_key_before_any_work(bad, field, tmp_path, capsys):
    rig = CONFIGS_DIR / "rig.yaml"
    assert main(["fit-rig", "--rig", str(rig), "--out", str(tmp_path / "run"), "--set", bad]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and field in err, err
    assert not (tmp_path / "run" / "labels").exists()  # nothing was labelled


def test_an_unknown_budget_and_negative_people_are_refused(tmp_path, capsys):
    rig = str(CONFIGS_DIR / "rig.yaml")
    assert main(["fit-rig", "--rig", rig, "--out", str(tmp_path / "a"), "--budget", "huge"]) == 2
    assert "huge" in capsys.readouterr().err
    assert main(["fit-rig", "--rig", rig, "--out", str(tmp_path / "b"), "--people", "-1"]) == 2
    assert "people" in capsys.readouterr().err
