"""The "metric" calibration JSON: K, R, t per camera with declared units (4D-Association Shelf file).

Layout (``../shared/data/shelf/calibration.json``)::

    {"units": "metres", "cameras": [{"id", "name", "image_size": [w, h], "K": 3x3, "R": 3x3,
      "t": [3], "C": [3] (optional centre, checked), "dist": [k1, k2, p1, p2, k3]}, ...]}

``x_cam = R X + t`` in the file's units; ``units`` defaults to metres (the 4D-Association
convention). Values are converted to millimetres on load. When a camera carries its centre
``C``, it must agree with ``-R^T t`` (a transposed R or a sign slip shows up here).
"""

from __future__ import annotations

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
    unit_scale_mm,
    write_json,
)

# |C - (-R^T t)| tolerance, in file units relative to the rig size (the Shelf file rounds R to 1e-8).
_CENTRE_REL_TOL = 1e-4


def _camera(entry: dict, index: int, scale_mm: float, path: Path) -> Camera:
    name = str(entry.get("name", entry.get("id", index))) if isinstance(entry, dict) else str(index)
    where = f"{path}: camera '{name}'"
    K = as_array(get_field(entry, "K", where), (3, 3), "K", where)
    R = check_rotation(as_array(get_field(entry, "R", where), (3, 3), "R", where), "R", where)
    t = as_array(get_field(entry, "t", where), (3,), "t", where)
    dist = as_array(entry.get("dist", np.zeros(5)), (5,), "dist", where)
    width, height = as_resolution(get_field(entry, "image_size", where), "image_size", where)
    if "C" in entry:
        C = as_array(entry["C"], (3,), "C", where)
        err = float(np.linalg.norm(C + R.T @ t))
        if err > _CENTRE_REL_TOL * max(1.0, float(np.linalg.norm(C))):
            raise CalibrationError(
                f"{where}: field 'C' = {C.tolist()} disagrees with -R^T t = {(-R.T @ t).tolist()} "
                f"(by {err:.3g} file units); R may be transposed (camera->world) or t negated"
            )
    return Camera(name, width, height, K, dist, R, t * scale_mm, source=str(path))


def load_metric_json(path: str | Path, camera_names: Sequence[str] | None = None) -> CameraRig:
    """Read a metric calibration JSON (units from its ``units`` field, default metres) into mm.

    Args:
        path: the JSON file.
        camera_names: cameras to keep, by ``name``, in this order (default: all, file order).

    Raises:
        CalibrationError: corrupt file, malformed field (named), missing camera, implausible units.
    """
    path = Path(path)
    data = read_json(path)
    if not isinstance(data, dict) or not isinstance(data.get("cameras"), list) or not data["cameras"]:
        raise CalibrationError(f"{path}: field 'cameras' must be a non-empty list of cameras")
    scale_mm = unit_scale_mm(data.get("units", "metres"), f"{path}: field 'units'")
    cameras = [_camera(e, i, scale_mm, path) for i, e in enumerate(data["cameras"])]
    return check_units_mm(select_cameras(cameras, camera_names, path), path)


def save_metric_json(rig: CameraRig, path: str | Path, units: str = "metres") -> Path:
    """Write ``rig`` as a metric calibration JSON in ``units`` (``metres``, ``mm`` ...).

    Returns:
        The path written.
    """
    scale = unit_scale_mm(units, f"{path}: units")
    cams = []
    for i, cam in enumerate(rig):
        cams.append(
            {
                "id": i,
                "name": cam.name,
                "image_size": [cam.width, cam.height],
                "K": cam.K.tolist(),
                "R": cam.R.tolist(),
                "t": (cam.t_mm / scale).tolist(),
                "C": (cam.center_mm / scale).tolist(),
                "dist": cam.dist.tolist(),
            }
        )
    doc = {
        "units": units,
        "convention": "x_cam = R @ X_world + t (world->camera); [u,v,1] ~ K @ distort(x_cam); "
        "pixel (0,0) = centre of top-left pixel",
        "cameras": cams,
    }
    return write_json(doc, path)


def _is_metric(path: Path) -> bool:
    data = read_json(path)
    first = first_camera_entry(data)
    return (
        "K" in first
        and "t" in first
        and not ("distCoef" in first or "panel" in first)
        and not ("customized_sequence" in data or "camera_order" in data)
    )


register_format(
    "metric",
    load=lambda path, names, size: load_metric_json(path, camera_names=names),
    save=save_metric_json,
    suffixes=(".json",),
    claims=_is_metric,
)
