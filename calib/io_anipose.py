"""anipose / aniposelib ``calibration.toml``.

One table per camera (``[cam_0]``, ``[cam_1]`` ...; any table with a ``matrix`` counts), as
aniposelib's ``CameraGroup.dump`` writes it::

    [cam_0]
    name = "A"
    size = [1920, 1080]                  # width, height px
    matrix = [[fx, 0, cx], [0, fy, cy], [0, 0, 1]]
    distortions = [k1, k2, p1, p2, k3]   # OpenCV order; fewer values are zero-padded
    rotation = [rx, ry, rz]              # Rodrigues vector, world->camera
    translation = [tx, ty, tz]           # x_cam = R X + t, in the calibration board's units

    [metadata]
    units = "mm"                         # our extension; anipose files have none

Units: anipose measures translations in the units of the board's square length, which anipose
configs give in **millimetres**; so files are read as mm unless ``[metadata] units`` or the
``units`` argument says otherwise. Fisheye cameras (``fisheye = true``) are not supported.
"""

from __future__ import annotations

import json
try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib
from pathlib import Path

import numpy as np

from calib.camera import CalibrationError, Camera, CameraRig
from calib.io_formats import (
    as_array,
    as_resolution,
    check_units_mm,
    get_field,
    register_format,
    select_cameras,
    unit_scale_mm,
)


def rotation_from_rodrigues(rvec: np.ndarray) -> np.ndarray:
    """(3,) axis-angle vector -> (3,3) rotation matrix."""
    rvec = np.asarray(rvec, dtype=np.float64).reshape(3)
    theta = float(np.linalg.norm(rvec))
    if theta < 1e-12:
        kx = np.array([[0, -rvec[2], rvec[1]], [rvec[2], 0, -rvec[0]], [-rvec[1], rvec[0], 0]])
        return np.eye(3) + kx
    k = rvec / theta
    kx = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
    return np.cos(theta) * np.eye(3) + (1 - np.cos(theta)) * np.outer(k, k) + np.sin(theta) * kx


def rodrigues_from_rotation(R: np.ndarray) -> np.ndarray:
    """(3,3) rotation -> (3,) axis-angle vector (angle in [0, pi])."""
    from scipy.spatial.transform import Rotation

    return Rotation.from_matrix(np.asarray(R, dtype=np.float64)).as_rotvec()


def _camera(table_name: str, entry: dict, scale_mm: float, path: Path) -> Camera:
    name = str(entry.get("name", table_name))
    where = f"{path}: camera '{name}' ([{table_name}])"
    if entry.get("fisheye", False):
        raise CalibrationError(f"{where}: field 'fisheye': fisheye cameras are not supported; recalibrate with the pinhole model")
    K = as_array(get_field(entry, "matrix", where), (3, 3), "matrix", where)
    raw = np.asarray(get_field(entry, "distortions", where), dtype=np.float64).reshape(-1)
    if raw.size > 5 and np.any(raw[5:] != 0):
        raise CalibrationError(f"{where}: field 'distortions' has {raw.size} non-zero coefficients; only k1 k2 p1 p2 k3 are supported")
    dist = np.zeros(5)
    dist[: min(raw.size, 5)] = raw[:5]
    rvec = as_array(get_field(entry, "rotation", where), (3,), "rotation", where)
    t = as_array(get_field(entry, "translation", where), (3,), "translation", where)
    width, height = as_resolution(get_field(entry, "size", where), "size", where)
    return Camera(name, width, height, K, dist, rotation_from_rodrigues(rvec), t * scale_mm, source=str(path))


def load_anipose_toml(path: str | Path, units: str | None = None) -> CameraRig:
    """Read an anipose ``calibration.toml`` into a rig (world mm; anipose's world frame is kept).

    Args:
        path: the TOML file.
        units: the file's translation units (``mm``, ``cm``, ``m``); default ``[metadata] units``
            or, absent that, ``mm``.

    Raises:
        CalibrationError: corrupt TOML, malformed field (named), implausible units.
    """
    path = Path(path)
    if not path.is_file():
        raise CalibrationError(f"{path}: calibration file not found (check the path)")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise CalibrationError(f"{path}: not valid TOML ({exc})") from None
    meta = data.get("metadata", {}) if isinstance(data.get("metadata"), dict) else {}
    scale_mm = unit_scale_mm(units or meta.get("units", "mm"), f"{path}: units")
    tables = [(k, v) for k, v in data.items() if isinstance(v, dict) and k != "metadata"]
    if not tables:
        raise CalibrationError(f"{path}: no camera tables ([cam_0] with name, size, matrix ...) found")
    cameras = [_camera(k, v, scale_mm, path) for k, v in tables]
    return check_units_mm(CameraRig(tuple(cameras)), path)


def _toml_value(value) -> str:
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        return repr(float(value))
    if isinstance(value, (list, tuple, np.ndarray)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {type(value).__name__} to TOML")


def save_anipose_toml(rig: CameraRig, path: str | Path) -> Path:
    """Write ``rig`` as an anipose ``calibration.toml`` (translations in mm, ``[metadata] units = "mm"``).

    Returns:
        The path written.
    """
    path = Path(path)
    lines: list[str] = []
    for i, cam in enumerate(rig):
        fields = {
            "name": cam.name,
            "size": [cam.width, cam.height],
            "matrix": cam.K.tolist(),
            "distortions": cam.dist.tolist(),
            "rotation": rodrigues_from_rotation(cam.R).tolist(),
            "translation": cam.t_mm.tolist(),
        }
        lines.append(f"[cam_{i}]")
        lines += [f"{k} = {_toml_value(v)}" for k, v in fields.items()]
        lines.append("")
    lines += ["[metadata]", 'units = "mm"', "adjusted = false", ""]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


register_format("anipose", load=lambda path, names, size: select_cameras(list(load_anipose_toml(path)), names, path),
                save=save_anipose_toml, suffixes=(".toml",), save_suffixes=(".toml",))
