"""Random rigs, volumes and people, seen through a simulated 2D estimator.

One :class:`Scene` = a random rig of 2–8 cameras (random image sizes incl. portrait, heights,
distances, fields of view) around a random volume, synthetic people (poses from the
``capture.synthetic`` motion model) inside it, sometimes a bystander outside it, their exact
projections, a cheap occlusion model, and the simulated estimator's per-view people
(``capture.synthetic.detector.simulate_detections``: joint noise, misses, wrong-person joints,
left/right swaps, missed people, false people). The per-view people are exactly what
``engine.api.Predictor.predict_detections`` receives at inference.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from calib.camera import Camera, CameraRig
from calib.configkit import from_dict, to_dict
from calib.projection import project_points
from capture.synthetic.detector import DetectorParams, load_detector_params, simulate_detections
from capture.synthetic.rigs import look_at_rotation
from calib.common.skeleton import PANOPTIC15
from capture.synthetic.world import FrameTruth
from training.detection_route.config import EstimatorNoiseConfig, RigSamplerConfig, SceneConfig

ROOT = PANOPTIC15.root  # mid-hip
_BONES = PANOPTIC15.edges  # for the occlusion model: neck-nose, neck-hip, arms, legs


@dataclass(frozen=True)
class Volume:
    """An axis-aligned capture volume (mm) and its floor height."""

    center_mm: tuple[float, float, float]
    size_mm: tuple[float, float, float]
    floor_z_mm: float

    def contains(self, points_mm: np.ndarray) -> np.ndarray:
        """(...,3) -> (...) bool, inside the box."""
        c, s = np.asarray(self.center_mm), np.asarray(self.size_mm)
        return np.all(np.abs(np.asarray(points_mm) - c) <= s / 2, axis=-1)


@dataclass
class Scene:
    """One synthetic training / evaluation scene.

    Attributes:
        rig: the random cameras.
        volume: the random volume.
        poses_mm: (P,15,3) every person (targets first, then bystanders).
        target: (P,) bool, inside the volume and seen by >= min_views cameras (what the model
            must find).
        truth: exact 2D truth and visibility (:class:`capture.synthetic.world.FrameTruth`).
        poses_2d: per view (N_v,15,3) float32 simulated estimator people: x, y px, score (0 = absent).
        person_ids: per view (N_v,) the true person index, -1 for a false person.
    """

    rig: CameraRig
    volume: Volume
    poses_mm: np.ndarray
    target: np.ndarray
    truth: FrameTruth
    poses_2d: list[np.ndarray]
    person_ids: list[np.ndarray]

    @property
    def target_poses_mm(self) -> np.ndarray:
        return self.poses_mm[self.target]


def _u(rng: np.random.Generator, lo_hi) -> float:
    return float(rng.uniform(lo_hi[0], lo_hi[1]))


def sample_volume(rng: np.random.Generator, cfg: RigSamplerConfig) -> Volume:
    """A random volume: x, y sides, height, centre and floor from ``cfg``."""
    floor = _u(rng, cfg.floor_z_mm)
    sx, sy, sz = _u(rng, cfg.volume_xy_mm), _u(rng, cfg.volume_xy_mm), _u(rng, cfg.volume_z_mm)
    cx, cy = rng.uniform(-cfg.center_xy_mm, cfg.center_xy_mm, size=2)
    bottom = floor - 150.0
    return Volume((float(cx), float(cy), bottom + sz / 2), (sx, sy, sz), floor)


def sample_rig(rng: np.random.Generator, cfg: RigSamplerConfig, volume: Volume) -> CameraRig:
    """2–8 cameras spread over a random arc around ``volume``, each aimed near its centre.

    The long side's field of view is sized so the volume roughly fills the image (x ``fov_margin``).
    """
    V = int(rng.integers(cfg.cameras[0], cfg.cameras[1] + 1))
    c = np.asarray(volume.center_mm, float)
    half_diag = 0.5 * math.hypot(volume.size_mm[0], volume.size_mm[1])
    arc = _u(rng, cfg.arc_deg)
    start = rng.uniform(0, 360)
    shared = rng.random() < cfg.shared_resolution
    res_all = cfg.resolutions[int(rng.integers(len(cfg.resolutions)))]
    cams = []
    for i in range(V):
        az = np.deg2rad(start + (arc * i / max(V - (0 if arc >= 359 else 1), 1)) + rng.uniform(-10, 10))
        dist = half_diag * _u(rng, cfg.distance_factor) + _u(rng, cfg.distance_extra_mm)
        center = np.array(
            [c[0] + dist * math.cos(az), c[1] + dist * math.sin(az), volume.floor_z_mm + _u(rng, cfg.camera_height_mm)]
        )
        aim = np.array(
            [
                c[0] + rng.uniform(-cfg.aim_jitter_mm, cfg.aim_jitter_mm),
                c[1] + rng.uniform(-cfg.aim_jitter_mm, cfg.aim_jitter_mm),
                volume.floor_z_mm + _u(rng, cfg.aim_z_mm),
            ]
        )
        R = look_at_rotation(center, aim, roll_deg=rng.uniform(-2.0, 2.0))
        w, h = res_all if shared else cfg.resolutions[int(rng.integers(len(cfg.resolutions)))]
        subtended = 2 * math.degrees(math.atan2(half_diag, max(np.linalg.norm(aim - center), 1.0)))
        fov = float(np.clip(subtended * _u(rng, cfg.fov_margin), *cfg.fov_deg))
        if cfg.fov_free_prob and rng.random() < cfg.fov_free_prob:
            fov = _u(rng, cfg.fov_deg)
        f = 0.5 * max(w, h) / math.tan(math.radians(fov) / 2)
        K = np.array(
            [
                [f, 0.0, (w - 1) / 2 + rng.uniform(-0.01, 0.01) * w],
                [0.0, f * (1 + rng.uniform(-0.002, 0.002)), (h - 1) / 2 + rng.uniform(-0.01, 0.01) * h],
                [0.0, 0.0, 1.0],
            ]
        )
        dist_coeffs = np.array([_u(rng, cfg.distortion_k1), 0.0, 0.0, 0.0, 0.0])
        cams.append(Camera.from_center(f"cam{i:02d}", int(w), int(h), K, dist_coeffs, R, center, source="random_rig"))
    return CameraRig(tuple(cams))


def frame_truth(rig: CameraRig, joints_mm: np.ndarray, body_radius_mm: float = 120.0) -> FrameTruth:
    """Exact 2D truth of people ``joints_mm`` (P,15,3) in every camera, with a cheap occlusion model.

    A joint is hidden when a nearer person (by root depth) has a bone passing within
    ``body_radius_mm`` (projected at that person's depth) of it in the image; that person is its
    occluder. (The synthetic world's renderer does this with label images; this is ~1000x cheaper.)
    """
    V, P = len(rig), len(joints_mm)
    j2d = np.full((V, P, 15, 2), np.nan)
    depth = np.full((V, P, 15), np.nan)
    in_image = np.zeros((V, P, 15), bool)
    visible = np.zeros((V, P, 15), bool)
    occluder = np.full((V, P, 15), -1, np.int64)
    a_idx, b_idx = np.array(_BONES).T
    for v, cam in enumerate(rig):
        if not P:
            continue
        uv = project_points(joints_mm, cam)  # (P,15,2)
        z = joints_mm @ cam.R[2] + cam.t_mm[2]  # (P,15)
        front = z > 50.0
        uv = np.where(front[..., None], uv, np.nan)
        inside = (
            front
            & (uv[..., 0] >= 0)
            & (uv[..., 0] <= cam.width - 1)
            & (uv[..., 1] >= 0)
            & (uv[..., 1] <= cam.height - 1)
        )
        j2d[v], depth[v], in_image[v] = uv, z, inside
        vis = inside.copy()
        fx = float(cam.K[0, 0])
        order = np.argsort(z[:, ROOT])
        for rank, q in enumerate(order):  # q hides the joints of every farther person p
            if not front[q, ROOT]:
                continue
            radius_px = body_radius_mm * fx / z[q, ROOT]
            a, b = uv[q, a_idx], uv[q, b_idx]  # (14,2)
            ok = np.isfinite(a).all(-1) & np.isfinite(b).all(-1)
            if not ok.any():
                continue
            a, b = a[ok], b[ok]
            for p in order[rank + 1 :]:
                pts = np.nan_to_num(uv[p], nan=-1e9)  # (15,2)
                ab = b - a  # (K,2)
                t = np.clip(((pts[:, None] - a[None]) * ab[None]).sum(-1) / np.maximum((ab**2).sum(-1), 1e-9), 0, 1)
                d = np.linalg.norm(pts[:, None] - (a[None] + t[..., None] * ab[None]), axis=-1).min(1)  # (15,)
                hidden = inside[p] & (d < radius_px) & (z[p] > z[q, ROOT] + 100.0)
                occluder[v, p] = np.where(hidden & (occluder[v, p] < 0), q, occluder[v, p])
                vis[p] &= ~hidden
        visible[v] = vis
    ids = np.arange(P, dtype=np.int64)
    return FrameTruth(0, 0.0, ids, joints_mm, np.ones(P, bool), j2d, depth, in_image, visible, occluder)


def detector_params(cfg: EstimatorNoiseConfig) -> DetectorParams:
    """DetectorParams from ``params_file`` (if any) overridden by ``params``."""
    data: dict = to_dict(load_detector_params(Path(cfg.params_file))) if cfg.params_file else {}
    data.update(cfg.params or {})
    return from_dict(DetectorParams, data)


def estimator_people(
    scene_truth: FrameTruth, rig: CameraRig, params: DetectorParams, cfg: EstimatorNoiseConfig, seed
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Simulated estimator output per view: (N,15,3) x, y px, score and (N,) true person (-1 = false)."""
    dets = simulate_detections(scene_truth, rig, params, seed=seed, variant="soft")
    poses, ids = [], []
    for cam, d in zip(rig, dets):
        arr = (
            np.concatenate([d.joints_2d, d.scores[..., None]], -1).astype(np.float32)
            if len(d)
            else np.zeros((0, 15, 3), np.float32)
        )
        bad = ~np.isfinite(arr).all(-1) | (arr[..., 2] < cfg.min_joint_score)
        if cfg.drop_outside_image and len(arr):
            bad |= (
                (arr[..., 0] < 0) | (arr[..., 0] > cam.width - 1) | (arr[..., 1] < 0) | (arr[..., 1] > cam.height - 1)
            )
        arr[bad] = 0.0
        keep = (arr[..., 2] > 0).sum(-1) >= 3  # the estimator reports people, not lone joints
        poses.append(arr[keep])
        ids.append(np.asarray(d.person_ids)[keep] if len(d) else np.zeros(0, np.int64))
    return poses, ids


def place_person(rng: np.random.Generator, pose: np.ndarray, xy_mm: np.ndarray, floor_z_mm: float) -> np.ndarray:
    """A bank pose (15,3) (root at x = y = 0, floor at z = 0) turned by a random yaw and put at ``xy_mm``."""
    yaw = rng.uniform(0, 2 * math.pi)
    c, s = math.cos(yaw), math.sin(yaw)
    out = pose.astype(np.float64).copy()
    out[:, 0], out[:, 1] = c * pose[:, 0] - s * pose[:, 1], s * pose[:, 0] + c * pose[:, 1]
    out[:, :2] += xy_mm
    out[:, 2] += floor_z_mm
    return out


def _views_seeing(rig: CameraRig, points_mm: np.ndarray) -> np.ndarray:
    """(N,3) -> (N,) number of cameras with the point in front and inside the image."""
    n = np.zeros(len(points_mm), int)
    for cam in rig:
        uv = project_points(points_mm, cam)
        z = points_mm @ cam.R[2] + cam.t_mm[2]
        n += (z > 50) & (uv[:, 0] >= 0) & (uv[:, 0] < cam.width) & (uv[:, 1] >= 0) & (uv[:, 1] < cam.height)
    return n


def sample_scene(
    rng: np.random.Generator,
    bank: np.ndarray,
    rigs: RigSamplerConfig,
    scene: SceneConfig,
    params: DetectorParams,
    noise: EstimatorNoiseConfig,
) -> Scene:
    """One random scene (rig, volume, people, simulated estimator output); see the module docstring."""
    volume = sample_volume(rng, rigs)
    rig = sample_rig(rng, rigs, volume)
    return scene_on_rig(rng, bank, rig, volume, scene, params, noise)


def scene_on_rig(
    rng: np.random.Generator,
    bank: np.ndarray,
    rig: CameraRig,
    volume: Volume,
    scene: SceneConfig,
    params: DetectorParams,
    noise: EstimatorNoiseConfig,
) -> Scene:
    """Random people (and sometimes a bystander) in a given rig and volume, seen through the
    simulated estimator (a user's own rig: ``training.fit_rig``; random rigs: :func:`sample_scene`)."""
    c, s = np.asarray(volume.center_mm), np.asarray(volume.size_mm)
    n = int(rng.integers(scene.people[0], scene.people[1] + 1))
    lo, hi = c[:2] - s[:2] / 2 + scene.margin_mm, c[:2] + s[:2] / 2 - scene.margin_mm
    people = [
        place_person(rng, bank[int(rng.integers(len(bank)))], rng.uniform(lo, hi), volume.floor_z_mm) for _ in range(n)
    ]
    inside = [True] * n
    if rng.random() < scene.bystander_prob:  # someone just outside the volume, 0.3-3 m off a side
        side = int(rng.integers(4))
        xy = rng.uniform(lo, hi)
        off = rng.uniform(300, 3000)
        axis, sign = side % 2, (-1 if side < 2 else 1)
        xy[axis] = c[axis] + sign * (s[axis] / 2 + off)
        people.append(place_person(rng, bank[int(rng.integers(len(bank)))], xy, volume.floor_z_mm))
        inside.append(False)
    poses = np.stack(people) if people else np.zeros((0, 15, 3))
    target = np.asarray(inside, bool)
    if len(poses):
        target &= volume.contains(poses[:, ROOT]) & (_views_seeing(rig, poses[:, ROOT]) >= scene.min_views)
    truth = frame_truth(rig, poses, scene.body_radius_mm)
    poses_2d, ids = estimator_people(truth, rig, params, noise, seed=int(rng.integers(2**31)))
    return Scene(rig, volume, poses.astype(np.float32), target, truth, poses_2d, ids)
