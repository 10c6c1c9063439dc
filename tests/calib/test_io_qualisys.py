"""Qualisys ``.qca.txt`` and Pose2Sim ``Calib.toml`` imports (issue 23 item 5).

The real-data tests read Pose2Sim's demo calibration and compare our cameras with an independent
reading written here: the XML parsed with ElementTree and converted with the formulas of Pose2Sim's
own ``calib_qca_fun`` (column-major read, inversion, a rotation by pi about the camera x axis, in
metres), projected with ``cv2.projectPoints``; and with the numbers Pose2Sim ships in its own
``Calib.toml`` for this calibration (S00_Demo_BatchSession/S00_Calibration/Calib.toml, cam_01).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

from calib.camera import CalibrationError, Camera, CameraRig
from calib.io import load_calibration, save_calibration, sniff_format
from calib.io_anipose import load_anipose_toml, load_pose2sim_toml, save_pose2sim_toml, toml_flavour
from calib.io_qualisys import load_qualisys_qca, save_qualisys_qca
from calib.projection import depth_mm, in_image, project_points

REPO = Path(__file__).resolve().parents[2]
DEMOS = ("Demo_MultiPerson", "Demo_SinglePerson")


def _qca(shared_data: Path, demo: str = "Demo_MultiPerson") -> Path:
    return shared_data / "pose2sim_demos" / demo / "calibration" / "Calib.qca.txt"


def _pose2sim_reading(path: Path) -> dict[str, dict]:
    """Pose2Sim's reading of a .qca.txt, re-derived from its formulas (metres, OpenCV convention)."""
    root = ET.parse(path).getroot()
    out = {}
    for cam in root.findall("cameras/camera"):
        fov = {k: float(v) for k, v in cam.find("fov_video").attrib.items()}
        intr = {k: float(v) for k, v in cam.find("intrinsic").attrib.items() if k != "model"}
        tr = {k: float(v) for k, v in cam.find("transform").attrib.items()}
        size = (fov["right"] - fov["left"] + 1, fov["bottom"] - fov["top"] + 1)
        K = np.array(
            [
                [intr["focalLengthU"] / 64, 0, intr["centerPointU"] / 64 - fov["left"]],
                [0, intr["focalLengthV"] / 64, intr["centerPointV"] / 64 - fov["top"]],
                [0, 0, 1.0],
            ]
        )
        D = (
            np.array(
                [
                    intr["radialDistortion1"],
                    intr["radialDistortion2"],
                    intr["tangentalDistortion1"],
                    intr["tangentalDistortion2"],
                ]
            )
            / 64
        )
        # "by-column to by-line": the camera->world rotation of the Qualisys camera.
        r_obj = np.array([tr[f"r{i}{j}"] for i in (1, 2, 3) for j in (1, 2, 3)]).reshape(3, 3).T
        c_m = np.array([tr["x"], tr["y"], tr["z"]]) / 1000
        r, t = r_obj.T, -r_obj.T @ c_m  # world_to_camera_persp
        flip = np.array([[1, 0, 0], [0, np.cos(np.pi), -np.sin(np.pi)], [0, np.sin(np.pi), np.cos(np.pi)]])
        out[cam.attrib["serial"]] = {"size": size, "K": K, "D": D, "R": flip @ r, "t_m": flip @ t}
    return out


