"""VoxelPose / SelfPose3d camera JSON (Shelf, Campus, Panoptic demo).

Per camera: ``R`` (3x3, world->camera), ``T`` (3x1, camera **centre** in world mm, so
``x_cam = R (X - T)``), ``fx fy cx cy`` (px), ``k`` (3x1: k1 k2 k3), ``p`` (2x1: p1 p2).
The file stores no image size. Three layouts are read:

* dict keyed by camera name, ``{"0": {...}, "1": {...}}`` (VoxelPose's Shelf/Campus files);
* ``{"customized_sequence": [{...}, ...]}`` (Faster-VoxelPose demo), a list with no names;
* ``{"camera_order": [names], "cameras": [{...}, ...]}`` (a named list).

Extension, ignored by upstream readers: a camera may carry ``"name"``, ``"width"``, ``"height"``;
:func:`save_voxelpose_calibration` writes them inside each camera so a round trip keeps names and
sizes (upstream loaders only read the fields they know, so the file stays loadable there).
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
    write_json,
)


def _entries(data, path: Path) -> tuple[list[tuple[str, dict]], bool]:
    """(name, camera dict) pairs in file order, and whether the file names its cameras."""
    if isinstance(data, dict) and "customized_sequence" in data:
        seq = data["customized_sequence"]
        if not isinstance(seq, list) or not seq:
            raise CalibrationError(f"{path}: field 'customized_sequence' must be a non-empty list of cameras")
        named = all(isinstance(e, dict) and "name" in e for e in seq)
        return [(str(e["name"]) if named else str(i), e) for i, e in enumerate(seq)], named
    if isinstance(data, dict) and "cameras" in data:
        cams = data["cameras"]
        order = data.get("camera_order")
        if not isinstance(cams, list) or not cams:
            raise CalibrationError(f"{path}: field 'cameras' must be a non-empty list of cameras")
        if order is None:
            order = [e.get("name", str(i)) if isinstance(e, dict) else str(i) for i, e in enumerate(cams)]
        if not isinstance(order, list) or len(order) != len(cams):
            raise CalibrationError(f"{path}: field 'camera_order' must list one name per camera ({len(cams)} cameras)")
        return [(str(n), e) for n, e in zip(order, cams)], True
    if isinstance(data, dict) and data:
        return [(str(k), v) for k, v in data.items()], True
    raise CalibrationError(
        f"{path}: not a VoxelPose calibration (expected a dict of cameras keyed '0'..'N-1', "
        "'customized_sequence' or 'camera_order'+'cameras')"
    )


def _camera(name: str, entry: dict, image_size: tuple[int, int] | None, path: Path) -> Camera:
    where = f"{path}: camera '{name}'"
    R = check_rotation(as_array(get_field(entry, "R", where), (3, 3), "R", where), "R", where)
    T = as_array(get_field(entry, "T", where), (3,), "T", where)
    fx, fy, cx, cy = (float(as_array(get_field(entry, k, where), (1,), k, where)[0]) for k in ("fx", "fy", "cx", "cy"))
    k = as_array(entry.get("k", np.zeros(3)), (3,), "k", where)
    p = as_array(entry.get("p", np.zeros(2)), (2,), "p", where)
    if image_size is None:
        if "width" in entry and "height" in entry:
            image_size = as_resolution([entry["width"], entry["height"]], "width/height", where)
        else:
            raise CalibrationError(
                f"{where}: VoxelPose calibration stores no image size; pass image_size=(width, height) "
                "(e.g. (1920, 1080) for Panoptic HD, (1032, 776) for Shelf, (360, 288) for Campus)"
            )
    K = np.array([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]])
    dist = np.array([k[0], k[1], p[0], p[1], k[2]])
    return Camera.from_center(name, image_size[0], image_size[1], K, dist, R, T, source=str(path))


def load_voxelpose_calibration(
    path: str | Path,
    image_size: tuple[int, int] | None = None,
    camera_names: Sequence[str] | None = None,
) -> CameraRig:
    """Read a VoxelPose camera JSON into a rig (world mm).

    Args:
        path: the JSON file.
        image_size: (width, height) px of every camera; required unless each camera stores
            ``width``/``height`` (files written by :func:`save_voxelpose_calibration`). When given
            it wins over the stored sizes.
        camera_names: for files that name their cameras (dict keys, ``camera_order``, ``name``),
            the cameras to keep in this order. For the unnamed ``customized_sequence`` list, the
            names to give the cameras in list order (one per camera); without it they are
            ``"0".."N-1"``.

    Raises:
        CalibrationError: corrupt file, malformed field (named), missing camera or size.
    """
    path = Path(path)
    pairs, named = _entries(read_json(path), path)
    size = None if image_size is None else as_resolution(image_size, "image_size", f"{path}")
    names = (
        None
        if camera_names is None
        else [str(n) for n in ([camera_names] if isinstance(camera_names, str) else camera_names)]
    )
    if not named and names is not None:
        if len(names) != len(pairs):
            raise CalibrationError(
                f"{path}: 'customized_sequence' has {len(pairs)} unnamed cameras but camera_names gives "
                f"{len(names)} names {names}; give one name per camera in list order"
            )
        pairs = [(n, e) for n, (_, e) in zip(names, pairs)]
    cameras = [_camera(n, e, size, path) for n, e in pairs if names is None or n in names]
    return check_units_mm(select_cameras(cameras, names, path, available=[n for n, _ in pairs]), path)


def voxelpose_camera_entry(camera: Camera) -> dict:
    """One camera in VoxelPose form (plus the ``name``/``width``/``height`` extension)."""
    k1, k2, p1, p2, k3 = camera.dist.tolist()
    return {
        "name": camera.name,
        "width": camera.width,
        "height": camera.height,
        "R": camera.R.tolist(),
        "T": camera.center_mm.reshape(3, 1).tolist(),
        "fx": float(camera.K[0, 0]),
        "fy": float(camera.K[1, 1]),
        "cx": float(camera.K[0, 2]),
        "cy": float(camera.K[1, 2]),
        "k": [[k1], [k2], [k3]],
        "p": [[p1], [p2]],
    }


def save_voxelpose_calibration(rig: CameraRig, path: str | Path, layout: str = "dict") -> Path:
    """Write ``rig`` as VoxelPose camera JSON.

    Args:
        rig: the cameras (a non-zero skew in K cannot be stored and is an error).
        path: output file.
        layout: ``"dict"`` (keyed by camera name, as VoxelPose's Shelf/Campus files) or
            ``"sequence"`` (``customized_sequence`` list, as the Faster-VoxelPose demo).

    Returns:
        The path written.
    """
    for cam in rig:
        if cam.K[0, 1] != 0.0:
            raise CalibrationError(
                f"{cam.source}: camera '{cam.name}': field 'K' has skew {cam.K[0, 1]}; VoxelPose JSON cannot store it"
            )
    entries = [voxelpose_camera_entry(cam) for cam in rig]
    if layout == "dict":
        doc = {cam.name: entry for cam, entry in zip(rig, entries)}
    elif layout == "sequence":
        doc = {"customized_sequence": entries}
    else:
        raise CalibrationError(f"{path}: unknown VoxelPose layout {layout!r}; use 'dict' or 'sequence'")
    return write_json(doc, path)


def _is_voxelpose(path: Path) -> bool:
    data = read_json(path)
    if not isinstance(data, dict):
        return False
    if "customized_sequence" in data or "camera_order" in data:
        return True
    first = first_camera_entry(data)
    if first:  # a ``cameras`` list: Panoptic (distCoef/panel) and metric (K, t) come first
        return (
            "fx" in first
            and "T" in first
            and not ("distCoef" in first or "panel" in first)
            and not ("K" in first and "t" in first)
        )
    return bool(data) and all(isinstance(v, dict) and "fx" in v for v in data.values())


register_format(
    "voxelpose",
    load=lambda path, names, size: load_voxelpose_calibration(path, image_size=size, camera_names=names),
    save=save_voxelpose_calibration,
    suffixes=(".json",),
    claims=_is_voxelpose,
)
