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

**Pose2Sim** ``Calib.toml`` is the same layout in **metres** with no units field (tables
``[cam_1]`` ..., 4 distortion coefficients k1 k2 p1 p2, ``fisheye = false``): read it with
:func:`load_pose2sim_toml` (format name ``pose2sim``), write it with :func:`save_pose2sim_toml`.
A TOML without ``[metadata] units`` whose cameras lie within :data:`calib.io_formats.MIN_RIG_SPREAD_MM`
file units of each other cannot be a millimetre rig: :func:`toml_flavour` calls it ``pose2sim``
(that is how ``format: auto`` tells the two apart), and reading it as anipose-mm fails with a
message naming the ``pose2sim`` format.
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
    MIN_RIG_SPREAD_MM,
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
        raise CalibrationError(
            f"{where}: field 'fisheye': fisheye cameras are not supported; recalibrate with the pinhole model"
        )
    K = as_array(get_field(entry, "matrix", where), (3, 3), "matrix", where)
    raw = np.asarray(get_field(entry, "distortions", where), dtype=np.float64).reshape(-1)
    if raw.size > 5 and np.any(raw[5:] != 0):
        raise CalibrationError(
            f"{where}: field 'distortions' has {raw.size} non-zero coefficients; only k1 k2 p1 p2 k3 are supported"
        )
    dist = np.zeros(5)
    dist[: min(raw.size, 5)] = raw[:5]
    rvec = as_array(get_field(entry, "rotation", where), (3,), "rotation", where)
    t = as_array(get_field(entry, "translation", where), (3,), "translation", where)
    width, height = as_resolution(get_field(entry, "size", where), "size", where)
    return Camera(name, width, height, K, dist, rotation_from_rodrigues(rvec), t * scale_mm, source=str(path))


def _read_toml(path: Path) -> dict:
    if not path.is_file():
        raise CalibrationError(f"{path}: calibration file not found (check the path)")
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise CalibrationError(f"{path}: not valid TOML ({exc})") from None


def _declared_units(data: dict) -> str | None:
    meta = data.get("metadata")
    return meta.get("units") if isinstance(meta, dict) else None


def _camera_tables(data: dict, path: Path) -> list[tuple[str, dict]]:
    tables = [(k, v) for k, v in data.items() if isinstance(v, dict) and k != "metadata"]
    if not tables:
        raise CalibrationError(f"{path}: no camera tables ([cam_0] with name, size, matrix ...) found")
    return tables


def _spread_file_units(tables: list[tuple[str, dict]]) -> float | None:
    """Largest distance between two camera centres in the file's units (None: < 2 readable cameras)."""
    centers = []
    for _, entry in tables:
        try:
            R = rotation_from_rodrigues(np.asarray(entry["rotation"], dtype=np.float64).reshape(3))
            t = np.asarray(entry["translation"], dtype=np.float64).reshape(3)
        except (KeyError, TypeError, ValueError):
            return None
        centers.append(-R.T @ t)
    if len(centers) < 2:
        return None
    c = np.stack(centers)
    return float(np.max(np.linalg.norm(c[:, None] - c[None], axis=-1)))


def toml_flavour(path: str | Path) -> str:
    """``"anipose"`` (mm or declared units) or ``"pose2sim"`` (metres) for a calibration TOML.

    A file that declares ``[metadata] units`` is anipose; otherwise two or more cameras closer
    together than :data:`~calib.io_formats.MIN_RIG_SPREAD_MM` file units mean metres (Pose2Sim).
    """
    path = Path(path)
    data = _read_toml(path)
    if _declared_units(data) is not None:
        return "anipose"
    spread = _spread_file_units(_camera_tables(data, path))
    return "pose2sim" if spread is not None and spread < MIN_RIG_SPREAD_MM else "anipose"