@pytest.mark.data
@pytest.mark.parametrize("demo", DEMOS)
def test_qca_matches_pose2sim_reading_and_opencv(shared_data, demo):
    import cv2

    path = _qca(shared_data, demo)
    rig = load_qualisys_qca(path)
    ref = _pose2sim_reading(path)
    assert rig.names == ["cam01", "cam02", "cam03", "cam04"]
    rng = np.random.default_rng(0)
    # Points on and above the treadmill (world mm, z up).
    points_mm = np.column_stack([rng.uniform(-1500, 300, 50), rng.uniform(-600, 600, 50), rng.uniform(-130, 1900, 50)])
    for cam in rig:
        exp = ref[cam.name]
        assert cam.resolution == exp["size"] == (1088, 1920)
        np.testing.assert_allclose(cam.K, exp["K"], rtol=1e-12)
        np.testing.assert_allclose(cam.dist, np.r_[exp["D"], 0.0], atol=1e-15)
        np.testing.assert_allclose(cam.R, exp["R"], atol=1e-12)
        np.testing.assert_allclose(cam.t_mm / 1000, exp["t_m"], atol=1e-9)
        rvec = cv2.Rodrigues(exp["R"])[0]
        uv_cv = cv2.projectPoints(points_mm / 1000, rvec, exp["t_m"], exp["K"], exp["D"])[0].reshape(-1, 2)
        np.testing.assert_allclose(project_points(points_mm, cam), uv_cv, atol=1e-6)


@pytest.mark.data
def test_qca_matches_pose2sims_own_calib_toml(shared_data, tmp_path):
    """cam_01 of the Calib.toml Pose2Sim ships for this calibration (metres, Rodrigues)."""
    cam = load_qualisys_qca(_qca(shared_data))["cam01"]
    toml = tmp_path / "Calib.toml"
    toml.write_text(
        '[cam_01]\nname = "cam_01"\nsize = [ 1088.0, 1920.0]\n'
        "matrix = [ [ 1681.244873046875, 0.0, 532.97369384375], [ 0.0, 1681.075439453125, 948.137390140625], [ 0.0, 0.0, 1.0]]\n"
        "distortions = [ -0.000721609375, 0.002187234375, 9.5e-06, 1.078125e-05]\n"
        "rotation = [ 1.6882754799999993, 1.0483220499999997, -0.41955852000000016]\n"
        "translation = [ 0.32110488999999953, 0.9563320600000009, 2.8907130499999996]\n"
        "fisheye = false\n\n[metadata]\nadjusted = false\nerror = 0.0\n"
    )
    theirs = load_calibration(toml, "pose2sim")["cam_01"]
    np.testing.assert_allclose(cam.K, theirs.K, rtol=1e-12)
    np.testing.assert_allclose(cam.dist, theirs.dist, atol=1e-15)
    np.testing.assert_allclose(cam.R, theirs.R, atol=1e-9)
    np.testing.assert_allclose(cam.t_mm, theirs.t_mm, atol=1e-6)


@pytest.mark.data
def test_qca_floor_near_the_origin_is_seen_by_every_camera(shared_data):
    rig = load_qualisys_qca(_qca(shared_data))
    xs, ys = np.meshgrid(np.linspace(-1500, 0, 7), np.linspace(-600, 600, 5))
    for z in (0.0, -130.0):  # treadmill deck, floor
        floor = np.column_stack([xs.ravel(), ys.ravel(), np.full(xs.size, z)])
        for cam in rig:
            uv = project_points(floor, cam)
            assert np.all(depth_mm(floor, cam) > 1000), cam.name
            assert np.all(in_image(uv, cam)), (cam.name, z, uv[~in_image(uv, cam)])
    # A point 1 m above the deck projects above (smaller v) the deck point below it: z is up.
    for cam in rig:
        assert project_points(np.array([-500.0, 0, 1000]), cam)[1] < project_points(np.array([-500.0, 0, 0]), cam)[1]


@pytest.mark.data
@pytest.mark.parametrize("name", ["pose2sim_multiperson", "pose2sim_singleperson"])
def test_pose2sim_rigs_load_with_their_videos(shared_data, name):
    import cv2

    from calib.rig_config import load_rig
    from calib.volume import point_views, volume_corners_mm

    rig = load_rig(REPO / "configs" / "rigs" / f"{name}.yaml")
    assert rig.names == ["cam01", "cam02", "cam03", "cam04"]
    assert all(v.visible for v in point_views(rig.cameras, rig.volume.center_mm))
    corners = volume_corners_mm(rig.volume.center_mm, rig.volume.size_mm)
    assert all(v.depth_mm > 0 for c in corners for v in point_views(rig.cameras, c))
    assert rig.volume.min_mm[2] <= -130 and rig.volume.max_mm[2] >= 1900  # floor to above a head
    widths = []
    for entry in rig.config.cameras:
        assert entry.source.kind == "file" and Path(entry.source.uri).is_file(), entry.source.uri
        cap = cv2.VideoCapture(entry.source.uri)
        widths.append((int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))))
        cap.release()
    if name == "pose2sim_multiperson":
        assert widths == [c.resolution for c in rig.cameras]
    else:  # the demo's known mismatch, kept on purpose
        assert widths[:2] == [(1080, 1920)] * 2 and rig.cameras[0].resolution == (1088, 1920)


