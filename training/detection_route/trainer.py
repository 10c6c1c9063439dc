"""Train the rig-agnostic detection-route model (root net + pose net) on random synthetic scenes.

Every step draws ``batch_size`` scenes (:mod:`training.detection_route.scenes`: a random rig and
volume, synthetic people, the simulated estimator's per-view people), renders the input heatmaps
with the inference renderer (:func:`engine.detections.render_input_heatmaps`, through the
engine's own view geometry for that rig), and trains

* the root net on the mid-hip channel fused into that scene's volume (the engine's
  :class:`engine.project.VolumeProjector` for the scene's rig and volume) against the 3D Gaussian
  root cubes of the target people (MSE, SPEC §3.2), and
* the pose net on cubes around the true roots (+ jitter) against the true 3D joints (L1);

3D supervision is the synthetic truth (no real data, no images). The loop is the shared
:class:`training.runner.StageRunner` (Adam, the two nets as two parameter groups, cosine decay
over the steps or the time budget); resumable: ``out/checkpoint.pt`` holds the weights, the
optimiser state, the step and both random generators every ``checkpoint_every`` steps.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from calib.common.errors import CheckpointError
from calib.configkit import write_resolved
from capture.synthetic.rigs import ring_rig
from engine.checkpoints import save_checkpoint
from engine.config import load_preset
from engine.detections import render_input_heatmaps
from engine.model import SelfPose3dModel, build_model
from engine.project import ViewGeometry, VolumeProjector
from training import targets as tg
from training.detection_route.config import DetectionTrainConfig
from training.detection_route.scenes import ROOT, Scene, detector_params, sample_scene
from training.runner import RESUME_FILE, Schedule, Stage, StageRunner, cosine_factor
from training.shelf.trainer import pose_forward, synthetic_pose_bank

log = logging.getLogger(__name__)


def scene_projector(model: SelfPose3dModel, scene: Scene, device: torch.device | str = "cpu") -> VolumeProjector:
    """The engine's projector for the scene's rig and volume (as ``InferenceRuntime`` builds it)."""
    cfg = model.config
    geometry = ViewGeometry.from_rig(
        scene.rig, cfg.backbone.image_size, cfg.backbone.heatmap_size, torch.device(device)
    )
    return VolumeProjector(
        geometry,
        scene.volume.size_mm,
        scene.volume.center_mm,
        cfg.root_net.bins,
        cfg.pose_net.cube_size_mm,
        cfg.pose_net.bins,
    )


def scene_heatmaps(projector: VolumeProjector, scene: Scene, sigma_px: float) -> torch.Tensor:
    """(V,15,h,w) input heatmaps of the scene's estimator people, by the inference renderer."""
    g = projector.geometry
    return torch.from_numpy(render_input_heatmaps(scene.poses_2d, g.affine_hm.cpu().numpy(), g.heatmap_wh, sigma_px))


def pose_bank(cfg: DetectionTrainConfig) -> np.ndarray:
    """(N,15,3) poses of the synthetic motion model (root at x = y = 0, floor z = 0)."""
    return synthetic_pose_bank(ring_rig(4, seed=cfg.seed), cfg.scene.bank_frames, cfg.seed)


def root_cube_loss(model: SelfPose3dModel, projector, hm: torch.Tensor, roots_mm: torch.Tensor) -> torch.Tensor:
    """The root net's loss: 100 x MSE of its root cube on heatmaps ``hm`` (V,J,H,W) against Gaussian
    cubes at ``roots_mm`` (R,3) (from 3D truth here; from the triangulated roots in fit-rig)."""
    target = tg.root_target_cubes(
        roots_mm[None],
        torch.ones((1, len(roots_mm)), dtype=torch.bool),
        projector.space_size_mm,
        projector.space_center_mm,
        projector.root_bins,
    )
    pred = model.root_net(projector.root_volume(hm[:, ROOT : ROOT + 1]))
    return 100.0 * torch.mean((pred - target) ** 2)


def scene_losses(
    model: SelfPose3dModel, scene: Scene, cfg: DetectionTrainConfig, gen: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor | None, float]:
    """Root loss, pose loss (None without targets) and the batch's pose MPJPE (mm) of one scene."""
    projector = scene_projector(model, scene)
    hm = scene_heatmaps(projector, scene, cfg.sigma_px)
    root_loss = root_cube_loss(model, projector, hm, torch.from_numpy(scene.target_poses_mm[:, ROOT]).float())
    gt = torch.from_numpy(scene.target_poses_mm[: cfg.optim.max_pose_people]).float()
    if not len(gt):
        return root_loss, None, float("nan")
    centers = gt[:, ROOT] + cfg.optim.root_jitter_mm * torch.randn((len(gt), 3), generator=gen)
    poses = pose_forward(model, projector, hm, centers)
    pose_loss = (poses - gt).abs().mean() / 100.0
    return root_loss, pose_loss, float((poses.detach() - gt).norm(dim=-1).mean())


