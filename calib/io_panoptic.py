"""CMU Panoptic Studio calibration JSON and the Panoptic -> world coordinate conversion.

Panoptic files (``calibration_<seq>.json``) hold ``cameras``: a list of ``{name "PP_NN", type,
resolution [w, h], panel, node, K 3x3, distCoef [k1,k2,p1,p2,k3], R 3x3, t 3x1}`` with the world in
**centimetres, y down**: ``x_cam = R X_pan + t``.

Our world (SPEC.md §4.3) is VoxelPose's: millimetres, z up, ``X_w = (X_pan @ M) * 10`` with
``M = [[1,0,0],[0,0,-1],[0,1,0]]`` (row vectors), i.e. ``(x, y, z) -> (x, z, -y) * 10``. A camera
becomes ``R_w = R @ M``, ``t_mm = 10 t`` (so its centre is ``-R_w^T t_mm``, VoxelPose's ``T``).
The conversion is exact in floating point for R (M only permutes and negates columns).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Sequence

import numpy as np

from calib.camera import CalibrationError, Camera, CameraRig
from calib.io_formats import (
    register_format,
    as_array,
    as_resolution,
    check_rotation,
    check_units_mm,
    get_field,
    first_camera_entry,
    read_json,
    select_cameras,
    write_json,
)

# Row-vector axis change Panoptic (y down) -> world (z up): X_w = X_pan @ PANOPTIC_AXES (then x10).
PANOPTIC_AXES = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])
PANOPTIC_CM_TO_MM = 10.0
# The 5 HD cameras VoxelPose/SelfPose3d use, in calibration-file order.
VOXELPOSE_HD_CAMERAS = ("00_03", "00_06", "00_12", "00_13", "00_23")

# Image size by camera type, for files whose cameras lack ``resolution`` (upstream ignores it).
PANOPTIC_TYPE_RESOLUTION = {"hd": (1920, 1080), "vga": (640, 480), "kinect-color": (1920, 1080)}

_NAME = re.compile(r"^(\d+)_(\d+)$")


def panoptic_cm_to_world_mm(points: np.ndarray) -> np.ndarray:
    """Panoptic points (...,3) in cm, y down -> world points (...,3) in mm, z up."""
    return (np.asarray(points, dtype=np.float64) @ PANOPTIC_AXES) * PANOPTIC_CM_TO_MM


def world_mm_to_panoptic_cm(points: np.ndarray) -> np.ndarray:
    """Inverse of :func:`panoptic_cm_to_world_mm`: world mm (...,3) -> Panoptic cm (...,3)."""
    return (np.asarray(points, dtype=np.float64) / PANOPTIC_CM_TO_MM) @ PANOPTIC_AXES.T


def _camera_from_entry(entry: dict, index: int, path: Path) -> Camera:
    name = str(entry.get("name", f"#{index}")) if isinstance(entry, dict) else f"#{index}"
    where = f"{path}: camera '{name}'"
    K = as_array(get_field(entry, "K", where), (3, 3), "K", where)
    dist = as_array(get_field(entry, "distCoef", where), (5,), "distCoef", where)
    R_pan = check_rotation(as_array(get_field(entry, "R", where), (3, 3), "R", where), "R", where)
    t_cm = as_array(get_field(entry, "t", where), (3,), "t", where)
    if "resolution" in entry or entry.get("type") not in PANOPTIC_TYPE_RESOLUTION:
        width, height = as_resolution(get_field(entry, "resolution", where), "resolution", where)
    else:
        width, height = PANOPTIC_TYPE_RESOLUTION[entry["type"]]
    return Camera(
        name=name,
        width=width,
        height=height,
        K=K,
        dist=dist,
        R=R_pan @ PANOPTIC_AXES,
        t_mm=t_cm * PANOPTIC_CM_TO_MM,
        source=str(path),
    )


def load_panoptic_calibration(path: str | Path, camera_names: Sequence[str] | None = None) -> CameraRig:
    """Read a Panoptic calibration JSON into world-mm, z-up cameras.

    Args:
        path: ``calibration_<seq>.json``.
        camera_names: cameras by Panoptic name (``"00_03"``), in the order wanted. Default: the
            5 VoxelPose HD cameras (:data:`VOXELPOSE_HD_CAMERAS`) when the file has them all,
            otherwise every HD camera (``type == "hd"``; every camera if no type is given) in
            file order.

    Returns:
        The rig; image sizes come from each camera's ``resolution`` (absent: from its ``type``,
        hd 1920x1080, vga 640x480).

    Raises:
        CalibrationError: corrupt file, missing/malformed field (named), missing camera.
    """
    path = Path(path)
    data = read_json(path)
    entries = data.get("cameras") if isinstance(data, dict) else None
    if not isinstance(entries, list) or not entries:
        raise CalibrationError(f"{path}: field 'cameras' must be a non-empty list of Panoptic cameras")
    names_in_file = [str(e.get("name")) if isinstance(e, dict) else None for e in entries]
    if camera_names is None:
        if all(n in names_in_file for n in VOXELPOSE_HD_CAMERAS):
            camera_names = VOXELPOSE_HD_CAMERAS
        else:
            camera_names = [
                n for n, e in zip(names_in_file, entries) if isinstance(e, dict) and e.get("type", "hd") == "hd"
            ] or None
    if isinstance(camera_names, str):
        camera_names = [camera_names]
    wanted = None if camera_names is None else {str(n) for n in camera_names}
    cameras = [
        _camera_from_entry(e, i, path)
        for i, (n, e) in enumerate(zip(names_in_file, entries))
        if wanted is None or n in wanted
    ]
    # Only the chosen cameras are built and validated (the session files hold 520).
    rig = select_cameras(cameras, camera_names, path, available=names_in_file)
    return check_units_mm(rig, path)


def _panel_node(name: str, index: int) -> tuple[int, int]:
    match = _NAME.match(name)
    return (int(match.group(1)), int(match.group(2))) if match else (0, index)


def panoptic_camera_entry(camera: Camera, index: int = 0) -> dict:
    """One camera as a Panoptic ``cameras`` entry (cm, y-down world)."""
    panel, node = _panel_node(camera.name, index)
    return {
        "name": camera.name,
        "type": "hd",
        "resolution": [camera.width, camera.height],
        "panel": panel,
        "node": node,
        "K": camera.K.tolist(),
        "distCoef": camera.dist.tolist(),
        "R": (camera.R @ PANOPTIC_AXES.T).tolist(),
        "t": (camera.t_mm / PANOPTIC_CM_TO_MM).reshape(3, 1).tolist(),
    }


def save_panoptic_calibration(rig: CameraRig, path: str | Path, data_source: str = "selfpose3d") -> Path:
    """Write ``rig`` as a Panoptic calibration JSON that :func:`load_panoptic_calibration` reads back.

    Names of the form ``PP_NN`` give panel and node; other names get panel 0, node = index.
    Every camera is written with ``type: "hd"``.

    Returns:
        The path written.
    """
    doc = {
        "calibDataSource": data_source,
        "cameras": [panoptic_camera_entry(cam, i) for i, cam in enumerate(rig)],
    }
    return write_json(doc, path)


def _is_panoptic(path: Path) -> bool:
    data = read_json(path)
    if not isinstance(data, dict) or "customized_sequence" in data or "camera_order" in data:
        return False  # VoxelPose's layout
    first = first_camera_entry(data)
    return "distCoef" in first or "panel" in first


register_format(
    "panoptic",
    load=lambda path, names, size: load_panoptic_calibration(path, names),
    save=save_panoptic_calibration,
    suffixes=(".json",),
    claims=_is_panoptic,
)