@pytest.mark.data
def test_rig_command_converts_qca_to_pose2sim_and_back(shared_data, tmp_path, capsys):
    from app.cli import main

    qca = _qca(shared_data)
    assert main(["rig", str(qca), "--convert", str(tmp_path / "Calib.toml"), "--format", "pose2sim"]) == 0
    assert "wrote" in capsys.readouterr().out
    assert sniff_format(tmp_path / "Calib.toml") == "pose2sim"
    assert main(["rig", str(tmp_path / "Calib.toml"), "--convert", str(tmp_path / "back.qca.txt")]) == 0
    a, b = load_qualisys_qca(qca), load_calibration(tmp_path / "back.qca.txt")
    for ca, cb in zip(a, b):
        np.testing.assert_allclose(cb.K, ca.K, rtol=1e-12)
        np.testing.assert_allclose(cb.t_mm, ca.t_mm, atol=1e-6)
        np.testing.assert_allclose(cb.R, ca.R, atol=1e-9)


# ---------------------------------------------------------------- no real data needed below


def _assert_same(a: CameraRig, b: CameraRig, atol_t: float = 1e-9) -> None:
    assert a.names == b.names
    for ca, cb in zip(a, b):
        assert ca.resolution == cb.resolution
        np.testing.assert_allclose(cb.K, ca.K, rtol=1e-12)
        np.testing.assert_allclose(cb.dist, ca.dist, atol=1e-15)
        np.testing.assert_allclose(cb.R, ca.R, atol=1e-12)
        np.testing.assert_allclose(cb.t_mm, ca.t_mm, atol=atol_t)


def test_qca_round_trip_and_sniffing(toy_rig, tmp_path):
    path = save_calibration(toy_rig, tmp_path / "rig.qca.txt")
    assert sniff_format(path) == "qualisys"
    assert "tangentalDistortion1" in path.read_text() and 'model="none"' in path.read_text()
    _assert_same(toy_rig, load_calibration(path))
    renamed = path.rename(tmp_path / "rig.xml")  # QTM exports are XML whatever the suffix
    assert sniff_format(renamed) == "qualisys"


def test_pose2sim_toml_round_trip_metres_and_sniffing(toy_rig, tmp_path):
    path = save_pose2sim_toml(toy_rig, tmp_path / "Calib.toml")
    text = path.read_text()
    assert "[cam_1]" in text and "units" not in text and "fisheye = false" in text
    assert toml_flavour(path) == "pose2sim" and sniff_format(path) == "pose2sim"
    _assert_same(toy_rig, load_pose2sim_toml(path), atol_t=1e-9)
    _assert_same(toy_rig, load_calibration(path), atol_t=1e-9)  # auto
    # Read as anipose (mm) it fails with one line naming the fix.
    with pytest.raises(CalibrationError, match=r"Calib\.toml: field 'translation'.*metres.*format 'pose2sim'"):
        load_anipose_toml(path)
    # An anipose file in mm is not mistaken for Pose2Sim.
    mm = save_calibration(toy_rig, tmp_path / "calibration.toml", "anipose")
    assert sniff_format(mm) == "anipose"


def _qca_text(cameras: str) -> str:
    return f"<?xml version='1.0'?>\n<calibration><cameras>{cameras}</cameras></calibration>\n"


