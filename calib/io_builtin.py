"""The built-in calibration file formats: importing this module registers each of them.

One line per format module; each registers itself with :func:`calib.io_formats.register_format`.
A new format joins by adding its module here.
"""

from calib import (  # noqa: F401  (imported for their registration)
    io_anipose,
    io_metric_json,
    io_opencv,
    io_panoptic,
    io_qualisys,
    io_voxelpose,
)
