"""Calibration file I/O: one entry point for every format, plus the helpers the readers share.

Formats (``fmt`` names):

* ``panoptic``  — CMU Panoptic ``calibration_<seq>.json`` (cm, y-down world), :mod:`calib.io_panoptic`;
* ``voxelpose`` — VoxelPose/SelfPose3d camera JSON (Shelf, Campus, Panoptic demo), :mod:`calib.io_voxelpose`;
* ``metric``    — the 4D-Association/Shelf ``calibration.json`` (K, R, t in metres), :mod:`calib.io_metric_json`;
* ``opencv``    — OpenCV FileStorage YAML/XML, :mod:`calib.io_opencv`;
* ``anipose``   — anipose/aniposelib ``calibration.toml`` (mm), :mod:`calib.io_anipose`;
* ``pose2sim``  — Pose2Sim ``Calib.toml`` (the anipose layout in metres), :mod:`calib.io_anipose`;
* ``qualisys``  — Qualisys ``.qca.txt`` XML (Pose2Sim's demos), :mod:`calib.io_qualisys`;
* ``rig``       — our rig YAML (cameras, sources, volume), :mod:`calib.rig_config`.

Every reader returns a :class:`~calib.camera.CameraRig` in our convention (world mm, z up for the
datasets that define one, ``x_cam = R X + t_mm``). Malformed input raises
:class:`~calib.camera.CalibrationError` naming the file, the camera and the field.
Format modules are imported lazily (OpenCV only when an OpenCV file is touched).
"""

from __future__ import annotations

import difflib
import json
import math
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from calib.camera import CalibrationError, Camera, CameraRig

FORMATS = ("panoptic", "voxelpose", "metric", "opencv", "anipose", "pose2sim", "qualisys", "rig")

# Cameras of one rig closer together than this (mm) mean the file is not in the units we assumed
# (metres read as millimetres puts a 3 m wide rig inside 3 mm).
MIN_RIG_SPREAD_MM = 20.0

UNIT_TO_MM = {
    "mm": 1.0, "millimetre": 1.0, "millimetres": 1.0, "millimeter": 1.0, "millimeters": 1.0,
    "cm": 10.0, "centimetre": 10.0, "centimetres": 10.0, "centimeter": 10.0, "centimeters": 10.0,
    "m": 1000.0, "metre": 1000.0, "metres": 1000.0, "meter": 1000.0, "meters": 1000.0,
}


# --------------------------------------------------------------------------------------------
# shared helpers for the format readers
# --------------------------------------------------------------------------------------------

def unit_scale_mm(units: str, where: str) -> float:
    """Millimetres per file unit for a unit name (``mm``, ``cm``, ``m``, ``metres`` ...)."""
    key = str(units).strip().lower()
    if key not in UNIT_TO_MM:
        raise CalibrationError(f"{where}: unknown units {units!r}; use one of mm, cm, m")
    return UNIT_TO_MM[key]


def read_json(path: str | Path) -> Any:
    """Parse a JSON file; a missing or corrupt file is a CalibrationError naming it."""
    path = Path(path)
    if not path.is_file():
        raise CalibrationError(f"{path}: calibration file not found (check the path)")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CalibrationError(f"{path}: not valid JSON ({exc}); is the file truncated?") from None