_CAM = (
    '<camera serial="{name}" model="{model}" {extra}><fov_video left="{left}" top="{top}" right="{right}" '
    'bottom="{bottom}"/><transform x="{x}" y="-3000" z="1500" r11="1" r12="0" r13="0" r21="0" r22="0" '
    'r23="1" r31="0" r32="-1" r33="0"/><intrinsic focalLengthU="64000" focalLengthV="64000" '
    'centerPointU="{cu}" centerPointV="{cv}" radialDistortion1="-6.4" radialDistortion2="1.28" '
    'radialDistortion3="0" tangentalDistortion1="0.064" tangentalDistortion2="-0.064"/></camera>'
)


def _cam(name="c1", model="none", extra="", left=0, top=0, right=1919, bottom=1079, cu=61440, cv=34560, x=0):
    return _CAM.format(
        name=name, model=model, extra=extra, left=left, top=top, right=right, bottom=bottom, cu=cu, cv=cv, x=x
    )


def test_qca_formulas_offsets_resolution_order_and_models(tmp_path):
    path = tmp_path / "x.qca.txt"
    path.write_text(
        _qca_text(
            _cam("cam10")
            + _cam("cam2", left=100, top=20, right=1379, bottom=739, x=500)
            + _cam("marker1", model="Oqus 7+", x=1000)
            + _cam("cam3", extra='video_resolution="540p"', x=1500)
        )
    )
    rig = load_qualisys_qca(path)
    assert rig.names == ["cam2", "cam3", "cam10"]  # natural order, marker camera left out
    full, window, half = rig["cam10"], rig["cam2"], rig["cam3"]
    assert full.resolution == (1920, 1080)
    np.testing.assert_allclose(full.K, [[1000, 0, 960], [0, 1000, 540], [0, 0, 1]])
    np.testing.assert_allclose(full.dist, [-0.1, 0.02, 0.001, -0.001, 0.0])
    # transform: centre (0, -3000, 1500); M's rows: Qualisys camera x = world x, its y = world z
    # (up), its z = world -y (it looks down its -z, i.e. along world +y).
    np.testing.assert_allclose(full.center_mm, [0, -3000, 1500])
    np.testing.assert_allclose(full.R, [[1, 0, 0], [0, 0, -1], [0, 1, 0]])
    # The camera looks along +y (towards the origin side) with world up = image up.
    assert depth_mm(np.array([0.0, 0, 1500]), full) == pytest.approx(3000)
    assert project_points(np.array([0.0, 0, 2500]), full)[1] < 540
    # fov_video window: size from the window, principal point minus its offset.
    assert window.resolution == (1280, 720)
    np.testing.assert_allclose(window.c, [960 - 100, 540 - 20])
    # video_resolution 540p halves size, focal length and principal point.
    assert half.resolution == (960, 540)
    np.testing.assert_allclose(half.K[:2], full.K[:2] / 2)
    # A marker camera can still be asked for by name; an unknown name lists the cameras.
    assert load_calibration(path, camera_names=["marker1"]).names == ["marker1"]
    with pytest.raises(CalibrationError, match="no camera named 'cam4'"):
        load_calibration(path, camera_names=["cam4"])


@pytest.mark.parametrize(
    "text, message",
    [
        ("<calibration><cameras>", r"x\.qca\.txt: not valid XML"),
        ("<opencv_storage/>", r"not a Qualisys calibration"),
        (_qca_text(""), r"holds no <camera>"),
        (
            _qca_text(_cam().replace('focalLengthV="64000"', "")),
            r"camera 'c1': <intrinsic> lacks attribute 'focalLengthV'",
        ),
        (_qca_text(_cam().replace('r11="1"', 'r11="2"')), r"camera 'c1'.*'transform r11\.\.r33' is not a rotation"),
        (_qca_text(_cam().replace('x="0"', 'x="abc"')), r"<transform x=\"abc\"> is not a number"),
        (_qca_text(_cam(model="Oqus 7+")), r"no video camera"),
        (_qca_text(_cam(extra='video_resolution="HD"')), r"video_resolution=\"HD\""),
    ],
)
def test_qca_errors_name_file_camera_and_field(tmp_path, text, message):
    path = tmp_path / "x.qca.txt"
    path.write_text(text)
    with pytest.raises(CalibrationError, match=message):
        load_qualisys_qca(path)


