"""``selfpose3d predict`` end to end on a tiny checkpoint, both folder layouts, JSON and NPZ."""

from __future__ import annotations

import json

import cv2
import numpy as np

from app.cli import main
from calib.io import save_calibration
from engine.checkpoints import save_checkpoint
from engine.model import build_model

from .conftest import make_rig, tiny_config


def test_predict_writes_json_and_npz(tmp_path):
    rig = make_rig()
    calib = save_calibration(rig, tmp_path / "rig.yaml")
    ckpt = save_checkpoint(tmp_path / "tiny.pt", build_model(tiny_config()))
    rng = np.random.default_rng(0)
    multi = tmp_path / "multi"
    for cam in rig.names:
        (multi / cam).mkdir(parents=True)
        for frame in ("000001", "000002"):
            if cam == "cam3" and frame == "000002":
                continue  # a dropped view
            cv2.imwrite(str(multi / cam / f"{frame}.png"), rng.integers(0, 255, (360, 640, 3), dtype=np.uint8))
    out = tmp_path / "preds.json"
    rc = main(["predict", "--images", str(multi), "--calibration", str(calib), "--checkpoint", str(ckpt),
               "--out", str(out), "--device", "cpu"])
    assert rc == 0
    data = json.loads(out.read_text())
    assert data["cameras"] == rig.names and [f["frame"] for f in data["frames"]] == ["000001", "000002"]
    assert data["frames"][1]["views_present"] == [True, True, True, False, True]
    assert len(data["frames"][0]["proposals"]) == tiny_config().root_net.max_people

    single = tmp_path / "single"
    single.mkdir()
    for cam in rig.names[:4]:
        cv2.imwrite(str(single / f"{cam}.jpg"), rng.integers(0, 255, (360, 640, 3), dtype=np.uint8))
    npz = tmp_path / "preds.npz"
    rc = main(["predict", "--images", str(single), "--calibration", str(calib), "--cameras", *rig.names[:4],
               "--checkpoint", str(ckpt), "--out", str(npz), "--device", "cpu"])
    assert rc == 0
    arrays = np.load(npz)
    assert arrays["candidates"].shape == (1, tiny_config().root_net.max_people, 15, 5)
    assert list(arrays["cameras"]) == rig.names[:4]