def _release_config(model: SelfPose3dModel, cfg: DetectionTrainConfig):
    rc = replace(model.config.root_net, threshold=cfg.root_threshold)
    return replace(model.config, root_net=rc)


def build_detection_model(cfg: DetectionTrainConfig) -> SelfPose3dModel:
    """A fresh model of ``cfg.model`` with its training initialisation and the release root threshold."""
    model = build_model(load_preset(cfg.model))
    model.init_training_weights()
    model.config = _release_config(model, cfg)
    return model


def load_init(model: SelfPose3dModel, path: str | Path) -> None:
    """Fine-tuning: the root and pose nets from a model file of the same preset."""
    from engine.checkpoints import load_model_file

    source, _ = load_model_file(path)
    try:
        model.root_net.load_state_dict(source.root_net.state_dict())
        model.pose_net.load_state_dict(source.pose_net.state_dict())
    except RuntimeError as exc:
        raise CheckpointError(
            f"its root/pose nets do not fit this preset: {str(exc).splitlines()[0]}",
            file=path,
            field="init",
            fix="give a model file of the same preset (or leave init empty)",
        ) from None


def build_optimizer(model: SelfPose3dModel, lr_root: float, lr_pose: float) -> torch.optim.Optimizer:
    """Adam with the root net and the pose net as two groups at their own rates (this trainer and
    fit-rig's stages)."""
    return torch.optim.Adam(
        [
            {"params": list(model.root_net.parameters()), "lr": lr_root},
            {"params": list(model.pose_net.parameters()), "lr": lr_pose},
        ]
    )


def train(cfg: DetectionTrainConfig, out: str | Path, resume: bool = True) -> dict:
    """Run (or resume) a training; writes ``out/{config.resolved.yaml, log.jsonl, checkpoint.pt,
    model.pt, summary.json}`` and returns the summary."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    write_resolved(cfg, out)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    model = build_detection_model(cfg)
    if cfg.init:
        load_init(model, cfg.init)
    params = detector_params(cfg.estimator)
    rng = np.random.default_rng(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    t_bank = time.time()
    bank = pose_bank(cfg)
    print(f"[detection] pose bank: {len(bank)} poses ({time.time() - t_bank:.1f} s)", flush=True)

    def step(_batch, _position) -> tuple[torch.Tensor, dict[str, float | None]]:
        root_l, pose_l, errs = [], [], []
        for _ in range(cfg.optim.batch_size):
            scene = sample_scene(rng, bank, cfg.rigs, cfg.scene, params, cfg.estimator)
            r, p, e = scene_losses(model, scene, cfg, gen)
            root_l.append(r)
            if p is not None:
                pose_l.append(p)
                errs.append(e)
        loss_root = torch.stack(root_l).mean()
        loss_pose = torch.stack(pose_l).mean() if pose_l else None
        values = {
            "root_loss": loss_root.item(),
            "pose_loss": loss_pose.item() if pose_l else None,
            "mpjpe_mm": float(np.mean(errs)) if errs else None,
        }
        return loss_root + (loss_pose if pose_l else 0.0), values

    stage = Stage(
        "detection",
        {"model": model},
        build_optimizer(model, cfg.optim.lr_root, cfg.optim.lr_pose),
        step=step,
        # cosine decay over the steps or the time budget, whichever ends first
        lr_factor=cosine_factor(cfg.optim.steps, cfg.time_budget_s),
        generators={"scenes": rng, "losses": gen},
    )
    schedule = Schedule(
        steps_per_epoch=cfg.optim.steps,
        log_every=cfg.log_every,
        checkpoint_every=cfg.checkpoint_every,
        time_budget_s=cfg.time_budget_s,
    )
    result = StageRunner(stage, schedule, out, RESUME_FILE, resume, stream=sys.stdout).run()
    model.eval()
    path = save_checkpoint(
        out / "model.pt",
        model,
        {
            "trainer": "training.detection_route",
            "steps": result.steps,
            "input": "detections",
            "train_config": json.dumps({"config": "detection_generic", "seed": cfg.seed}),
        },
    )
    summary = {
        "steps": result.steps,
        "train_s": round(result.seconds, 1),
        "checkpoint": str(path),
        "threads": torch.get_num_threads(),
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    print(f"[detection] saved {path} ({result.steps} steps, {result.seconds / 60:.1f} min)", flush=True)
    return summary
