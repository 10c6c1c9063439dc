"""Pinhole + Brown–Conrady cameras and ordered camera rigs (numpy, world units mm).

Conventions (DESIGN.md §2, SPEC.md §2.5/§4):
* world frame: z up, millimetres;
* ``R`` is world→camera, ``t_mm`` the translation: ``x_cam = R @ X_w + t_mm``;
  the camera centre is ``C = -R.T @ t_mm`` (VoxelPose's ``T``);
* distortion ``dist = (k1, k2, p1, p2, k3)`` in OpenCV order;
* pixels: x right, y down, (0, 0) the centre of the top-left pixel.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Sequence

import numpy as np

from calib.common.errors import CalibrationError


def as_array(value, shape: tuple[int, ...], what: str, where: str) -> np.ndarray:
    """Float64 array of exactly ``shape`` (same element count is reshaped) or a CalibrationError
    naming the field ``what`` at ``where`` (non-numeric, wrong shape, NaN/inf)."""
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise CalibrationError(f"{where}: field '{what}' is not numeric: {value!r}") from None
    if arr.size == int(np.prod(shape)) and arr.shape != shape:
        arr = arr.reshape(shape)
    if arr.shape != shape:
        raise CalibrationError(f"{where}: field '{what}' must have shape {shape}, got {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise CalibrationError(f"{where}: field '{what}' contains NaN or inf")
    return arr


@dataclass(frozen=True, eq=False)
class Camera:
    """One calibrated camera.

    Attributes:
        name: camera id, e.g. ``"00_03"``.
        width, height: image size in pixels.
        K: (3,3) intrinsics.
        dist: (5,) k1 k2 p1 p2 k3.
        R: (3,3) world→camera rotation.
        t_mm: (3,) world→camera translation in mm.
        source: where the numbers came from (used in error messages).
    """

    name: str
    width: int
    height: int
    K: np.ndarray
    dist: np.ndarray
    R: np.ndarray
    t_mm: np.ndarray
    source: str = field(default="<memory>", compare=False)

    def __post_init__(self) -> None:
        where = f"{self.source}: camera '{self.name}'"
        set_ = object.__setattr__
        set_(self, "K", as_array(self.K, (3, 3), "K", where))
        set_(self, "dist", as_array(self.dist, (5,), "dist", where))
        set_(self, "R", as_array(self.R, (3, 3), "R", where))
        set_(self, "t_mm", as_array(self.t_mm, (3,), "t_mm", where))
        if int(self.width) <= 0 or int(self.height) <= 0:
            raise CalibrationError(f"{where}: resolution must be positive, got {self.width}x{self.height}")
        set_(self, "width", int(self.width))
        set_(self, "height", int(self.height))
        err = np.abs(self.R @ self.R.T - np.eye(3)).max()
        if err > 1e-3 or np.linalg.det(self.R) < 0:
            raise CalibrationError(
                f"{where}: field 'R' is not a rotation (|R R^T - I| = {err:.2e}, det = "
                f"{np.linalg.det(self.R):.3f}); check row/column order and that R is world→camera"
            )
        fx, fy = self.K[0, 0], self.K[1, 1]
        if fx <= 0 or fy <= 0 or abs(self.K[2, 2] - 1.0) > 1e-6 or np.any(self.K[2, :2] != 0):
            raise CalibrationError(f"{where}: field 'K' must be [[fx,s,cx],[0,fy,cy],[0,0,1]] with fx, fy > 0")
        if np.linalg.norm(self.center_mm) > 1e6:
            raise CalibrationError(
                f"{where}: camera centre is {np.linalg.norm(self.center_mm) / 1e3:.0f} m from the origin; "
                "units cannot be right (translations must be millimetres)"
            )

    @property
    def center_mm(self) -> np.ndarray:
        """(3,) camera centre in world mm (VoxelPose ``T``)."""
        return -self.R.T @ self.t_mm

    @property
    def f(self) -> np.ndarray:
        """(2,) focal lengths fx, fy in px."""
        return np.array([self.K[0, 0], self.K[1, 1]])

    @property
    def c(self) -> np.ndarray:
        """(2,) principal point cx, cy in px."""
        return np.array([self.K[0, 2], self.K[1, 2]])

    @property
    def resolution(self) -> tuple[int, int]:
        """(width, height) in px."""
        return (self.width, self.height)

    @classmethod
    def from_center(
        cls, name: str, width: int, height: int, K, dist, R, center_mm, source: str = "<memory>"
    ) -> "Camera":
        """Build from the VoxelPose form (R world→camera, camera centre T in mm)."""
        R = np.asarray(R, dtype=np.float64).reshape(3, 3)
        center = np.asarray(center_mm, dtype=np.float64).reshape(3)
        return cls(name, width, height, K, dist, R, -R @ center, source)

    def replace(self, **changes) -> "Camera":
        """Copy with some fields changed (validated again)."""
        values = {n: getattr(self, n) for n in ("name", "width", "height", "K", "dist", "R", "t_mm", "source")}
        values.update(changes)
        return Camera(**values)


@dataclass(frozen=True, eq=False)
class CameraRig:
    """An ordered set of cameras with unique names."""

    cameras: tuple[Camera, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "cameras", tuple(self.cameras))
        if not self.cameras:
            raise CalibrationError("camera rig: no cameras")
        names = [c.name for c in self.cameras]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise CalibrationError(f"camera rig: duplicate camera names {dup}")

    def __len__(self) -> int:
        return len(self.cameras)

    def __iter__(self):
        return iter(self.cameras)

    def __getitem__(self, key: int | str) -> Camera:
        if isinstance(key, str):
            for cam in self.cameras:
                if cam.name == key:
                    return cam
            raise CalibrationError(f"camera rig: no camera named '{key}'; available: {self.names}")
        return self.cameras[key]

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.cameras]

    def subset(self, names: Iterable[str]) -> "CameraRig":
        """Rig of the named cameras, in the order given."""
        return CameraRig(tuple(self[n] for n in names))

    # Stacked arrays for the engine (V = number of cameras).
    @property
    def K(self) -> np.ndarray:
        """(V,3,3)"""
        return np.stack([c.K for c in self.cameras])

    @property
    def dist(self) -> np.ndarray:
        """(V,5) k1 k2 p1 p2 k3"""
        return np.stack([c.dist for c in self.cameras])

    @property
    def R(self) -> np.ndarray:
        """(V,3,3) world→camera"""
        return np.stack([c.R for c in self.cameras])

    @property
    def t_mm(self) -> np.ndarray:
        """(V,3)"""
        return np.stack([c.t_mm for c in self.cameras])

    @property
    def centers_mm(self) -> np.ndarray:
        """(V,3) camera centres in world mm."""
        return np.stack([c.center_mm for c in self.cameras])

    @property
    def image_sizes(self) -> np.ndarray:
        """(V,2) width, height in px."""
        return np.array([[c.width, c.height] for c in self.cameras], dtype=np.int64)


def rig_from_cameras(cameras: Sequence[Camera]) -> CameraRig:
    """Convenience constructor."""
    return CameraRig(tuple(cameras))
