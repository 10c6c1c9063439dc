"""Generated camera rigs (cameras on a ring or arc looking at a volume) and rig resizing."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from calib.camera import CalibrationError, Camera, CameraRig


def look_at_rotation(center_mm: Sequence[float], target_mm: Sequence[float], roll_deg: float = 0.0) -> np.ndarray:
    """World→camera rotation (3,3) of a camera at ``center_mm`` looking at ``target_mm``.

    Camera axes follow OpenCV: x right, y down, z forward; the image's "up" is world +z
    (rotated by ``roll_deg`` about the optical axis).
    """
    c = np.asarray(center_mm, dtype=np.float64)
    z = np.asarray(target_mm, dtype=np.float64) - c
    if np.linalg.norm(z) < 1e-6:
        raise CalibrationError("look_at_rotation: camera centre and target coincide")
    z /= np.linalg.norm(z)
    x = np.cross(z, [0.0, 0.0, 1.0])
    if np.linalg.norm(x) < 1e-6:  # looking straight up/down: any horizontal x
        x = np.array([1.0, 0.0, 0.0])
    x /= np.linalg.norm(x)
    y = np.cross(z, x)
    r = np.deg2rad(roll_deg)
    x, y = np.cos(r) * x + np.sin(r) * y, -np.sin(r) * x + np.cos(r) * y
    return np.stack([x, y, z])


def intrinsics_from_fov(width: int, height: int, fov_deg: float) -> np.ndarray:
    """(3,3) K with horizontal field of view ``fov_deg`` and the principal point at the centre."""
    if not 10.0 <= fov_deg <= 150.0:
        raise CalibrationError(f"intrinsics_from_fov: fov_deg must be in [10, 150], got {fov_deg}")
    f = 0.5 * width / np.tan(np.deg2rad(fov_deg) / 2)
    return np.array([[f, 0.0, (width - 1) / 2], [0.0, f, (height - 1) / 2], [0.0, 0.0, 1.0]])


def ring_rig(
    num_cameras: int,
    radius_mm: float = 4000.0,
    height_mm: float = 2200.0,
    target_mm: Sequence[float] = (0.0, 0.0, 900.0),
    width: int = 640,
    height: int = 360,
    fov_deg: float = 70.0,
    distortion: Sequence[float] = (-0.12, 0.05, 0.0, 0.0, -0.01),
    arc_deg: float = 360.0,
    start_deg: float = 0.0,
    jitter: float = 1.0,
    seed: int = 0,
    name_format: str = "00_{:02d}",
) -> CameraRig:
    """Cameras evenly spaced on a ring (or an arc) around ``target_mm``, looking at it.

    Realism comes from per-camera jitter (scaled by ``jitter``; 0 gives an ideal rig): position
    ±150 mm, height ±200 mm, focal length ±3 %, principal point ±1 % of the size, aim ±150 mm,
    roll ±1.5°, distortion coefficients ±15 %.

    Args:
        num_cameras: V >= 1.
        radius_mm: horizontal distance from ``target_mm``.
        height_mm: camera height above the floor (z).
        target_mm: (3,) point all cameras look at.
        width, height: image size in px.
        fov_deg: horizontal field of view.
        distortion: base (k1, k2, p1, p2, k3).
        arc_deg: angular span (360 = full ring; otherwise the ends of the arc get cameras).
        start_deg: azimuth of the first camera (0 = +x).
        jitter: scale of the random perturbations.
        seed: random seed of the perturbations.
        name_format: camera names from their index (default Panoptic-style "00_00").
    Returns:
        CameraRig of V cameras.
    """
    if num_cameras < 1:
        raise CalibrationError(f"ring_rig: num_cameras must be >= 1, got {num_cameras}")
    if radius_mm <= 0:
        raise CalibrationError(f"ring_rig: radius_mm must be positive, got {radius_mm}")
    rng = np.random.default_rng(seed)
    target = np.asarray(target_mm, dtype=np.float64)
    full = abs(arc_deg) >= 360.0 - 1e-9
    step = arc_deg / (num_cameras if full or num_cameras == 1 else num_cameras - 1)
    cams = []
    for i in range(num_cameras):
        j = jitter
        az = np.deg2rad(start_deg + i * step)
        r = radius_mm + j * rng.uniform(-150, 150)
        center = np.array(
            [target[0] + r * np.cos(az), target[1] + r * np.sin(az), height_mm + j * rng.uniform(-200, 200)]
        )
        aim = target + j * rng.uniform(-150, 150, size=3)
        R = look_at_rotation(center, aim, roll_deg=j * rng.uniform(-1.5, 1.5))
        K = intrinsics_from_fov(width, height, fov_deg)
        K[0, 0] *= 1 + j * rng.uniform(-0.03, 0.03)
        K[1, 1] = K[0, 0] * (1 + j * rng.uniform(-0.002, 0.002))
        K[0, 2] += j * rng.uniform(-0.01, 0.01) * width
        K[1, 2] += j * rng.uniform(-0.01, 0.01) * height
        dist = np.asarray(distortion, dtype=np.float64) * (1 + j * rng.uniform(-0.15, 0.15, size=5))
        cams.append(Camera.from_center(name_format.format(i), width, height, K, dist, R, center, source="ring_rig"))
    return CameraRig(tuple(cams))


def scale_rig(rig: CameraRig, width: int, height: int) -> CameraRig:
    """The same cameras at another resolution (K scaled as :func:`calib.io.scale_intrinsics` does).

    Raises:
        CalibrationError: if a camera's aspect ratio would change by more than 1 %.
    """
    from calib.io_formats import scale_intrinsics

    for cam in rig:
        sx, sy = width / cam.width, height / cam.height
        if abs(sx / sy - 1.0) > 0.01:
            raise CalibrationError(
                f"scale_rig: camera '{cam.name}' is {cam.width}x{cam.height}; {width}x{height} changes its "
                "aspect ratio (pick a size with the same ratio)"
            )
    return CameraRig(tuple(scale_intrinsics(cam, width, height) for cam in rig))
