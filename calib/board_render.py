"""Render a calibration board as seen by a known camera (distortion, blur, noise).

Used by the calibration tests (ground truth is exact) and for users' dry runs of the calibration
tools (``selfpose3d calibrate board --render-rig ...``). Every output pixel is traced back through
the camera's distortion model to the board plane and samples a high-resolution board texture
(supersampled, then area-averaged), so rendered corners agree with
:func:`calib.projection.project_points` to a small fraction of a pixel.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from calib.boards import BoardSpec, board_image
from calib.camera import Camera
from calib.projection import project_points


@dataclass(frozen=True, eq=False)
class BoardPose:
    """Board frame -> world frame: ``X_w = R_wb @ X_b + t_wb_mm``."""

    R_wb: np.ndarray
    t_wb_mm: np.ndarray

    def points_w(self, points_b: np.ndarray) -> np.ndarray:
        """(N,3) board points -> (N,3) world mm."""
        return points_b @ self.R_wb.T + self.t_wb_mm


def look_at_rotation(forward: np.ndarray, up_hint: np.ndarray) -> np.ndarray:
    """(3,3) rotation whose third column is ``forward`` (unit) and second is ~``-up_hint``."""
    z = forward / np.linalg.norm(forward)
    x = np.cross(-up_hint, z)
    if np.linalg.norm(x) < 1e-9:
        x = np.cross([1.0, 0.0, 0.0], z)
    x /= np.linalg.norm(x)
    y = np.cross(z, x)
    return np.stack([x, y, z], axis=1)


def _rot(axis: np.ndarray, angle_rad: float) -> np.ndarray:
    from scipy.spatial.transform import Rotation

    return Rotation.from_rotvec(np.asarray(axis, float) / np.linalg.norm(axis) * angle_rad).as_matrix()


def board_pose_facing(
    camera: Camera,
    spec: BoardSpec,
    target_px: tuple[float, float],
    distance_mm: float,
    tilt_deg: tuple[float, float] = (0.0, 0.0),
    roll_deg: float = 0.0,
) -> BoardPose:
    """Board pose whose centre lies on the ray through ``target_px`` at ``distance_mm`` from the camera.

    The board faces the camera, then is tilted about its own x/y axes by ``tilt_deg`` and rolled
    in-plane by ``roll_deg``.
    """
    from calib.projection import pixel_rays_w

    ray_w = pixel_rays_w(np.asarray(target_px, dtype=np.float64), camera)
    centre_w = camera.center_mm + distance_mm * ray_w
    cam_down_w = camera.R.T @ np.array([0.0, 1.0, 0.0])
    R = look_at_rotation(ray_w, -cam_down_w)  # board z along the ray (pointing away from the camera)
    R = R @ _rot([1, 0, 0], np.deg2rad(tilt_deg[0])) @ _rot([0, 1, 0], np.deg2rad(tilt_deg[1]))
    R = R @ _rot([0, 0, 1], np.deg2rad(roll_deg))
    half = np.array([spec.size_mm[0] / 2.0, spec.size_mm[1] / 2.0, 0.0])
    return BoardPose(R, centre_w - R @ half)


def random_board_poses(
    camera: Camera,
    spec: BoardSpec,
    count: int,
    rng: np.random.Generator,
    distance_mm: tuple[float, float],
    max_tilt_deg: float = 40.0,
    max_roll_deg: float = 20.0,
    margin: float = 0.2,
) -> list[BoardPose]:
    """``count`` random poses with the board centre inside the image (``margin`` fraction kept free)."""
    poses = []
    for _ in range(count):
        target = (camera.width * rng.uniform(margin, 1.0 - margin), camera.height * rng.uniform(margin, 1.0 - margin))
        tilt = rng.uniform(-max_tilt_deg, max_tilt_deg, size=2)
        poses.append(
            board_pose_facing(
                camera, spec, target, rng.uniform(*distance_mm), tuple(tilt), rng.uniform(-max_roll_deg, max_roll_deg)
            )
        )
    return poses


class BoardRenderer:
    """Renders one board through one camera; caches the camera's per-pixel rays.

    Args:
        camera: the camera (intrinsics, distortion, pose).
        spec: the board.
        supersample: render at this factor and area-average down (anti-aliasing).
        background: grey level outside the board.
    """

    def __init__(self, camera: Camera, spec: BoardSpec, supersample: int = 2, background: int = 110) -> None:
        import cv2

        self.camera = camera
        self.spec = spec
        self.supersample = int(supersample)
        self.background = int(background)
        s = self.supersample
        w, h = camera.width * s, camera.height * s
        # Undistort a coarse grid (every 4th sample) exactly, then interpolate bilinearly in float64:
        # the map is smooth, the interpolation error is ~1e-3 px, and init is ~15x faster.
        step = 4
        gu = (np.arange(0, w + step, step) + 0.5) / s - 0.5
        gv = (np.arange(0, h + step, step) + 0.5) / s - 0.5
        pix = np.stack(np.meshgrid(gu, gv), axis=-1).reshape(-1, 1, 2)
        criteria = (cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, 40, 1e-12)
        coarse = cv2.undistortPoints(pix, camera.K, camera.dist, None, None, criteria=criteria)
        coarse = coarse.reshape(len(gv), len(gu), 2).astype(np.float64)
        i0, fi = np.divmod(np.arange(w), step)
        j0, fj = np.divmod(np.arange(h), step)
        fi, fj = (fi / step)[None, :, None], (fj / step)[:, None, None]
        rows = coarse[:, i0] * (1 - fi) + coarse[:, i0 + 1] * fi  # (Gv,W,2)
        xy = rows[j0] * (1 - fj) + rows[j0 + 1] * fj  # (H,W,2) normalised
        self._rays_c = np.concatenate([xy, np.ones_like(xy[..., :1])], axis=-1).astype(np.float64)  # (H,W,3)
        # Texture mip-map: level k has ppm0 / 2**k px per mm, each area-averaged from the finer one.
        # A square is a power-of-two number of texture px (<= 4096 px on the long side) and the margin
        # half a square, so every level has whole-pixel squares and aligned pixel centres.
        self._margin_mm = spec.square_mm * 0.5
        square_px = 2 ** int(np.floor(np.log2(4096.0 / (max(spec.squares_x, spec.squares_y) + 1))))
        ppm0 = square_px / spec.square_mm
        finest = board_image(spec, ppm0, self._margin_mm).astype(np.float32)
        self._mips = [(ppm0, finest)]
        while self._mips[-1][0] * spec.square_mm > 4:  # down to 4 px per square
            ppm, tex = self._mips[-1]
            even = tex[: tex.shape[0] // 2 * 2, : tex.shape[1] // 2 * 2]  # exact 2x keeps pixel centres aligned
            half = cv2.resize(even, (even.shape[1] // 2, even.shape[0] // 2), interpolation=cv2.INTER_AREA)
            self._mips.append((ppm / 2.0, half))
        self._cv2 = cv2

    def render(
        self,
        pose: BoardPose,
        blur_sigma_px: float = 0.0,
        noise_std: float = 0.0,
        rng: np.random.Generator | None = None,
        motion_blur_px: float = 0.0,
    ) -> np.ndarray:
        """(H,W) uint8 grey image of the board at ``pose`` (board->world)."""
        cv2 = self._cv2
        cam = self.camera
        R_cb = cam.R @ pose.R_wb
        t_cb = cam.R @ pose.t_wb_mm + cam.t_mm
        n = R_cb[:, 2]
        denom = self._rays_c @ n  # (H,W)
        with np.errstate(divide="ignore", invalid="ignore"):
            lam = (n @ t_cb) / denom
        X_c = self._rays_c * lam[..., None]
        X_b = (X_c - t_cb) @ R_cb  # R_cb^T (X_c - t)
        # Finest sample footprint on the board (mm) picks the mip level with <= 1 texture px per sample.
        valid = np.isfinite(lam) & (lam > 0)
        near_mm = float(np.percentile(lam[valid], 2)) if np.any(valid) else 1e3
        footprint_mm = near_mm / cam.K[0, 0] / self.supersample
        ppm, tex = self._mips[-1]
        for level_ppm, level_tex in self._mips:
            if level_ppm * footprint_mm <= 0.5:
                ppm, tex = level_ppm, level_tex
                break
        map_x = ((X_b[..., 0] + self._margin_mm) * ppm - 0.5).astype(np.float32)
        map_y = ((X_b[..., 1] + self._margin_mm) * ppm - 0.5).astype(np.float32)
        map_x[~valid] = -1e6
        map_y[~valid] = -1e6
        img = cv2.remap(
            tex, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=float(self.background)
        )
        s = self.supersample
        img = cv2.resize(img, (cam.width, cam.height), interpolation=cv2.INTER_AREA) if s > 1 else img
        img = 20.0 + img * (215.0 / 255.0)  # not pure black/white, as a real print
        if blur_sigma_px > 0:
            img = cv2.GaussianBlur(img, (0, 0), blur_sigma_px)
        if motion_blur_px > 1:
            k = int(round(motion_blur_px))
            img = cv2.filter2D(img, -1, np.full((1, k), 1.0 / k, np.float32))
        if noise_std > 0:
            rng = rng if rng is not None else np.random.default_rng(0)
            img = img + rng.normal(0.0, noise_std, size=img.shape)
        return np.clip(np.rint(img), 0, 255).astype(np.uint8)

    def true_corners(self, pose: BoardPose) -> tuple[np.ndarray, np.ndarray]:
        """Ids (N,) and exact projected pixels (N,2) of the corners in front of and inside the image."""
        pts_w = pose.points_w(self.spec.board_points_mm())
        uv = project_points(pts_w, self.camera)
        depth = (pts_w @ self.camera.R.T + self.camera.t_mm)[:, 2]
        ok = (
            (depth > 0)
            & (uv[:, 0] >= 0)
            & (uv[:, 0] <= self.camera.width - 1)
            & (uv[:, 1] >= 0)
            & (uv[:, 1] <= self.camera.height - 1)
        )
        return np.nonzero(ok)[0], uv[ok]


def rig_board_poses(
    rig,
    spec: BoardSpec,
    count: int,
    rng: np.random.Generator,
    center_mm,
    spread_mm: float = 400.0,
    max_roll_deg: float = 30.0,
) -> list[BoardPose]:
    """Random board poses inside a room, each facing a point between a random camera and a neighbour.

    Args:
        rig: the cameras (a :class:`calib.camera.CameraRig`).
        spec: the board.
        count: number of poses.
        rng: random generator.
        center_mm: (3,) centre of the region where board centres are drawn (world mm).
        spread_mm: half-size of that region.
        max_roll_deg: in-plane rotation range.
    """
    centers = rig.centers_mm
    poses = []
    for _ in range(count):
        middle = np.asarray(center_mm, float) + rng.uniform(-spread_mm, spread_mm, 3) * np.array([1.0, 1.0, 0.5])
        a = int(rng.integers(len(centers)))
        neighbours = np.argsort(np.linalg.norm(centers - centers[a], axis=1))[1:3]
        b = int(rng.choice(neighbours))
        mix = rng.uniform(0.0, 1.0)
        looker = (1 - mix) * centers[a] + mix * centers[b]
        facing = looker - middle  # from the board towards the cameras
        R = look_at_rotation(-facing, np.array([0.0, 0.0, 1.0]))  # board z points away from the cameras
        R = R @ _rot([0, 0, 1], np.deg2rad(rng.uniform(-max_roll_deg, max_roll_deg)))
        half = np.array([spec.size_mm[0] / 2.0, spec.size_mm[1] / 2.0, 0.0])
        poses.append(BoardPose(R, middle - R @ half))
    return poses


def floor_board_pose(spec: BoardSpec, origin_mm=(0.0, 0.0, 0.0)) -> BoardPose:
    """The board lying face up on the floor with its first inner corner at ``origin_mm`` and its
    columns along world x (the convention of ``WorldFrame(reference="board")``)."""
    R = np.diag([1.0, -1.0, -1.0])
    first = spec.board_points_mm()[0]
    return BoardPose(R, np.asarray(origin_mm, float) - R @ first)
