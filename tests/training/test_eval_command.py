"""``selfpose3d eval`` end to end and the evaluation composition."""

from __future__ import annotations

import json

import numpy as np
import pytest

from app.cli import main
from training.datasets.panoptic import index_frames
from training.evaluate import evaluate_panoptic
from training.results_io import Predictions, save_predictions


def _gt_predictions(frames, offset_mm=0.0, with_sequences=True):
    M = max(len(f.bodies) for f in frames)
    poses = np.zeros((len(frames), M, 15, 5))
    valid = np.zeros((len(frames), M), bool)
    roots = np.zeros((len(frames), M, 3))
    for i, f in enumerate(frames):
        g, _ = f.gt_arrays()
        poses[i, : len(g), :, :3] = g + offset_mm
        poses[i, : len(g), :, 4] = 0.9
        roots[i, : len(g)] = g[:, 2]
        valid[i, : len(g)] = True
    seqs = np.array([f.sequence for f in frames]) if with_sequences else None
    return Predictions(poses, np.array([f.frame for f in frames]), valid, poses[:, :, 0, 4], roots, "panoptic15", seqs)


@pytest.mark.data
def test_panoptic_eval_on_real_gt(shared_data, tmp_path, capsys):
    root = shared_data / "panoptic_body3d_samples"
    seqs = ["160906_band1", "160906_band2"]
    frames = index_frames(root, "validation", sequences=seqs, interval=1)
    m = evaluate_panoptic(_gt_predictions(frames), frames)
    assert m["num_gt"] == 12 and m["ap25"] == pytest.approx(1.0, abs=1e-4) and m["mpjpe_mm"] == pytest.approx(0.0)
    assert m["root_ap25"] == pytest.approx(1.0, abs=1e-4)
    off = evaluate_panoptic(_gt_predictions(frames, offset_mm=30.0 / np.sqrt(3)), frames)
    assert off["ap25"] == 0.0 and off["ap50"] == pytest.approx(1.0, abs=1e-4) and off["mpjpe_mm"] == pytest.approx(30.0)
    with pytest.raises(Exception, match="sequences"):
        evaluate_panoptic(_gt_predictions(frames, with_sequences=False), frames)
    pred_path = save_predictions(tmp_path / "p.npz", _gt_predictions(frames, offset_mm=30.0 / np.sqrt(3)))
    rc = main(
        [
            "eval",
            "panoptic",
            "--predictions",
            str(pred_path),
            "--gt",
            str(root),
            "--sequences",
            *seqs,
            "--interval",
            "1",
            "--metrics",
            str(tmp_path / "m.json"),
        ]
    )
    assert rc == 0
    saved = json.loads((tmp_path / "m.json").read_text())
    assert {"mpjpe_mm", "ap25", "ap150", "recall500"} <= set(saved) and saved["ap25"] == 0.0
    assert "AP50=1.0000" in capsys.readouterr().out


@pytest.mark.data
def test_shelf_eval_command(shared_data, tmp_path, capsys):
    rc = main(
        [
            "eval",
            "shelf",
            "--predictions",
            str(shared_data / "shelf" / "pred_4dassoc_coco17.npz"),
            "--gt",
            str(shared_data / "shelf"),
            "--metrics",
            str(tmp_path / "s.json"),
        ]
    )
    assert rc == 0
    out = capsys.readouterr().out
    assert "Total" in out and "96.07" in out
    saved = json.loads((tmp_path / "s.json").read_text())
    assert round(saved["pcp_average"], 2) == 96.07 and round(saved["actor_pcp"]["Actor2"], 2) == 90.27


def test_unsupported_combinations_are_one_line_errors(capsys):
    for argv, says in (
        (["eval", "campus", "--checkpoint", "model.pt", "--predictions", "p.npz"], "pass one of them"),
        (["eval", "panoptic", "--engine", "triangulate"], "shelf only"),
        (["eval", "shelf", "--engine", "triangulate", "--checkpoint", "m.pt"], "no model"),
        (["eval", "campus"], "--predictions FILE or --checkpoint MODEL is required"),
    ):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert says in err and len(err.strip().splitlines()) == 1 and "not built" not in err


