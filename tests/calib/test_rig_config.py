"""Rig YAML: the committed rigs, load/save round trips, inline calibration, overrides, bad input,
and the ``selfpose3d rig`` command."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from calib.common.paths import REPO_ROOT
from calib.camera import CalibrationError
from calib.configkit import ConfigError
from calib.io import save_calibration
from calib.io_panoptic import load_panoptic_calibration
from calib.io_voxelpose import load_voxelpose_calibration
from calib.rig_config import (
    CameraEntry,
    RigConfig,
    SourceConfig,
    SyntheticSpec,
    VolumeConfig,
    load_rig,
    save_rig,
)
from calib.volume import point_views, volume_corners_mm

REPO = REPO_ROOT
RIGS = [REPO / "configs/rig.yaml", REPO / "configs/rigs/panoptic_hd5.yaml", REPO / "configs/rigs/shelf.yaml"]


def _write(path: Path, data: dict) -> Path:
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def test_embedded_default_rig():
    rig = load_rig(REPO / "configs/rig.yaml")
    cfg = rig.config
    assert cfg.name == "synthetic5" and cfg.skeleton == "panoptic15"
    assert rig.names == ["00_03", "00_06", "00_12", "00_13", "00_23"]
    assert all(e.source.kind == "synthetic" for e in cfg.cameras)
    assert cfg.volume == VolumeConfig((0.0, -500.0, 800.0), (8000.0, 8000.0, 2000.0))
    assert cfg.synthetic == SyntheticSpec(seed=0, people=3, fps=15.0)
    # Self-contained: the calibration lives inside the repository.
    assert Path(cfg.calibration.path).resolve().is_relative_to(REPO)
    # Intrinsics are the full-HD ones scaled by 1/3 (rows 0-1), distortion and pose unchanged.
    full = load_panoptic_calibration(REPO / "configs/calibration/panoptic_160906_hd5.json")
    for small, big in zip(rig.cameras, full):
        assert small.resolution == (640, 360) and big.resolution == (1920, 1080)
        np.testing.assert_allclose(small.K[:2], big.K[:2] / 3, rtol=1e-15)
        np.testing.assert_array_equal(small.dist, big.dist)
        np.testing.assert_array_equal(small.R, big.R)
        np.testing.assert_array_equal(small.t_mm, big.t_mm)


@pytest.mark.data
def test_committed_calibrations_equal_the_shared_originals(shared_data):
    hd5 = load_rig(REPO / "configs/rigs/panoptic_hd5.yaml").cameras
    band1 = load_panoptic_calibration(
        shared_data / "panoptic_body3d_samples/160906_band1/calibration_160906_band1.json"
    )
    assert hd5.names == band1.names
    for a, b in zip(hd5, band1):
        for f in ("K", "dist", "R", "t_mm"):
            np.testing.assert_array_equal(getattr(a, f), getattr(b, f))
    shelf = load_rig(REPO / "configs/rigs/shelf.yaml").cameras
    orig = load_voxelpose_calibration(shared_data / "shelf/calibration_voxelpose.json", image_size=(1032, 776))
    np.testing.assert_array_equal(shelf.K, orig.K)
    np.testing.assert_array_equal(shelf.t_mm, orig.t_mm)


@pytest.mark.parametrize("path", RIGS, ids=lambda p: p.name)
def test_committed_rigs_see_their_volume(path):
    rig = load_rig(path)
    views = point_views(rig.cameras, rig.volume.center_mm)
    assert all(v.visible for v in views), views
    corners = volume_corners_mm(rig.volume.center_mm, rig.volume.size_mm)
    np.testing.assert_allclose(corners.min(0), rig.volume.min_mm)
    np.testing.assert_allclose(corners.max(0), rig.volume.max_mm)


def test_save_load_round_trip_keeps_everything(tmp_path):
    rig = load_rig(REPO / "configs/rigs/shelf.yaml")
    out = save_rig(rig, tmp_path / "copy.yaml")
    back = load_rig(out)
    assert back.config.name == "shelf" and back.volume == rig.volume
    assert [e.source for e in back.config.cameras] == [e.source for e in rig.config.cameras]
    assert back.config.calibration is None  # calibration is inline now
    for a, b in zip(rig.cameras, back.cameras):
        for f in ("K", "dist", "R", "t_mm"):
            np.testing.assert_array_equal(getattr(a, f), getattr(b, f))
        assert a.resolution == b.resolution
    # A second round trip is byte-identical.
    again = save_rig(back, tmp_path / "again.yaml")
    assert again.read_text() == out.read_text()


def test_save_bare_camera_rig(toy_rig, tmp_path):
    path = save_rig(toy_rig, tmp_path / "toy.yaml", volume=VolumeConfig((0, 0, 900), (4000, 4000, 2000)))
    rig = load_rig(path)
    assert rig.name == "toy" and rig.names == toy_rig.names
    assert rig.volume.center_mm == (0.0, 0.0, 900.0)
    np.testing.assert_allclose(rig.cameras.t_mm, toy_rig.t_mm, atol=0)


def test_overrides(tmp_path):
    rig = load_rig(REPO / "configs/rig.yaml", ["volume.center_mm=[0,0,900]", "synthetic.people=5"])
    assert rig.volume.center_mm == (0.0, 0.0, 900.0) and rig.config.synthetic.people == 5
    with pytest.raises(ConfigError, match=r"rig\.yaml: .*synthetic.peeple: unknown key \(did you mean 'people'\?\)"):
        load_rig(REPO / "configs/rig.yaml", ["synthetic.peeple=5"])


def _calib_file(toy_rig, tmp_path) -> Path:
    return save_calibration(toy_rig, tmp_path / "cams.json", "panoptic")


def test_relative_paths_renaming_and_all_cameras(toy_rig, tmp_path):
    _calib_file(toy_rig, tmp_path)
    rig = load_rig(
        _write(
            tmp_path / "r.yaml",
            {
                "name": "r",
                "calibration": {"path": "cams.json", "cameras": ["cam2", "cam0"]},
                "cameras": [
                    {"name": "left", "source": {"kind": "file", "uri": "videos/left.mp4", "loop": True}},
                    {"name": "right", "source": {"kind": "stream", "uri": "rtsp://10.0.0.2/1"}},
                ],
            },
        )
    )
    assert rig.names == ["left", "right"]
    np.testing.assert_array_equal(rig.cameras["left"].R, toy_rig["cam2"].R)
    assert rig.source("left").uri == str((tmp_path / "videos/left.mp4").resolve())
    assert rig.source("right").uri == "rtsp://10.0.0.2/1"
    everything = load_rig(_write(tmp_path / "all.yaml", {"name": "all", "calibration": {"path": "cams.json"}}))
    assert everything.names == toy_rig.names
    assert [e.name for e in everything.config.cameras] == toy_rig.names


def test_inline_calibration_alone_and_over_a_file(toy_rig, tmp_path):
    _calib_file(toy_rig, tmp_path)
    c0 = toy_rig["cam0"]
    rig = load_rig(
        _write(
            tmp_path / "inline.yaml",
            {
                "name": "inline",
                "calibration": {"path": "cams.json"},
                "cameras": [
                    {"name": "cam0", "calibration": {"dist": [0.0, 0.0, 0.0, 0.0, 0.0]}},
                    {"name": "cam1", "calibration": {"width": 640, "height": 360}},
                    {"name": "cam3", "calibration": {"center_mm": [0.0, -4000.0, 1800.0]}},
                ],
            },
        )
    )
    np.testing.assert_array_equal(rig.cameras["cam0"].dist, np.zeros(5))
    np.testing.assert_array_equal(rig.cameras["cam0"].K, c0.K)
    np.testing.assert_allclose(rig.cameras["cam1"].K[:2], toy_rig["cam1"].K[:2] / 2)
    np.testing.assert_allclose(rig.cameras["cam3"].center_mm, [0.0, -4000.0, 1800.0], atol=1e-9)
    alone = load_rig(
        _write(
            tmp_path / "alone.yaml",
            {
                "name": "alone",
                "cameras": [
                    {
                        "name": n,
                        "calibration": {
                            "width": 1280,
                            "height": 720,
                            "K": c.K.tolist(),
                            "R": c.R.tolist(),
                            "t_mm": c.t_mm.tolist(),
                        },
                    }
                    for n, c in (("a", toy_rig[0]), ("b", toy_rig[1]))
                ],
            },
        )
    )
    np.testing.assert_array_equal(alone.cameras["b"].t_mm, toy_rig[1].t_mm)
    np.testing.assert_array_equal(alone.cameras["a"].dist, np.zeros(5))


def test_missing_camera_in_calibration_file(toy_rig, tmp_path):
    _calib_file(toy_rig, tmp_path)
    with pytest.raises(
        CalibrationError, match=r"cams\.json: no camera named 'cam7'.*cameras in the file: \['cam0', 'cam1'"
    ):
        load_rig(
            _write(
                tmp_path / "m.yaml",
                {"name": "m", "calibration": {"path": "cams.json"}, "cameras": [{"name": "cam0"}, {"name": "cam7"}]},
            )
        )
    with pytest.raises(CalibrationError, match=r"nothere\.json: calibration file not found"):
        load_rig(_write(tmp_path / "n.yaml", {"name": "n", "calibration": {"path": "nothere.json"}}))


def test_inline_errors(toy_rig, tmp_path):
    c = toy_rig[0]
    with pytest.raises(
        CalibrationError, match=r"x\.yaml: cameras\[0\] \('a'\)\.calibration: camera 'a' .* needs \['K'"
    ):
        load_rig(
            _write(
                tmp_path / "x.yaml",
                {
                    "name": "x",
                    "cameras": [
                        {
                            "name": "a",
                            "calibration": {"width": 10, "height": 10, "R": np.eye(3).tolist(), "t_mm": [0, 0, 0]},
                        }
                    ],
                },
            )
        )
    with pytest.raises(CalibrationError, match=r"y\.yaml: camera 'b' has no calibration"):
        load_rig(_write(tmp_path / "y.yaml", {"name": "y", "cameras": [{"name": "b"}]}))
    bad_R = (c.R * 1.2).tolist()
    with pytest.raises(
        CalibrationError, match=r"z\.yaml: cameras\[0\] \('a'\)\.calibration: camera 'a': field 'R' is not a rotation"
    ):
        load_rig(
            _write(
                tmp_path / "z.yaml",
                {
                    "name": "z",
                    "cameras": [
                        {
                            "name": "a",
                            "calibration": {
                                "width": 10,
                                "height": 10,
                                "K": c.K.tolist(),
                                "R": bad_R,
                                "t_mm": [0, 0, 0],
                            },
                        }
                    ],
                },
            )
        )
    metres = [
        {
            "name": n,
            "calibration": {
                "width": 1280,
                "height": 720,
                "K": cam.K.tolist(),
                "R": cam.R.tolist(),
                "t_mm": (cam.t_mm / 1000).tolist(),
            },
        }
        for n, cam in (("a", toy_rig[0]), ("b", toy_rig[2]))
    ]
    with pytest.raises(CalibrationError, match=r"m\.yaml: .*units cannot be right"):
        load_rig(_write(tmp_path / "m.yaml", {"name": "m", "cameras": metres}))
    with pytest.raises(ConfigError, match=r"cameras\[0\].calibration.K\[1\]: expected 3 items"):
        load_rig(
            _write(
                tmp_path / "k.yaml",
                {"name": "k", "cameras": [{"name": "a", "calibration": {"K": [[1, 0, 0], [0, 1], [0, 0, 1]]}}]},
            )
        )


def test_config_errors_name_file_and_field(tmp_path):
    (tmp_path / "q.yaml").write_text("name: q\ncameras:\n  - {name: 00_23, source: {kind: synthetic}}\n")
    with pytest.raises(ConfigError, match=r"q\.yaml: cameras\[0\]\.name = 19: .*quote them"):
        load_rig(tmp_path / "q.yaml")
    with pytest.raises(ConfigError, match=r"s\.yaml: cameras\[0\]\.source: uri: a 'file' source needs uri"):
        load_rig(_write(tmp_path / "s.yaml", {"name": "s", "cameras": [{"name": "a", "source": {"kind": "file"}}]}))
    with pytest.raises(ConfigError, match=r"kind: 'webcam' is not one of"):
        load_rig(_write(tmp_path / "w.yaml", {"name": "w", "cameras": [{"name": "a", "source": {"kind": "webcam"}}]}))
    with pytest.raises(ConfigError, match=r"v\.yaml: volume.*size_mm.*millimetres"):
        load_rig(
            _write(tmp_path / "v.yaml", {"name": "v", "volume": {"size_mm": [8, 8, 2]}, "cameras": [{"name": "a"}]})
        )
    with pytest.raises(ConfigError, match=r"d\.yaml: .*duplicate camera names \['a'\]"):
        load_rig(_write(tmp_path / "d.yaml", {"name": "d", "cameras": [{"name": "a"}, {"name": "a"}]}))
    with pytest.raises(ConfigError, match=r"c\.yaml: camera: unknown key \(did you mean 'cameras'\?\)"):
        load_rig(_write(tmp_path / "c.yaml", {"name": "c", "camera": []}))
    (tmp_path / "broken.yaml").write_text("name: [unclosed\n")
    with pytest.raises(ConfigError, match=r"broken\.yaml: not valid YAML"):
        load_rig(tmp_path / "broken.yaml")
    with pytest.raises(ConfigError, match=r"skeleton"):
        RigConfig(name="x", cameras=(CameraEntry("a"),), skeleton="coco99")
    with pytest.raises(ConfigError, match=r"fps"):
        SourceConfig(kind="device", fps=0.0)


def test_rig_command_inspects_checks_and_converts(tmp_path, capsys):
    from app.cli import main

    assert main(["rig"]) == 0
    out = capsys.readouterr().out
    assert "synthetic5" in out and "00_23" in out and "640x360" in out and "check ok" in out
    target = tmp_path / "default.toml"
    assert main(["rig", str(REPO / "configs/rig.yaml"), "--convert", str(target), "--format", "anipose"]) == 0
    from calib.io_anipose import load_anipose_toml

    assert load_anipose_toml(target).names == load_rig(REPO / "configs/rig.yaml").names
    # The volume moved behind every camera's back: the check fails.
    assert main(["rig", str(REPO / "configs/rig.yaml"), "--set", "volume.center_mm=[0,0,-1000000.0]"]) == 1
    assert "NOT SEEN" in capsys.readouterr().out
    # A calibration file is accepted too, and converts into a rig YAML.
    calib = tmp_path / "c.json"
    calib.write_text(json.dumps(json.loads((REPO / "configs/calibration/shelf_voxelpose.json").read_text())))
    assert (
        main(
            [
                "rig",
                str(calib),
                "--image-size",
                "1032",
                "776",
                "--cameras",
                "4,0",
                "--convert",
                str(tmp_path / "shelf.yaml"),
            ]
        )
        == 0
    )
    assert load_rig(tmp_path / "shelf.yaml").names == ["4", "0"]
    assert main(["rig", str(calib)]) == 2  # VoxelPose JSON needs --image-size: one clear error line
    assert "pass image_size" in capsys.readouterr().err
    assert main(["rig", str(calib), "--image-size", "1032", "776", "--set", "volume.size_mm=[1,1,1]"]) == 2
    assert "--set applies to rig YAML files" in capsys.readouterr().err


def test_saved_path_sources_inside_the_folder_become_relative(toy_rig, tmp_path):
    inside = SourceConfig(kind="file", uri=str(tmp_path / "sub" / "a.mp4"))
    outside = SourceConfig(kind="images", uri="/elsewhere/frames")
    session = SourceConfig(kind="session", uri=".")
    others = [SourceConfig(kind="device", index=1), SourceConfig()]
    path = save_rig(toy_rig, tmp_path / "rig.yaml", sources=[inside, outside, session, others[0]])
    text = path.read_text()
    assert "uri: sub/a.mp4" in text and "uri: /elsewhere/frames" in text
    rig = load_rig(path)
    assert rig.source("cam0").uri == str(tmp_path / "sub" / "a.mp4")
    assert rig.source("cam2").uri == str(tmp_path.resolve())
    assert rig.source("cam3").index == 1
    with pytest.raises(ConfigError, match=r"2 sources given for 4 cameras"):
        save_rig(toy_rig, tmp_path / "bad.yaml", sources=others)
