"""``selfpose3d eval panoptic|campus --checkpoint M``: a model run on a dataset's images, scored as SPEC §5.

The trees are written by ``selfpose3d synth`` in the real Panoptic layout (and, for Campus,
rearranged into the VoxelPose Campus layout), so the 3D truth is exact.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from app.cli import main
from calib.common.paths import MODELS_DIR
from training.results_io import load_predictions

LIGHT = str(MODELS_DIR / "light_synthetic.pt")
DETECTION = MODELS_DIR / "detection_generic_candidate.pt"
RUN_KEYS = {"checkpoint", "route", "seconds_per_frame"}  # what a model run adds to the metrics JSON
SEQ = "synth_000"


@pytest.fixture(scope="module")
def panoptic_tree(tmp_path_factory) -> Path:
    """6 frames, 3 people, the embedded 5-camera rig (Panoptic HD 00_03..00_23 at 640x360)."""
    out = tmp_path_factory.mktemp("panoptic")
    rc = main(
        ["synth", "--people", "3", "--seconds", "2", "--fps", "3", "--seed", "1", "--media", "images"]
        + ["--set", "pseudo_labels=false", "--out", str(out)]
    )
    assert rc == 0
    return out


def _panoptic_args(tree: Path, *extra: str) -> list[str]:
    return ["eval", "panoptic", "--gt", str(tree), "--sequences", SEQ, "--interval", "1", *extra]


def _table(out: str) -> list[str]:
    """The printed score lines (headline and AP/MPJPE rows) of a panoptic run."""
    return [line for line in out.splitlines() if line.startswith(("panoptic", "  pose", "  root"))]


def _run_and_rescore(args: list[str], tmp_path: Path, capsys) -> tuple[dict, dict, str, str]:
    """Run ``args`` with the model (saving P.npz), then score P.npz with ``--predictions``."""
    pred, m1, m2 = tmp_path / "P.npz", tmp_path / "m1.json", tmp_path / "m2.json"
    assert main(args[:2] + ["--checkpoint"] + args[2:] + ["--save-predictions", str(pred), "--metrics", str(m1)]) == 0
    out_model = capsys.readouterr().out
    assert main(args[:2] + ["--predictions", str(pred)] + args[3:] + ["--metrics", str(m2)]) == 0
    out_file = capsys.readouterr().out
    return json.loads(m1.read_text()), json.loads(m2.read_text()), out_model, out_file


def _independent_mpjpe_recall500(tree: Path, pred_file: Path) -> tuple[float, float]:
    """SPEC §5.1 MPJPE and recall@500 of P.npz from the raw body files, without the project's scorer:
    every valid prediction takes its closest GT person (MPJPE over that person's visible joints);
    by descending score, the first prediction under 500 mm claims a person (a TP)."""
    data = np.load(pred_file)
    records, num_gt, recalled = [], 0, 0
    for row, frame in enumerate(data["frame_ids"]):
        body = json.loads((tree / SEQ / "hdPose3d_stage1_coco19" / f"body3DScene_{frame:08d}.json").read_text())
        joints = np.array([b["joints19"] for b in body["bodies"]]).reshape(-1, 19, 4)[:, :15]
        gt_mm = np.stack([joints[..., 0], joints[..., 2], -joints[..., 1]], -1) * 10.0  # cm y-down -> mm z-up
        vis = joints[..., 3] > 0.1
        err = np.array(
            [
                [np.linalg.norm(p[v] - g[v], axis=-1).mean() for g, v in zip(gt_mm, vis)]
                for p in data["poses"][row][data["valid"][row], :, :3]
            ]
        ).reshape(-1, len(gt_mm))
        num_gt += len(gt_mm)
        recalled += int((err.min(0) < 500).sum()) if len(err) else 0
        scores = data["scores"][row][data["valid"][row]]
        records += [(-s, row, e.argmin(), e.min()) for s, e in zip(scores, err)]
    claimed, tp = set(), []
    for _, row, person, e in sorted(records, key=lambda r: r[0]):
        if e < 500 and (row, person) not in claimed:
            claimed.add((row, person))
            tp.append(e)
    return float(np.mean(tp)), recalled / num_gt


def test_panoptic_checkpoint_scores_equal_the_saved_predictions_and_are_accurate(panoptic_tree, tmp_path, capsys):
    args = _panoptic_args(panoptic_tree)
    args = args[:2] + [LIGHT] + args[2:]
    from_model, from_file, out_model, out_file = _run_and_rescore(args, tmp_path, capsys)
    assert from_model["route"] == "image" and set(from_model) - set(from_file) == RUN_KEYS
    assert {k: from_model[k] for k in from_file} == from_file
    assert _table(out_model) == _table(out_file) and len(_table(out_model)) == 3
    preds = load_predictions(tmp_path / "P.npz")
    assert preds.poses.shape[1:] == (preds.valid.shape[1], 15, 3) and preds.frame_ids.tolist() == list(range(6))
    assert list(preds.sequences) == [SEQ] * 6
    mpjpe, recall500 = _independent_mpjpe_recall500(panoptic_tree, tmp_path / "P.npz")
    assert from_model["mpjpe_mm"] == pytest.approx(mpjpe, rel=1e-6)
    assert from_model["recall500"] == pytest.approx(recall500, abs=1e-4)
    # the committed light model on this tree (seed 1) measured MPJPE 58 mm, AP@100 0.94, recall@500 1.0
    assert from_model["num_gt"] == 18 and from_model["frames"] == 6
    assert from_model["mpjpe_mm"] < 80.0
    assert from_model["ap100"] > 0.75 and from_model["recall500"] >= 0.9


@pytest.mark.skipif(not DETECTION.is_file(), reason="models/detection_generic_candidate.pt not in this checkout")
def test_detection_input_model_runs_on_the_estimators_people(panoptic_tree, tmp_path, capsys):
    args = _panoptic_args(panoptic_tree)
    args = args[:2] + [str(DETECTION)] + args[2:]
    from_model, from_file, out_model, out_file = _run_and_rescore(args, tmp_path, capsys)
    assert from_model["route"] == "learned"
    assert {k: from_model[k] for k in from_file} == from_file and _table(out_model) == _table(out_file)


def _one_line_error(argv: list[str], capsys, *says: str) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err and all(s in err[-1] for s in says), err[-1:]
    assert "Traceback" not in "\n".join(err)


def test_bad_panoptic_inputs_are_one_line_errors(panoptic_tree, tmp_path, capsys):
    ckpt = ["--checkpoint", LIGHT]
    _one_line_error(_panoptic_args(tmp_path / "nowhere", *ckpt), capsys, "nowhere", "missing")
    _one_line_error(
        ["eval", "panoptic", "--gt", str(panoptic_tree), "--sequences", "160906_pizza1", *ckpt], capsys, "160906_pizza1"
    )
    not_a_model = tmp_path / "notes.pt"
    not_a_model.write_text("not a checkpoint")
    _one_line_error(_panoptic_args(panoptic_tree, "--checkpoint", str(not_a_model)), capsys, "notes.pt")
    _one_line_error(_panoptic_args(panoptic_tree, *ckpt, "--predictions", "p.npz"), capsys, "one of them")
    if DETECTION.is_file():
        _one_line_error(
            _panoptic_args(panoptic_tree, "--checkpoint", str(DETECTION), "--refine-mm", "0"), capsys, "--refine-mm"
        )

    tree = tmp_path / "tree"
    shutil.copytree(panoptic_tree, tree)
    image = tree / SEQ / "hdImgs" / "00_12" / "00_12_00000003.jpg"
    cv2.imwrite(str(image), np.zeros((180, 320, 3), np.uint8))
    _one_line_error(_panoptic_args(tree, *ckpt), capsys, "00_12_00000003.jpg", "320x180", "640x360")
    image.unlink()
    _one_line_error(_panoptic_args(tree, *ckpt), capsys, "00_12_00000003.jpg", "missing")

    calib = tree / SEQ / f"calibration_{SEQ}.json"
    doc = json.loads(calib.read_text())
    doc["cameras"] = [c for c in doc["cameras"] if c["name"] != "00_23"]
    calib.write_text(json.dumps(doc))
    _one_line_error(_panoptic_args(tree, *ckpt), capsys, "00_23")


# --- Campus (VoxelPose layout: calibration_campus.json, Camera{k}/campus4-c{k}-{frame:05d}.png, GT) ---

CAMPUS_FIRST = 350  # the Campus evaluation frames start at 350; synthetic frame k becomes 350 + k


@pytest.fixture(scope="module")
def campus_tree(tmp_path_factory) -> Path:
    """A 3-camera 360x288 ring around the Campus volume, rearranged into the Campus layout;
    GT ``gt.npz`` (metres, Shelf-14 by the head rule) for all evaluation frames, people in 350..355."""
    from calib.io_panoptic import load_panoptic_calibration
    from calib.io_voxelpose import save_voxelpose_calibration
    from training.datasets.panoptic import PanopticSequence
    from training.datasets.shelf_campus import CAMPUS
    from training.metrics import to_shelf14

    out = tmp_path_factory.mktemp("campus")
    rc = main(
        ["synth", "--rig", "ring", "--people", "3", "--seconds", "2", "--fps", "3", "--seed", "1", "--media", "images"]
        + ["--set", "pseudo_labels=false", "--set", "ring.num_cameras=3", "--set", "ring.width=360"]
        + ["--set", "ring.height=288", "--set", "ring.target_mm=[3000,4500,900]"]
        + ["--set", "volume_center_mm=[3000,4500,800]", "--set", "volume_size_mm=[4000,4000,2000]"]
        + ["--out", str(out / "synth")]
    )
    assert rc == 0
    seq = out / "synth" / SEQ
    names = sorted(p.name for p in (seq / "hdImgs").iterdir())
    root = out / "CampusSeq1"
    root.mkdir()
    save_voxelpose_calibration(
        load_panoptic_calibration(seq / f"calibration_{SEQ}.json", names), root / "calibration_campus.json"
    )
    eval_frames = CAMPUS.eval_frames
    frames = list(PanopticSequence(seq, names).frames(1))
    actors = sorted({b.id for f in frames for b in f.bodies})  # Actor1.. = person ids in order
    joints = np.full((len(eval_frames), max(3, len(actors)), 14, 3), np.nan)
    valid = np.zeros(joints.shape[:2], bool)
    for f in frames:
        row = eval_frames.index(CAMPUS_FIRST + f.frame)
        gt, _ = f.gt_arrays()
        for body, g in zip(f.bodies, gt):
            joints[row, actors.index(body.id)] = to_shelf14(g) / 1000.0
            valid[row, actors.index(body.id)] = True
        for k, name in enumerate(names):
            (root / f"Camera{k}").mkdir(exist_ok=True)
            image = cv2.imread(str(seq / "hdImgs" / name / f"{name}_{f.frame:08d}.jpg"))
            cv2.imwrite(str(root / CAMPUS.image_pattern.format(camera=k, frame=CAMPUS_FIRST + f.frame)), image)
    np.savez(root / "gt.npz", joints=joints, valid=valid, frame_ids=np.array(eval_frames), units=np.array("m"))
    return root


def test_campus_checkpoint_scores_equal_the_saved_predictions(campus_tree, tmp_path, capsys):
    args = ["eval", "campus", LIGHT, "--gt", str(campus_tree), "--frames", "350-355"]
    from_model, from_file, out_model, out_file = _run_and_rescore(args, tmp_path, capsys)
    assert set(from_model) - set(from_file) == RUN_KEYS
    assert {k: from_model[k] for k in from_file} == from_file
    pcp_lines = [line for line in out_model.splitlines() if line.startswith(("Total", "average PCP"))]
    assert len(pcp_lines) == 2 and pcp_lines == [
        line for line in out_file.splitlines() if line.startswith(("Total", "average PCP"))
    ]
    preds = load_predictions(tmp_path / "P.npz")
    assert preds.frame_ids.tolist() == list(range(350, 356)) and preds.valid.sum() > 0


def test_bad_campus_inputs_are_one_line_errors(campus_tree, tmp_path, capsys):
    ckpt = ["--checkpoint", LIGHT]
    _one_line_error(["eval", "campus", "--gt", str(tmp_path / "nowhere"), *ckpt], capsys, "nowhere", "not found")
    _one_line_error(
        ["eval", "campus", "--gt", str(campus_tree), "--frames", "350-360", *ckpt], capsys, "campus4-c0-00356.png"
    )
    root = tmp_path / "CampusSeq1"
    shutil.copytree(campus_tree, root)
    image = root / "Camera1" / "campus4-c1-00352.png"
    cv2.imwrite(str(image), np.zeros((360, 640, 3), np.uint8))
    _one_line_error(["eval", "campus", "--gt", str(root), "--frames", "350-355", *ckpt], capsys, "640x360", "360x288")
