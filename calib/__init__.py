"""Camera models and rigs (numpy): projection, importers/writers, calibration tools.

Leaf package: imports nothing internal. ``calib.projection_torch`` is the torch twin.
"""

from calib.camera import CalibrationError, Camera, CameraRig

__all__ = ["CalibrationError", "Camera", "CameraRig"]