def test_qca_writer_refuses_skew(toy_rig, tmp_path):
    cam = toy_rig[0]
    K = cam.K.copy()
    K[0, 1] = 2.0
    skewed = CameraRig((Camera(cam.name, cam.width, cam.height, K, cam.dist, cam.R, cam.t_mm),))
    with pytest.raises(CalibrationError, match="no skew"):
        save_qualisys_qca(skewed, tmp_path / "s.qca.txt")


@pytest.mark.data
def test_a_rig_without_a_volume_sizes_one_from_the_cameras(shared_data, capsys):
    """The bare Qualisys file (no volume): the box the cameras see together covers both people."""
    from app.cli import main
    from calib.rig_config import Rig, RigConfig, CameraEntry
    from calib.volume import cameras_not_seeing, volume_from_cameras

    cams = load_calibration(_qca(shared_data))
    center, size = volume_from_cameras(cams)
    rig = Rig(RigConfig(name="bare", cameras=tuple(CameraEntry(c.name) for c in cams)), cams)
    assert rig.volume.center_mm == center and rig.volume_origin.startswith("sized from the cameras")
    lo, hi = np.subtract(center, np.divide(size, 2)), np.add(center, np.divide(size, 2))
    assert (lo[:2] < [-1500, -500]).all() and (hi[:2] > [0, 500]).all()  # the treadmill and the mats
    assert 1000 < size[0] < 8000 and 1000 < size[1] < 8000
    assert cameras_not_seeing(cams, center, size) == []
    assert main(["rig", str(_qca(shared_data))]) == 0
    assert "volume (sized from the cameras' common field of view)" in capsys.readouterr().out


def test_cameras_that_do_not_overlap_are_named(toy_rig):
    from calib.camera import CalibrationError
    from calib.volume import cameras_not_seeing, volume_from_cameras

    assert cameras_not_seeing(toy_rig, (1e6, 1e6, 0), (1000, 1000, 1000)) == list(toy_rig.names)
    a, b = toy_rig[0], toy_rig[2]  # facing each other across the room: they overlap
    assert cameras_not_seeing(CameraRig((a, b)), *volume_from_cameras(CameraRig((a, b)))) == []
    turn = np.diag([-1.0, 1.0, -1.0])  # both turned round: back to back, each looks out of the room
    with pytest.raises(CalibrationError, match="do not overlap"):
        volume_from_cameras(CameraRig(tuple(c.replace(R=turn @ c.R, t_mm=turn @ c.t_mm) for c in (a, b))))


@pytest.mark.data
def test_rig_from_a_calibration_and_a_videos_folder(shared_data, tmp_path, capsys):
    """`selfpose3d rig Calib.qca.txt --videos DIR --convert my.yaml`: a live-ready rig in one command."""
    from app.cli import main
    from calib.rig_config import load_rig

    videos = shared_data / "pose2sim_demos" / "Demo_MultiPerson" / "videos"
    out = tmp_path / "my.yaml"
    assert main(["rig", str(_qca(shared_data)), "--videos", str(videos), "--convert", str(out)]) == 0
    rig = load_rig(out)
    assert [rig.source(n).kind for n in rig.names] == ["file"] * 4
    assert [Path(rig.source(n).uri).name for n in rig.names] == ["cam01.mp4", "cam02.mp4", "cam03.mp4", "cam04.mp4"]
    assert "every source opens at its calibration's size" in capsys.readouterr().out
    (tmp_path / "few").mkdir()
    (tmp_path / "few" / "cam01.mp4").symlink_to(videos / "cam01.mp4")
    assert main(["rig", str(_qca(shared_data)), "--videos", str(tmp_path / "few"), "--convert", str(out)]) == 2
    assert "no video for camera(s) ['cam02', 'cam03', 'cam04']" in capsys.readouterr().err