@pytest.mark.data
def test_shelf_triangulate_engine_on_a_slice(shared_data, tmp_path, capsys):
    """Frames 520-549 (actors 1, 2, 4): measured A1 92.3, A2 91.1, A4 82.6 PCP; body MPJPE 44 / 61 mm."""
    shelf = shared_data / "shelf"
    preds, metrics = tmp_path / "tri.npz", tmp_path / "tri.json"
    rc = main(
        [
            "eval",
            "shelf",
            "--engine",
            "triangulate",
            "--gt",
            str(shelf),
            "--frames",
            "520-549",
            "--save-predictions",
            str(preds),
            "--metrics",
            str(metrics),
        ]
    )
    assert rc == 0 and "coco17 head rule" in capsys.readouterr().out
    m = json.loads(metrics.read_text())
    assert m["actor_pcp"]["Actor1"] >= 90.0 and m["actor_pcp"]["Actor2"] >= 88.0 and m["actor_pcp"]["Actor4"] >= 78.0
    assert m["recall500"] == 1.0
    assert m["body_mpjpe_mm"]["Actor1"] < 55.0 and m["body_mpjpe_mm"]["Actor2"] < 70.0
    assert m["coco17"]["actor_pcp"]["Actor1"] >= 94.0
    # The saved file is in the learned route's format and re-scores to the same figures.
    with np.load(preds) as z:
        assert z["poses"].shape[2:] == (15, 5) and z["valid"].shape == z["poses"].shape[:2] and "roots" in z
    assert (
        main(
            [
                "eval",
                "shelf",
                "--predictions",
                str(preds),
                "--gt",
                str(shelf),
                "--frames",
                "520-549",
                "--metrics",
                str(tmp_path / "re.json"),
            ]
        )
        == 0
    )
    assert json.loads((tmp_path / "re.json").read_text())["pcp_average"] == pytest.approx(m["pcp_average"])


def test_eval_synthetic_scores_a_checkpoint_and_names_the_train_command(tmp_path, capsys, monkeypatch):
    import training.ssl.synthetic_eval as se
    from engine.checkpoints import save_checkpoint
    from engine.config import load_preset
    from engine.model import build_model

    monkeypatch.setattr(se, "DEFAULT_MODEL", tmp_path / "absent.pt")
    assert main(["eval", "synthetic"]) == 2
    assert "selfpose3d train --stage all --recipe light" in capsys.readouterr().err
    ckpt = save_checkpoint(tmp_path / "untrained.pt", build_model(load_preset("light")))
    rc = main(
        ["eval", "synthetic", "--checkpoint", str(ckpt), "--max-frames", "2", "--metrics", str(tmp_path / "m.json")]
    )
    assert rc == 0
    saved = json.loads((tmp_path / "m.json").read_text())
    assert {"mpjpe_mm", "ap25", "ap100", "ap150", "recall500"} <= set(saved)
    assert saved["ap100"] == 0.0  # random weights find nobody within 100 mm


def test_bad_prediction_file_is_a_one_line_error(tmp_path, capsys):
    bad = tmp_path / "bad.npz"
    np.savez(bad, something=np.zeros(3))
    assert main(["eval", "shelf", "--predictions", str(bad), "--gt", str(tmp_path)]) == 2
    assert "lacks 'poses'" in capsys.readouterr().err


@pytest.mark.data
def test_panoptic_gt_pickle_matches_json_index(shared_data, tmp_path):
    import pickle

    from training.datasets.panoptic import read_gt_pickle

    root = shared_data / "panoptic_body3d_samples"
    frames = index_frames(root, "validation", sequences=["160906_band1", "160906_band2"], interval=1)
    db = []
    for f in frames:
        g, v = f.gt_arrays()
        for cam in ("00_03", "00_06"):  # the 3D GT repeats per camera entry
            db.append(
                {
                    "key": f"{f.sequence}_{cam}_{f.frame:08d}",
                    "joints_3d": list(g),
                    "joints_3d_vis": [np.repeat(x[:, None], 3, 1) for x in v],
                }
            )
    path = tmp_path / "group_validation_cam5_sub.pkl"
    path.write_bytes(pickle.dumps({"sequence_list": [], "interval": 12, "cam_list": [], "db": db}))
    back = read_gt_pickle(path)
    assert [(f.sequence, f.frame) for f in back] == [(f.sequence, f.frame) for f in frames]
    for a, b in zip(back, frames):
        np.testing.assert_allclose(a.gt_arrays()[0], b.gt_arrays()[0])
        np.testing.assert_array_equal(a.gt_arrays()[1], b.gt_arrays()[1])
    pred = save_predictions(tmp_path / "p.npz", _gt_predictions(frames))
    assert (
        main(["eval", "panoptic", "--predictions", str(pred), "--gt", str(path), "--metrics", str(tmp_path / "m.json")])
        == 0
    )
    assert json.loads((tmp_path / "m.json").read_text())["ap25"] == pytest.approx(1.0, abs=1e-4)