def load_anipose_toml(path: str | Path, units: str | None = None) -> CameraRig:
    """Read an anipose ``calibration.toml`` into a rig (world mm; anipose's world frame is kept).

    Args:
        path: the TOML file.
        units: the file's translation units (``mm``, ``cm``, ``m``); default ``[metadata] units``
            or, absent that, ``mm``.

    Raises:
        CalibrationError: corrupt TOML, malformed field (named), implausible units (a metre file
            read as mm names the ``pose2sim`` format).
    """
    path = Path(path)
    data = _read_toml(path)
    declared = _declared_units(data)
    scale_mm = unit_scale_mm(units or declared or "mm", f"{path}: units")
    tables = _camera_tables(data, path)
    cameras = [_camera(k, v, scale_mm, path) for k, v in tables]
    rig = CameraRig(tuple(cameras))
    if units is None and declared is None:
        spread = _spread_file_units(tables)
        if spread is not None and spread < MIN_RIG_SPREAD_MM:
            raise CalibrationError(
                f"{path}: field 'translation': the {len(rig)} camera centres lie within {spread:.3g} file units "
                "of each other, so the file is in metres, not anipose's millimetres: this looks like a Pose2Sim "
                "Calib.toml; read it as format 'pose2sim' (--input-format pose2sim, or 'format: pose2sim' in a "
                'rig) or add [metadata] units = "m"'
            )
    return check_units_mm(rig, path)


def load_pose2sim_toml(path: str | Path) -> CameraRig:
    """Read a Pose2Sim ``Calib.toml`` (anipose layout, translations in metres) into a rig (mm)."""
    return load_anipose_toml(path, units="m")


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


def _write_toml(
    rig: CameraRig,
    path: Path,
    *,
    scale_from_mm: float,
    first_index: int,
    metadata: list[str],
    trim_k3: bool,
    fisheye_field: bool,
) -> Path:
    lines: list[str] = []
    for i, cam in enumerate(rig):
        dist = cam.dist.tolist()
        if trim_k3 and dist[4] == 0.0:
            dist = dist[:4]
        fields = {
            "name": cam.name,
            "size": [cam.width, cam.height],
            "matrix": cam.K.tolist(),
            "distortions": dist,
            "rotation": rodrigues_from_rotation(cam.R).tolist(),
            "translation": (cam.t_mm * scale_from_mm).tolist(),
        }
        if fisheye_field:
            fields["fisheye"] = False
        lines.append(f"[cam_{i + first_index}]")
        lines += [f"{k} = {_toml_value(v)}" for k, v in fields.items()]
        lines.append("")
    lines += ["[metadata]", *metadata, ""]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def save_anipose_toml(rig: CameraRig, path: str | Path) -> Path:
    """Write ``rig`` as an anipose ``calibration.toml`` (translations in mm, ``[metadata] units = "mm"``).

    Returns:
        The path written.
    """
    return _write_toml(
        rig,
        Path(path),
        scale_from_mm=1.0,
        first_index=0,
        metadata=['units = "mm"', "adjusted = false"],
        trim_k3=False,
        fisheye_field=False,
    )


def save_pose2sim_toml(rig: CameraRig, path: str | Path) -> Path:
    """Write ``rig`` as a Pose2Sim ``Calib.toml``: ``[cam_1]`` ..., translations in metres, no units
    field, 4 distortion coefficients when k3 is zero (as Pose2Sim writes them).

    Returns:
        The path written.
    """
    return _write_toml(
        rig,
        Path(path),
        scale_from_mm=1e-3,
        first_index=1,
        metadata=["adjusted = false", "error = 0.0"],
        trim_k3=True,
        fisheye_field=True,
    )


register_format(
    "anipose",
    load=lambda path, names, size: select_cameras(list(load_anipose_toml(path)), names, path),
    save=save_anipose_toml,
    suffixes=(".toml",),
    claims=lambda path: toml_flavour(path) == "anipose",
    save_suffixes=(".toml",),
)
register_format(
    "pose2sim",
    load=lambda path, names, size: select_cameras(list(load_pose2sim_toml(path)), names, path),
    save=save_pose2sim_toml,
    suffixes=(".toml",),
    claims=lambda path: toml_flavour(path) == "pose2sim",
)
