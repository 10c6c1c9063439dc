"""Calibration file I/O: one entry point for every format.

Formats (``fmt`` names; each module registers itself, see :mod:`calib.io_formats`):

* ``panoptic``  — CMU Panoptic ``calibration_<seq>.json`` (cm, y-down world), :mod:`calib.io_panoptic`;
* ``voxelpose`` — VoxelPose/SelfPose3d camera JSON (Shelf, Campus, Panoptic demo), :mod:`calib.io_voxelpose`;
* ``metric``    — the 4D-Association/Shelf ``calibration.json`` (K, R, t in metres), :mod:`calib.io_metric_json`;
* ``opencv``    — OpenCV FileStorage YAML/XML, :mod:`calib.io_opencv`;
* ``anipose``   — anipose/aniposelib ``calibration.toml``, :mod:`calib.io_anipose`;
* ``rig``       — our rig YAML (cameras, sources, volume), :mod:`calib.rig_config`.

Every reader returns a :class:`~calib.camera.CameraRig` in our convention (world mm, z up for the
datasets that define one, ``x_cam = R X + t_mm``). Malformed input raises
:class:`~calib.camera.CalibrationError` naming the file, the camera and the field.
OpenCV itself is imported only when an OpenCV file is touched.
"""

from __future__ import annotations

from calib import io_builtin, rig_config  # noqa: F401  (imported for their registration)
from calib.io_formats import (  # noqa: F401  (re-exported: the helpers every reader shares)
    as_array,
    check_units_mm,
    formats,
    load_calibration,
    read_json,
    save_calibration,
    scale_intrinsics,
    select_cameras,
    sniff_format,
    unit_scale_mm,
    write_json,
)

FORMATS = formats()  # the registered format names, in registration order
