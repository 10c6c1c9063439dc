"""The two training stages of fit-rig, as step functions for :func:`training.fit_rig.loop.train_stage`.

* ``rig``: root + pose nets fine-tuned on synthetic motion projected through THIS rig and volume,
  seen through the estimator's measured error model (the rig-agnostic trainer's scenes and losses,
  :mod:`training.detection_route`, with the rig fixed instead of random).
* ``ssl``: the pose net self-supervised on the footage's training frames: input heatmaps rendered
  from the pseudo 2D people (the inference renderer), cubes centred on the triangulation engine's
  roots (+ jitter), loss = robust score-weighted reprojection of the predicted 3D joints onto the
  pseudo 2D people of every view (Hungarian-matched L1, the worst view dropped:
  :func:`training.ssl.losses.hungarian_l1_loss`); the root net follows the triangulated roots
  (its MSE against their Gaussian root cubes). No labels anywhere.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from calib.projection_torch import CameraTensors, project_points
from engine.detections import render_input_heatmaps
from engine.model import SelfPose3dModel
from engine.project import ViewGeometry, VolumeProjector
from training.detection_route.config import DetectionTrainConfig, EstimatorNoiseConfig, OptimConfig, SceneConfig
from training.detection_route.scenes import Volume, detector_params, scene_on_rig
from training.detection_route.trainer import pose_bank, root_cube_loss, scene_losses
from training.fit_rig.config import FitRigConfig
from training.fit_rig.labels import FrameSet
from training.shelf.trainer import pose_forward
from training.ssl.losses import hungarian_l1_loss


def rig_projector(model: SelfPose3dModel, cameras, center_mm, size_mm) -> VolumeProjector:
    """The engine's projector for the rig and its volume (as ``InferenceRuntime`` builds it)."""
    cfg = model.config
    geometry = ViewGeometry.from_rig(cameras, cfg.backbone.image_size, cfg.backbone.heatmap_size, torch.device("cpu"))
    return VolumeProjector(
        geometry, size_mm, center_mm, cfg.root_net.bins, cfg.pose_net.cube_size_mm, cfg.pose_net.bins
    )


def scene_volume(center_mm, size_mm) -> Volume:
    """The rig's volume as the scene sampler's (floor 150 mm above the box's bottom, as its volumes)."""
    bottom = float(center_mm[2]) - float(size_mm[2]) / 2
    return Volume(tuple(map(float, center_mm)), tuple(map(float, size_mm)), bottom + 150.0)


def detection_config(cfg: FitRigConfig) -> DetectionTrainConfig:
    """The rig-agnostic trainer's config for the losses it shares with the rig stage."""
    r = cfg.rig
    return DetectionTrainConfig(
        sigma_px=cfg.sigma_px,
        scene=SceneConfig(people=tuple(r.people), bystander_prob=r.bystander_prob),
        estimator=EstimatorNoiseConfig(params_file=r.error_model, params={}),
        optim=OptimConfig(root_jitter_mm=r.root_jitter_mm),
        seed=cfg.seed,
    )


def rig_step_fn(model: SelfPose3dModel, cameras, center_mm, size_mm, cfg: FitRigConfig, rng, gen):
    """``step(k) -> (loss, values)`` of the ``rig`` stage."""
    dcfg = detection_config(cfg)
    bank = pose_bank(dcfg)
    params = detector_params(dcfg.estimator)
    volume = scene_volume(center_mm, size_mm)

    def step(_: int):
        root_l, pose_l, errs = [], [], []
        for _ in range(cfg.rig.batch_size):
            scene = scene_on_rig(rng, bank, cameras, volume, dcfg.scene, params, dcfg.estimator)
            r, p, e = scene_losses(model, scene, dcfg, gen)
            root_l.append(r)
            if p is not None:
                pose_l.append(p)
                errs.append(e)
        loss_root = torch.stack(root_l).mean()
        loss = loss_root + (torch.stack(pose_l).mean() if pose_l else 0.0)
        return loss, {"root": loss_root.item(), "mpjpe_mm": float(np.mean(errs)) if errs else float("nan")}

    return step


@dataclass
class TeacherFrame:
    """A training frame of the ``ssl`` stage: pseudo 2D people and the triangulated roots (P,3) mm."""

    frame: FrameSet
    roots_mm: np.ndarray


def ssl_step_fn(
    model: SelfPose3dModel, cameras, center_mm, size_mm, frames: list[TeacherFrame], cfg: FitRigConfig, rng, gen
):
    """``step(k) -> (loss, values)`` of the ``ssl`` stage (one real frameset per step)."""
    projector = rig_projector(model, cameras, center_mm, size_mm)
    cams = CameraTensors.from_rig(cameras)
    g = projector.geometry
    affine = g.affine_hm.cpu().numpy()
    image_wh = tuple(float(np.median([getattr(c, k) for c in cameras])) for k in ("width", "height"))
    s = cfg.ssl

    def step(_: int):
        tf = frames[int(rng.integers(len(frames)))]
        hm = torch.from_numpy(render_input_heatmaps(tf.frame.p15, affine, g.heatmap_wh, cfg.sigma_px))
        roots = torch.from_numpy(tf.roots_mm).float()
        root_loss = root_cube_loss(model, projector, hm, roots)
        centers = roots + s.root_jitter_mm * torch.randn(roots.shape, generator=gen)
        poses = pose_forward(model, projector, hm, centers)  # (P,15,3) mm
        pred_px = project_points(poses, cams)  # (V,P,15,2) original px
        G = max(1, max(len(p) for p in tf.frame.p15))
        V = len(cameras)
        gt = torch.zeros((1, V, G, 15, 2))
        w = torch.zeros((1, V, G, 15))
        for v, people in enumerate(tf.frame.p15):
            if len(people):
                gt[0, v, : len(people)] = torch.from_numpy(people[..., :2])
                sc = torch.from_numpy(people[..., 2])
                w[0, v, : len(people)] = torch.where(sc >= s.min_score, sc, torch.zeros_like(sc))
        reproj = hungarian_l1_loss(
            pred_px[None], torch.ones((1, len(poses)), dtype=torch.bool), gt, w, image_wh, drop_largest=V > 2
        )
        loss = 100.0 * reproj + s.root_weight * root_loss
        return loss, {"reproj_l1": float(reproj.item()), "root": root_loss.item()}

    return step
