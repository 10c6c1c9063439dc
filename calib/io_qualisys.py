"""Qualisys ``.qca.txt`` calibration (the XML that QTM exports and Pose2Sim's demos ship).

Layout, one ``<camera>`` per camera (only what we read)::

    <calibration ...>
      <cameras>
        <camera serial="cam01" model="none" active="1" [video_resolution="1080p"]>
          <fov_video left="0" top="0" right="1087" bottom="1919"/>
          <transform x=".." y=".." z=".." r11=".." r12=".." ... r33=".."/>
          <intrinsic focalLengthU=".." focalLengthV=".." centerPointU=".." centerPointV=".."
                     radialDistortion1=".." radialDistortion2=".." radialDistortion3=".."
                     tangentalDistortion1=".." tangentalDistortion2=".."/>
        </camera>
      </cameras>
    </calibration>

Reading, as Pose2Sim's ``calib_qca_fun`` does (Pose2Sim is the reference reader of these files):

* image size = (right - left + 1) x (bottom - top + 1) of ``fov_video``;
* ``focalLength*`` and ``centerPoint*`` are in 1/64 sensor sub-pixels: f = value / 64, and the
  principal point is c = value / 64 minus the ``fov_video`` left/top offset;
* distortion k1 k2 k3 = ``radialDistortion1..3`` / 64, p1 p2 = ``tangentalDistortion1..2`` / 64
  (QTM's spelling). Pose2Sim drops k3; we keep it (zero in every file we have seen);
* ``video_resolution="540p"`` (Miqus video cameras recording below 1080p) scales the size, the
  focal lengths and the principal point by 540 / 1080;
* ``transform`` x y z is the camera **centre** in mm and r11..r33 a row-major rotation M
  (world -> Qualisys camera axes; Pose2Sim reads it column-major as the camera -> world rotation
  and inverts it, which is the same). Qualisys cameras look down their -z, so the world->camera
  rotation in OpenCV's convention is ``R = diag(1, -1, -1) @ M`` and ``t = -R @ centre``;
* ``skew`` is ignored (Pose2Sim ignores it too; zero in the demos);
* camera names: the ``serial`` attribute (``cam01`` in Pose2Sim's demos, a serial number in QTM
  exports); ``camNN`` (1-based, two digits) when a camera has none;
* cameras: by default those Pose2Sim keeps, the video cameras (``model`` "Miqus Video",
  "Miqus Video UnderWater" or "none"), in natural name order (cam2 before cam10); marker-only
  cameras can still be picked by name.

World frame: Qualisys's, millimetres, z up (in Pose2Sim's demos z = 0 is the treadmill deck).

:func:`save_qualisys_qca` writes the same layout back (model "none", the inverse formulas), so a rig
can be handed to tools that read ``.qca.txt``.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Sequence

import numpy as np

from calib.camera import CalibrationError, Camera, CameraRig
from calib.io_formats import check_rotation, check_units_mm, register_format, select_cameras

SUBPIXELS_PER_PX = 64.0
# Qualisys cameras look down their -z; OpenCV cameras down +z (x kept, y and z flipped).
QUALISYS_TO_OPENCV = np.diag([1.0, -1.0, -1.0])
VIDEO_MODELS = ("Miqus Video", "Miqus Video UnderWater", "none")
_R_KEYS = ("r11", "r12", "r13", "r21", "r22", "r23", "r31", "r32", "r33")
_REFERENCE_LINES_P = 1080.0  # video_resolution scales relative to 1080p


def natural_key(name: str) -> list:
    """Sort key that orders embedded numbers numerically (``cam2`` before ``cam10``)."""
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", name)]


def _float(node: ET.Element, key: str, where: str) -> float:
    if key not in node.attrib:
        raise CalibrationError(f"{where}: <{node.tag}> lacks attribute '{key}'")
    try:
        value = float(node.attrib[key])
    except ValueError:
        raise CalibrationError(f'{where}: <{node.tag} {key}="{node.attrib[key]}"> is not a number') from None
    if not np.isfinite(value):
        raise CalibrationError(f"{where}: <{node.tag} {key}> is NaN or inf")
    return value


def _child(camera: ET.Element, tag: str, where: str) -> ET.Element:
    node = camera.find(tag)
    if node is None:
        raise CalibrationError(f"{where}: missing <{tag}> element")
    return node


def _resolution_scale(camera: ET.Element, where: str) -> float:
    """Pixels per 1080p pixel from ``video_resolution`` (e.g. "540p" -> 0.5); 1 when absent."""
    text = camera.attrib.get("video_resolution")
    if text is None:
        return 1.0
    match = re.fullmatch(r"\s*(\d+)\s*p?\s*", text)
    if not match or int(match.group(1)) <= 0:
        raise CalibrationError(f"{where}: video_resolution=\"{text}\" is not like '1080p' or '540p'")
    return int(match.group(1)) / _REFERENCE_LINES_P


def _camera(camera: ET.Element, index: int, path: Path) -> Camera:
    name = camera.attrib.get("serial") or f"cam{index + 1:02d}"
    where = f"{path}: camera '{name}'"
    fov = _child(camera, "fov_video", where)
    left, top = _float(fov, "left", where), _float(fov, "top", where)
    right, bottom = _float(fov, "right", where), _float(fov, "bottom", where)
    scale = _resolution_scale(camera, where)
    width, height = (right - left + 1) * scale, (bottom - top + 1) * scale
    if width <= 0 or height <= 0 or width != round(width) or height != round(height):
        raise CalibrationError(
            f"{where}: <fov_video> gives an image of {width:g}x{height:g} px; need positive whole pixels"
        )
    intr = _child(camera, "intrinsic", where)
    f_u = _float(intr, "focalLengthU", where) / SUBPIXELS_PER_PX * scale
    f_v = _float(intr, "focalLengthV", where) / SUBPIXELS_PER_PX * scale
    c_u = (_float(intr, "centerPointU", where) / SUBPIXELS_PER_PX - left) * scale
    c_v = (_float(intr, "centerPointV", where) / SUBPIXELS_PER_PX - top) * scale
    K = np.array([[f_u, 0.0, c_u], [0.0, f_v, c_v], [0.0, 0.0, 1.0]])
    k1, k2 = (_float(intr, f"radialDistortion{i}", where) / SUBPIXELS_PER_PX for i in (1, 2))
    k3 = (_float(intr, "radialDistortion3", where) if "radialDistortion3" in intr.attrib else 0.0) / SUBPIXELS_PER_PX
    p1, p2 = (_float(intr, f"tangentalDistortion{i}", where) / SUBPIXELS_PER_PX for i in (1, 2))
    tr = _child(camera, "transform", where)
    M = np.array([_float(tr, k, where) for k in _R_KEYS]).reshape(3, 3)
    check_rotation(M, "transform r11..r33", where)
    center_mm = np.array([_float(tr, k, where) for k in ("x", "y", "z")])
    R = QUALISYS_TO_OPENCV @ M
    return Camera.from_center(
        name, int(round(width)), int(round(height)), K, [k1, k2, p1, p2, k3], R, center_mm, source=str(path)
    )


def _parse(path: Path) -> ET.Element:
    if not path.is_file():
        raise CalibrationError(f"{path}: calibration file not found (check the path)")
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as exc:
        raise CalibrationError(f"{path}: not valid XML ({exc}); is the file truncated?") from None
    if root.tag != "calibration" or root.find("cameras") is None:
        raise CalibrationError(
            f"{path}: not a Qualisys calibration (expected <calibration><cameras><camera ...>, found <{root.tag}>)"
        )
    return root


def load_qualisys_qca(path: str | Path, camera_names: Sequence[str] | None = None) -> CameraRig:
    """Read a Qualisys ``.qca.txt`` into a rig (world mm, z up).

    Args:
        path: the ``.qca.txt`` (XML) file.
        camera_names: cameras to keep, in this order (by ``serial``); default every video camera
            in natural name order.

    Raises:
        CalibrationError: unreadable XML, a missing element or attribute (named), a bad rotation.
    """
    path = Path(path)
    root = _parse(path)
    nodes = root.findall("cameras/camera")
    if not nodes:
        raise CalibrationError(f"{path}: <cameras> holds no <camera> element")
    cameras = [_camera(node, i, path) for i, node in enumerate(nodes)]
    if camera_names is None:
        models = [node.attrib.get("model", "none") for node in nodes]
        video = [c for c, m in zip(cameras, models) if m in VIDEO_MODELS]
        if not video:
            raise CalibrationError(
                f"{path}: no video camera (model one of {list(VIDEO_MODELS)}); models in the file: "
                f"{sorted(set(models))}; name the cameras to use"
            )
        rig = CameraRig(tuple(sorted(video, key=lambda c: natural_key(c.name))))
    else:
        rig = select_cameras(cameras, camera_names, path)
    return check_units_mm(rig, path)


def save_qualisys_qca(rig: CameraRig, path: str | Path) -> Path:
    """Write ``rig`` as a Qualisys ``.qca.txt`` (inverse of :func:`load_qualisys_qca`).

    Every camera is written with ``model="none"`` (a video camera to Pose2Sim) and a full-frame
    ``fov_video`` (left = top = 0).

    Returns:
        The path written.
    """
    path = Path(path)
    if any(abs(c.K[0, 1]) > 1e-9 for c in rig):
        raise CalibrationError(f"{path}: the Qualisys format has no skew; a camera has K[0,1] != 0")
    root = ET.Element("calibration", {"source": "selfpose3d", "type": "regular"})
    cams = ET.SubElement(root, "cameras")
    for cam in rig:
        node = ET.SubElement(cams, "camera", {"active": "1", "model": "none", "serial": cam.name})
        ET.SubElement(
            node, "fov_video", {"left": "0", "top": "0", "right": str(cam.width - 1), "bottom": str(cam.height - 1)}
        )
        M = QUALISYS_TO_OPENCV @ cam.R
        attrs = {k: repr(float(v)) for k, v in zip(("x", "y", "z"), cam.center_mm)}
        attrs.update({k: repr(float(v)) for k, v in zip(_R_KEYS, M.reshape(-1))})
        ET.SubElement(node, "transform", attrs)
        k1, k2, p1, p2, k3 = (float(v) * SUBPIXELS_PER_PX for v in cam.dist)
        ET.SubElement(
            node,
            "intrinsic",
            {
                "focalLengthU": repr(float(cam.K[0, 0]) * SUBPIXELS_PER_PX),
                "focalLengthV": repr(float(cam.K[1, 1]) * SUBPIXELS_PER_PX),
                "centerPointU": repr(float(cam.K[0, 2]) * SUBPIXELS_PER_PX),
                "centerPointV": repr(float(cam.K[1, 2]) * SUBPIXELS_PER_PX),
                "skew": "0.0",
                "radialDistortion1": repr(k1),
                "radialDistortion2": repr(k2),
                "radialDistortion3": repr(k3),
                "tangentalDistortion1": repr(p1),
                "tangentalDistortion2": repr(p2),
            },
        )
    ET.indent(root)
    path.parent.mkdir(parents=True, exist_ok=True)
    ET.ElementTree(root).write(path, encoding="ascii", xml_declaration=True)
    return path


def _is_qualisys(path: Path) -> bool:
    name = path.name.lower()
    if name.endswith((".qca.txt", ".qca")):
        return True
    head = path.read_text(encoding="ascii", errors="replace")[:400]
    return "<calibration" in head


register_format(
    "qualisys",
    load=lambda path, names, size: load_qualisys_qca(path, camera_names=names),
    save=save_qualisys_qca,
    suffixes=(".txt", ".qca", ".xml"),
    claims=_is_qualisys,
    save_suffixes=(".txt",),
)