def write_json(obj: Any, path: str | Path) -> Path:
    """Write ``obj`` as indented JSON (floats keep their full repr, so values round-trip exactly)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, indent=1) + "\n", encoding="utf-8")
    return path


def get_field(entry: Any, key: str, where: str) -> Any:
    """``entry[key]`` or a CalibrationError naming the missing field."""
    if not isinstance(entry, dict):
        raise CalibrationError(f"{where}: expected a mapping of camera fields, got {type(entry).__name__}")
    if key not in entry:
        raise CalibrationError(
            f"{where}: missing field '{key}'{did_you_mean(key, entry)}; fields present: {sorted(entry)}"
        )
    return entry[key]


def as_array(value: Any, shape: tuple[int, ...], field: str, where: str) -> np.ndarray:
    """Float64 array of exactly ``shape`` (same element count is reshaped) or CalibrationError."""
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise CalibrationError(f"{where}: field '{field}' is not numeric: {value!r}") from None
    if arr.size == math.prod(shape) and arr.shape != shape:
        arr = arr.reshape(shape)
    if arr.shape != shape:
        raise CalibrationError(f"{where}: field '{field}' must have shape {shape}, got {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise CalibrationError(f"{where}: field '{field}' contains NaN or inf")
    return arr


def check_rotation(R: np.ndarray, field: str, where: str, tol: float = 1e-3) -> np.ndarray:
    """Return ``R`` if it is a proper rotation (orthonormal, det +1), else CalibrationError."""
    err = float(np.abs(R @ R.T - np.eye(3)).max())
    det = float(np.linalg.det(R))
    if err > tol or det < 0:
        raise CalibrationError(
            f"{where}: field '{field}' is not a rotation matrix (|R R^T - I| = {err:.2e}, det = {det:.3f}); "
            "check that it is a world->camera rotation, not transposed or mixed with scale"
        )
    return R


def as_resolution(value: Any, field: str, where: str) -> tuple[int, int]:
    """(width, height) from a 2-sequence of positive integers."""
    arr = as_array(value, (2,), field, where)
    if np.any(arr <= 0) or np.any(arr != np.round(arr)):
        raise CalibrationError(f"{where}: field '{field}' must be two positive integers (width, height), got {value!r}")
    return int(arr[0]), int(arr[1])


def did_you_mean(key: str, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(str(key), [str(c) for c in choices], n=1, cutoff=0.5)
    return f" (did you mean '{close[0]}'?)" if close else ""


def select_cameras(
    cameras: Sequence[Camera],
    names: Sequence[str] | None,
    path: str | Path,
    available: Sequence[str] | None = None,
) -> CameraRig:
    """Rig of ``cameras`` (all, in file order) or of the ``names`` in the order given.

    A name that the file lacks is a CalibrationError naming the file, the camera and the
    cameras ``available`` in the file (default: the names of ``cameras``).
    """
    if names is None:
        return CameraRig(tuple(cameras))
    if isinstance(names, str):
        names = [names]
    by_name = {c.name: c for c in cameras}
    chosen = []
    for name in names:
        name = str(name)
        if name not in by_name:
            avail = list(available) if available is not None else list(by_name)
            shown = avail if len(avail) <= 40 else avail[:40] + [f"... ({len(avail)} in all)"]
            raise CalibrationError(
                f"{path}: no camera named '{name}'{did_you_mean(name, avail)}; cameras in the file: {shown}"
            )
        chosen.append(by_name[name])
    return CameraRig(tuple(chosen))


def check_units_mm(rig: CameraRig, path: str | Path) -> CameraRig:
    """Reject rigs whose cameras sit implausibly close together (metres read as mm).

    A rig of two or more cameras spanning less than :data:`MIN_RIG_SPREAD_MM` cannot be a real
    multi-camera rig in millimetres; the file's translations are almost surely in metres.
    """
    if len(rig) >= 2:
        centers = rig.centers_mm
        spread = float(np.max(np.linalg.norm(centers[:, None] - centers[None], axis=-1)))
        if spread < MIN_RIG_SPREAD_MM:
            raise CalibrationError(
                f"{path}: field 't'/'T': the {len(rig)} camera centres lie within {spread:.3g} mm of each other; "
                "units cannot be right (translations look like metres where millimetres were expected; "
                "convert them or declare the file's units)"
            )
    return rig


def scale_intrinsics(camera: Camera, width: int, height: int) -> Camera:
    """The camera at another image size: K rows 0-1 scaled by (width/W, height/H); distortion kept.

    This is VoxelPose's convention (plain scaling of fx, cx, fy, cy). It is exact for a resize
    with the pixel grid's origin at the top-left corner of the top-left pixel.
    """
    sx = width / camera.width
    sy = height / camera.height
    K = camera.K.copy()
    K[0] *= sx
    K[1] *= sy
    return camera.replace(K=K, width=int(width), height=int(height))


# --------------------------------------------------------------------------------------------
# dispatcher
# --------------------------------------------------------------------------------------------

def _looks_like_rig_yaml(data: Any) -> bool:
    """Our rig YAML has a name and cameras and/or a calibration reference (OpenCV files have neither)."""
    return isinstance(data, dict) and "name" in data and ("cameras" in data or "calibration" in data)


def sniff_format(path: str | Path) -> str:
    """Guess a calibration file's format from its suffix and content (see :data:`FORMATS`)."""
    path = Path(path)
    if not path.is_file():
        raise CalibrationError(f"{path}: calibration file not found (check the path)")
    suffix = path.suffix.lower()
    if suffix == ".toml":
        from calib.io_anipose import toml_flavour

        return toml_flavour(path)
    if path.name.lower().endswith((".qca.txt", ".qca")):
        return "qualisys"
    if suffix == ".xml":
        head = path.read_text(encoding="ascii", errors="replace")[:400]
        return "qualisys" if "<calibration" in head else "opencv"
    if suffix in (".yaml", ".yml"):
        head = path.read_text(encoding="utf-8", errors="replace")[:200].lstrip()
        if head.startswith("%YAML"):
            return "opencv"
        import yaml

        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except yaml.YAMLError:
            return "opencv"  # e.g. !!opencv-matrix tags without the %YAML header; OpenCV reports real errors
        return "rig" if _looks_like_rig_yaml(data) else "opencv"
    if suffix == ".json":
        return _sniff_json(read_json(path), path)
    raise CalibrationError(
        f"{path}: cannot tell the calibration format from the suffix '{suffix}'; name it (fmt= in Python, "
        f"--input-format on the command line): one of {FORMATS}"
    )


