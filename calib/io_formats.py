"""What every calibration format shares: the reader helpers and the registry of formats.

Each format module (``calib/io_*.py``, ``calib/rig_config.py``) imports its helpers from here and
joins the registry with one :func:`register_format` call; :func:`load_calibration`,
:func:`save_calibration` and :func:`sniff_format` dispatch through the registry. Import
:mod:`calib.io` (which imports every built-in format) rather than this module to load files.
Malformed input raises :class:`~calib.camera.CalibrationError` naming the file, the camera and
the field.
"""

from __future__ import annotations

import difflib
import json
from pathlib import Path
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Sequence

import numpy as np

from calib.camera import CalibrationError, Camera, CameraRig, as_array  # noqa: F401  (as_array: a reader helper)

# Cameras of one rig closer together than this (mm) mean the file is not in the units we assumed
# (metres read as millimetres puts a 3 m wide rig inside 3 mm).
MIN_RIG_SPREAD_MM = 20.0

UNIT_TO_MM = {
    "mm": 1.0,
    "millimetre": 1.0,
    "millimetres": 1.0,
    "millimeter": 1.0,
    "millimeters": 1.0,
    "cm": 10.0,
    "centimetre": 10.0,
    "centimetres": 10.0,
    "centimeter": 10.0,
    "centimeters": 10.0,
    "m": 1000.0,
    "metre": 1000.0,
    "metres": 1000.0,
    "meter": 1000.0,
    "meters": 1000.0,
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


def first_camera_entry(data: Any) -> dict:
    """The first entry of a JSON calibration's ``cameras`` list ({} if there is none)."""
    cams = data.get("cameras") if isinstance(data, dict) else None
    return cams[0] if isinstance(cams, list) and cams and isinstance(cams[0], dict) else {}


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
# the registry of formats
# --------------------------------------------------------------------------------------------

Loader = Callable[[Path, "Sequence[str] | None", "tuple[int, int] | None"], CameraRig]


@dataclass(frozen=True)
class CalibrationFormat:
    """One calibration file format.

    Attributes:
        name: the ``fmt`` name.
        load: ``load(path, camera_names, image_size) -> CameraRig`` (cameras in the order named, all if None).
        save: ``save(rig, path) -> Path`` or None if the format is read-only.
        suffixes: lower-case file suffixes it reads (``.json``); sniffing asks only these formats.
        claims: ``claims(path) -> bool``, whether a file with one of ``suffixes`` is in this format;
            None: every such file is.
        fallback: asked after the other formats sharing a suffix (the format of last resort).
        save_suffixes: suffixes that ``save_calibration(fmt="auto")`` writes in this format.
    """

    name: str
    load: Loader
    save: Callable[[CameraRig, Path], Path] | None
    suffixes: tuple[str, ...]
    claims: Callable[[Path], bool] | None = None
    fallback: bool = False
    save_suffixes: tuple[str, ...] = ()


_REGISTRY: dict[str, CalibrationFormat] = {}


def register_format(
    name: str,
    *,
    load: Loader,
    save: Callable[[CameraRig, Path], Path] | None,
    suffixes: Sequence[str],
    claims: Callable[[Path], bool] | None = None,
    fallback: bool = False,
    save_suffixes: Sequence[str] = (),
) -> CalibrationFormat:
    """Add a format to the registry (one call at the bottom of its module; see :class:`CalibrationFormat`)."""
    if name in _REGISTRY and _REGISTRY[name].load is not load:
        raise ValueError(f"calibration format {name!r} is registered twice")
    fmt = CalibrationFormat(
        name, load, save, tuple(s.lower() for s in suffixes), claims, fallback, tuple(s.lower() for s in save_suffixes)
    )
    _REGISTRY[name] = fmt
    return fmt


def formats() -> tuple[str, ...]:
    """Names of the registered formats, in registration order."""
    return tuple(_REGISTRY)


def _get(name: str, path: Path) -> CalibrationFormat:
    if name not in _REGISTRY:
        raise CalibrationError(
            f"{path}: unknown calibration format {name!r}{did_you_mean(name, _REGISTRY)}; use one of {formats()}"
        )
    return _REGISTRY[name]


def sniff_format(path: str | Path) -> str:
    """Guess a calibration file's format from its suffix and content (see :func:`formats`)."""
    path = Path(path)
    if not path.is_file():
        raise CalibrationError(f"{path}: calibration file not found (check the path)")
    suffix = path.suffix.lower()
    candidates = [f for f in _REGISTRY.values() if suffix in f.suffixes]
    if not candidates:
        raise CalibrationError(
            f"{path}: cannot tell the calibration format from the suffix '{suffix}'; name it (fmt= in Python, "
            f"--input-format on the command line): one of {formats()}"
        )
    for fmt in sorted(candidates, key=lambda f: f.fallback):  # stable: registration order within each group
        if fmt.claims is None or fmt.claims(path):
            return fmt.name
    raise CalibrationError(
        f"{path}: {suffix[1:].upper()} layout matches no known calibration format "
        f"({', '.join(f.name for f in candidates)}); pass fmt= explicitly"
    )


def load_calibration(
    path: str | Path,
    fmt: str = "auto",
    camera_names: Sequence[str] | None = None,
    image_size: tuple[int, int] | None = None,
) -> CameraRig:
    """Load a calibration file of any registered format.

    Args:
        path: the file.
        fmt: a registered format name or ``"auto"`` (sniffed from suffix and content).
        camera_names: cameras to keep, in this order (default: the format's default, usually all).
        image_size: (width, height) px for formats that do not store it (VoxelPose JSON).

    Returns:
        The rig, world mm.

    Raises:
        CalibrationError: unreadable, malformed or inconsistent file, or a missing camera.
    """
    path = Path(path)
    name = sniff_format(path) if fmt == "auto" else fmt
    return _get(name, path).load(path, camera_names, image_size)


def save_calibration(rig: CameraRig, path: str | Path, fmt: str = "auto") -> Path:
    """Write ``rig`` in format ``fmt`` (``auto``: chosen by the suffix; e.g. .toml anipose, .xml
    opencv, .yaml rig; JSON needs fmt).

    Returns:
        The path written.
    """
    path = Path(path)
    if fmt == "auto":
        by_suffix = [f.name for f in _REGISTRY.values() if path.suffix.lower() in f.save_suffixes]
        if not by_suffix:
            raise CalibrationError(
                f"{path}: cannot choose a format from the suffix '{path.suffix}'; name it (fmt= in Python, "
                f"--format on the command line): one of {formats()}"
            )
        fmt = by_suffix[0]
    spec = _get(fmt, path)
    if spec.save is None:
        raise CalibrationError(
            f"{path}: format {fmt!r} can be read but not written; choose one of "
            f"{tuple(f.name for f in _REGISTRY.values() if f.save)}"
        )
    return spec.save(rig, path)
