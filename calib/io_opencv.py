"""OpenCV FileStorage calibration (YAML or XML), read and written with ``cv2.FileStorage``.

Multi-camera layout (what :func:`save_opencv_yaml` writes)::

    %YAML 1.2
    ---
    units: mm                       # translation units (mm, cm, m); default mm
    cameras:
       - name: "00_03"
         image_width: 1920
         image_height: 1080
         camera_matrix: !!opencv-matrix {rows: 3, cols: 3, ...}
         distortion_coefficients: !!opencv-matrix {rows: 1, cols: 5, ...}   # k1 k2 p1 p2 k3
         R: !!opencv-matrix {rows: 3, cols: 3, ...}                          # world->camera
         T: !!opencv-matrix {rows: 3, cols: 1, ...}                          # x_cam = R X + T

Aliases accepted when reading: ``K`` for ``camera_matrix``; ``dist``/``D`` for
``distortion_coefficients``; ``rvec`` (Rodrigues) for ``R``; ``t``/``tvec`` for ``T``.
A file written by OpenCV's calibration sample (top-level ``camera_matrix``,
``distortion_coefficients``, ``image_width``, ``image_height``) reads as one camera named after
the file (or its ``camera_name``) at the world origin (R = I, T = 0) unless it has ``R``/``T``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from calib.camera import CalibrationError, Camera, CameraRig
from calib.io_formats import (
    as_array,
    as_resolution,
    check_rotation,
    check_units_mm,
    register_format,
    select_cameras,
    unit_scale_mm,
)

_ALIASES = {
    "camera_matrix": ("camera_matrix", "K"),
    "distortion_coefficients": ("distortion_coefficients", "dist", "D"),
    "R": ("R", "rotation_matrix"),
    "rvec": ("rvec", "rotation"),
    "T": ("T", "t", "tvec", "translation"),
}


def _node(parent, field: str):
    """First non-empty child among the aliases of ``field`` (None if absent)."""
    for key in _ALIASES.get(field, (field,)):
        node = parent.getNode(key)
        if not node.empty():
            return node
    return None


def _read_value(node, field: str, where: str):
    if node.isString():
        return node.string()
    if node.isMap():  # !!opencv-matrix
        mat = node.mat()
        if mat is None:
            raise CalibrationError(f"{where}: field '{field}' is a mapping but not an opencv-matrix")
        return mat
    if node.isSeq():
        return [node.at(i).real() for i in range(node.size())]
    return node.real()


def _require(parent, field: str, where: str):
    node = _node(parent, field)
    if node is None:
        names = " or ".join(f"'{a}'" for a in _ALIASES.get(field, (field,)))
        raise CalibrationError(f"{where}: missing field {names}; fields present: {list(parent.keys())}")
    return _read_value(node, field, where)


def _camera(parent, name: str, scale_mm: float, path: Path) -> Camera:
    where = f"{path}: camera '{name}'"
    K = as_array(_require(parent, "camera_matrix", where), (3, 3), "camera_matrix", where)
    dist_node = _node(parent, "distortion_coefficients")
    raw = (
        np.zeros(5)
        if dist_node is None
        else np.asarray(_read_value(dist_node, "distortion_coefficients", where), dtype=np.float64).reshape(-1)
    )
    if raw.size > 5 and np.any(raw[5:] != 0):
        raise CalibrationError(
            f"{where}: field 'distortion_coefficients' has {raw.size} non-zero terms; only k1 k2 p1 p2 k3 are supported"
        )
    dist = np.zeros(5)
    dist[: min(5, raw.size)] = raw[:5]
    size = (_require(parent, "image_width", where), _require(parent, "image_height", where))
    width, height = as_resolution(size, "image_width/image_height", where)
    R_node, rvec_node, T_node = _node(parent, "R"), _node(parent, "rvec"), _node(parent, "T")
    if R_node is not None:
        R = as_array(_read_value(R_node, "R", where), (3, 3), "R", where)
    elif rvec_node is not None:
        import cv2

        rvec = as_array(_read_value(rvec_node, "rvec", where), (3,), "rvec", where)
        R = cv2.Rodrigues(rvec)[0]
    else:
        R = np.eye(3)
    check_rotation(R, "R", where)
    t = np.zeros(3) if T_node is None else as_array(_read_value(T_node, "T", where), (3,), "T", where)
    return Camera(name, width, height, K, dist, R, t * scale_mm, source=str(path))


def load_opencv_yaml(path: str | Path, units: str | None = None) -> CameraRig:
    """Read an OpenCV FileStorage calibration (YAML/XML) into a rig (world mm).

    Args:
        path: the file.
        units: translation units; default the file's ``units`` entry or ``mm``.

    Raises:
        CalibrationError: unreadable file, malformed or missing field (named), implausible units.
    """
    import cv2

    path = Path(path)
    if not path.is_file():
        raise CalibrationError(f"{path}: calibration file not found (check the path)")
    try:
        fs = cv2.FileStorage(str(path), cv2.FILE_STORAGE_READ)
    except (cv2.error, SystemError) as exc:  # OpenCV 5 raises SystemError on some parse errors
        raise CalibrationError(
            f"{path}: not a valid OpenCV FileStorage YAML/XML file ({str(exc).strip()[:200]})"
        ) from None
    if not fs.isOpened():
        raise CalibrationError(f"{path}: OpenCV FileStorage could not open the file")
    try:
        root = fs.root()
        unit_node = root.getNode("units")
        scale = unit_scale_mm(
            units or (unit_node.string() if not unit_node.empty() else "mm"), f"{path}: field 'units'"
        )
        cams_node = root.getNode("cameras")
        if not cams_node.empty():
            if not cams_node.isSeq() or cams_node.size() == 0:
                raise CalibrationError(f"{path}: field 'cameras' must be a non-empty sequence of camera maps")
            cameras = []
            for i in range(cams_node.size()):
                item = cams_node.at(i)
                name_node = item.getNode("name")
                name = name_node.string() if not name_node.empty() and name_node.isString() else str(i)
                cameras.append(_camera(item, name, scale, path))
        elif _node(root, "camera_matrix") is not None:
            name_node = root.getNode("camera_name")
            name = name_node.string() if not name_node.empty() else path.stem
            cameras = [_camera(root, name, scale, path)]
        else:
            raise CalibrationError(
                f"{path}: no 'cameras' sequence and no top-level 'camera_matrix'; fields present: {list(root.keys())}"
            )
    finally:
        fs.release()
    return check_units_mm(CameraRig(tuple(cameras)), path)


def save_opencv_yaml(rig: CameraRig, path: str | Path) -> Path:
    """Write ``rig`` as OpenCV FileStorage (YAML, or XML if ``path`` ends in .xml), units mm.

    Returns:
        The path written.
    """
    import cv2

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fs = cv2.FileStorage(str(path), cv2.FILE_STORAGE_WRITE)
    try:
        fs.write("units", "mm")
        fs.startWriteStruct("cameras", cv2.FileNode_SEQ)
        for cam in rig:
            fs.startWriteStruct("", cv2.FileNode_MAP)
            fs.write("name", cam.name)
            fs.write("image_width", cam.width)
            fs.write("image_height", cam.height)
            fs.write("camera_matrix", cam.K)
            fs.write("distortion_coefficients", cam.dist.reshape(1, 5))
            fs.write("R", cam.R)
            fs.write("T", cam.t_mm.reshape(3, 1))
            fs.endWriteStruct()
        fs.endWriteStruct()
    finally:
        fs.release()
    return path


register_format(
    "opencv",
    load=lambda path, names, size: select_cameras(list(load_opencv_yaml(path)), names, path),
    save=save_opencv_yaml,
    suffixes=(".yaml", ".yml", ".xml"),
    fallback=True,
    save_suffixes=(".xml",),
)