def _sniff_json(data: Any, path: Path) -> str:
    if isinstance(data, dict):
        if "customized_sequence" in data or "camera_order" in data:
            return "voxelpose"
        cams = data.get("cameras")
        if isinstance(cams, list) and cams and isinstance(cams[0], dict):
            first = cams[0]
            if "distCoef" in first or "panel" in first:
                return "panoptic"
            if "K" in first and "t" in first:
                return "metric"
            if "fx" in first and "T" in first:
                return "voxelpose"
        if data and all(isinstance(v, dict) and "fx" in v for v in data.values()):
            return "voxelpose"
    raise CalibrationError(
        f"{path}: JSON layout matches no known calibration format (Panoptic 'cameras' with distCoef, "
        "VoxelPose per-camera fx/T, metric K/R/t); pass fmt= explicitly"
    )


def load_calibration(
    path: str | Path,
    fmt: str = "auto",
    camera_names: Sequence[str] | None = None,
    image_size: tuple[int, int] | None = None,
) -> CameraRig:
    """Load a calibration file of any supported format.

    Args:
        path: the file.
        fmt: one of :data:`FORMATS` or ``"auto"`` (sniffed from suffix and content).
        camera_names: cameras to keep, in this order (default: the format's default, usually all).
        image_size: (width, height) px for formats that do not store it (VoxelPose JSON).

    Returns:
        The rig, world mm.

    Raises:
        CalibrationError: unreadable, malformed or inconsistent file, or a missing camera.
    """
    path = Path(path)
    if fmt == "auto":
        fmt = sniff_format(path)
    if fmt == "panoptic":
        from calib.io_panoptic import load_panoptic_calibration

        return load_panoptic_calibration(path, camera_names)
    if fmt == "voxelpose":
        from calib.io_voxelpose import load_voxelpose_calibration

        return load_voxelpose_calibration(path, image_size=image_size, camera_names=camera_names)
    if fmt == "metric":
        from calib.io_metric_json import load_metric_json

        return load_metric_json(path, camera_names=camera_names)
    if fmt == "opencv":
        from calib.io_opencv import load_opencv_yaml

        return select_cameras(list(load_opencv_yaml(path)), camera_names, path)
    if fmt == "anipose":
        from calib.io_anipose import load_anipose_toml

        return select_cameras(list(load_anipose_toml(path)), camera_names, path)
    if fmt == "pose2sim":
        from calib.io_anipose import load_pose2sim_toml

        return select_cameras(list(load_pose2sim_toml(path)), camera_names, path)
    if fmt == "qualisys":
        from calib.io_qualisys import load_qualisys_qca

        return load_qualisys_qca(path, camera_names=camera_names)
    if fmt == "rig":
        from calib.rig_config import load_rig

        return select_cameras(list(load_rig(path).cameras), camera_names, path)
    raise CalibrationError(f"{path}: unknown calibration format {fmt!r}{did_you_mean(fmt, FORMATS)}; use one of {FORMATS}")


_SUFFIX_FORMAT = {".toml": "anipose", ".xml": "opencv", ".yaml": "rig", ".yml": "rig", ".qca.txt": "qualisys"}


def save_calibration(rig: CameraRig, path: str | Path, fmt: str = "auto") -> Path:
    """Write ``rig`` in format ``fmt`` (``auto``: .toml anipose, .xml opencv, .yaml rig, .qca.txt
    qualisys; JSON and Pose2Sim's TOML need fmt).

    Returns:
        The path written.
    """
    path = Path(path)
    if fmt == "auto":
        suffix = ".qca.txt" if path.name.lower().endswith(".qca.txt") else path.suffix.lower()
        if suffix not in _SUFFIX_FORMAT:
            raise CalibrationError(
                f"{path}: cannot choose a format from the suffix '{path.suffix}'; name it (fmt= in Python, "
                f"--format on the command line): one of {FORMATS}"
            )
        fmt = _SUFFIX_FORMAT[suffix]
    if fmt == "panoptic":
        from calib.io_panoptic import save_panoptic_calibration

        return save_panoptic_calibration(rig, path)
    if fmt == "voxelpose":
        from calib.io_voxelpose import save_voxelpose_calibration

        return save_voxelpose_calibration(rig, path)
    if fmt == "metric":
        from calib.io_metric_json import save_metric_json

        return save_metric_json(rig, path)
    if fmt == "opencv":
        from calib.io_opencv import save_opencv_yaml

        return save_opencv_yaml(rig, path)
    if fmt == "anipose":
        from calib.io_anipose import save_anipose_toml

        return save_anipose_toml(rig, path)
    if fmt == "pose2sim":
        from calib.io_anipose import save_pose2sim_toml

        return save_pose2sim_toml(rig, path)
    if fmt == "qualisys":
        from calib.io_qualisys import save_qualisys_qca

        return save_qualisys_qca(rig, path)
    if fmt == "rig":
        from calib.rig_config import save_rig

        return save_rig(rig, path)
    raise CalibrationError(f"{path}: unknown calibration format {fmt!r}{did_you_mean(fmt, FORMATS)}; use one of {FORMATS}")
