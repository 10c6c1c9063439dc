"""Train the root and pose nets on Shelf from 2D detections, never reading its 3D ground truth.

* Root net: synthetic roots in the Shelf volume (where >= ``min_views`` cameras see them, from the
  calibration alone), rendered as detector-like root heatmaps (score-scaled peaks, missed views,
  pixel noise, spurious blobs) and supervised with the 3D Gaussian root cubes (SPEC §3.2 (a)).
* Pose net, ``ssl``: on the training frames, the frozen root net's proposals give the cubes; the
  predicted 3D poses are projected into every camera and matched (Hungarian, per view) to the
  PAF-grouped detections; the L1 of each joint is weighted by the detection's confidence. With no
  images there is no attention net: the detection confidence *is* the per-joint weight the
  attention would learn (SPEC §3.3 steps 5 and 7).
* Pose net, ``synthetic``: synthetic 3D poses (``capture.synthetic`` motion model) placed in the
  Shelf volume, projected into the Shelf cameras and rendered as noisy detection heatmaps, supervised
  in 3D (VoxelPose-style; no real data).

Everything runs on the engine's own projector, root/pose nets and soft-argmax, so what is trained
is exactly what ``engine.api.Predictor.predict_detections`` runs.
"""

from __future__ import annotations

import json
import logging
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from calib.camera import CameraRig
from calib.common.errors import CheckpointError, ConfigError
from calib.common.heatmaps import HeatmapCodec
from calib.configkit import write_resolved
from calib.projection_torch import project_points, world_to_camera
from engine.checkpoints import load_model_file, save_checkpoint
from engine.config import load_preset
from engine.device import resolve_device
from engine.model import SelfPose3dModel, build_model
from engine.posenet import soft_argmax
from engine.project import ViewGeometry, VolumeProjector
from engine.rootnet import extract_proposals
from training import targets as tg
from training.runner import Schedule, Stage, StageRunner, cosine_factor
from training.shelf.config import PoseTrainConfig, RootTrainConfig, ShelfTrainConfig
from training.shelf.data import ShelfDetections, parse_frames
from training.ssl.losses import hungarian_l1_loss

log = logging.getLogger(__name__)


# ------------------------------------------------------------------------------------------ pieces


def coverage_box(rig: CameraRig, size_mm, center_mm, z_range_mm, min_views: int, step_mm: float = 100.0) -> np.ndarray:
    """(3,2) box of the room's x, y where >= ``min_views`` cameras see a point at mid ``z_range_mm``.

    Uses the calibration only (the people's positions are not known).
    """
    from calib.projection import depth_mm
    from calib.projection import project_points as project_np

    size, center = np.asarray(size_mm, float), np.asarray(center_mm, float)
    xs = np.arange(center[0] - size[0] / 2, center[0] + size[0] / 2 + 1, step_mm)
    ys = np.arange(center[1] - size[1] / 2, center[1] + size[1] / 2 + 1, step_mm)
    xx, yy = np.meshgrid(xs, ys, indexing="ij")
    pts = np.stack([xx.ravel(), yy.ravel(), np.full(xx.size, float(np.mean(z_range_mm)))], -1)
    seen = np.zeros(len(pts), int)
    for cam in rig:
        uv, depth = project_np(pts, cam), depth_mm(pts, cam)
        seen += (depth > 0) & (uv[:, 0] >= 0) & (uv[:, 0] < cam.width) & (uv[:, 1] >= 0) & (uv[:, 1] < cam.height)
    ok = pts[seen >= min_views]
    if not len(ok):
        raise ConfigError(
            f"no point of the room is seen by {min_views} cameras", field="root.min_views", fix="lower it"
        )
    return np.array([[ok[:, 0].min(), ok[:, 0].max()], [ok[:, 1].min(), ok[:, 1].max()], list(z_range_mm)])


def render_detections(
    uv_hm: torch.Tensor, amp: torch.Tensor, heatmap_wh: tuple[int, int], sigma: float = 3.0
) -> torch.Tensor:
    """Score-scaled Gaussians, max over people (as ``engine.detections.render_input_heatmaps``,
    but on the whole heatmap: no 3σ window).

    Args:
        uv_hm: (B,V,P,J,2) heatmap px.
        amp: (B,V,P,J) peaks (0 = absent).
    Returns:
        (B,V,J,H,W).
    """
    codec = HeatmapCodec(heatmap_wh, sigma, window="none", centre="exact", combine="max")
    return codec.encode(uv_hm, amp)


def to_heatmap_px(points_mm: torch.Tensor, geometry: ViewGeometry) -> tuple[torch.Tensor, torch.Tensor]:
    """World points (...,3) -> heatmap px (V,...,2) and in-front-of-camera mask (V,...)."""
    uv = project_points(points_mm, geometry.cams, z_eps=tg.PROJECT_Z_EPS)  # (V,...,2) original px
    shape = (uv.shape[0],) + (1,) * (uv.dim() - 2)
    a = geometry.affine_hm
    x = a[:, 0, 0].reshape(shape) * uv[..., 0] + a[:, 0, 1].reshape(shape) * uv[..., 1] + a[:, 0, 2].reshape(shape)
    y = a[:, 1, 0].reshape(shape) * uv[..., 0] + a[:, 1, 1].reshape(shape) * uv[..., 1] + a[:, 1, 2].reshape(shape)
    depth = world_to_camera(points_mm.float(), geometry.cams)[..., 2]  # (V,...)
    return torch.stack([x, y], -1), depth > 0


def pose_forward(
    model: SelfPose3dModel,
    projector: VolumeProjector,
    heatmaps: torch.Tensor,
    centers: torch.Tensor,
    views_present: torch.Tensor | None = None,
) -> torch.Tensor:
    """(V,J,h,w) heatmaps, (P,3) centres -> (P,J,3) mm, with gradient into the pose net."""
    cubes = projector.person_cubes(heatmaps, centers, views_present)
    return soft_argmax(model.pose_net(cubes), centers, projector.cube_axes, model.config.pose_net.beta)


# ------------------------------------------------------------------------------------------ stages


@dataclass(frozen=True)
class ShelfRun:
    """Where the Shelf stages run: the run folder (one ``log.jsonl`` for all stages) and the log cadence."""

    out: Path
    log_every: int

    def stage(self, name: str, net: torch.nn.Module, lr: float, steps: int, step_fn) -> None:
        """Train ``net`` for ``steps`` on the shared runner: Adam with cosine decay, no resume file.

        Args:
            name: the stage's name in the log.
            net: the module trained (train mode during the stage, eval mode after).
            lr: initial learning rate.
            steps: number of steps (0: nothing happens).
            step_fn: ``step_fn() -> (loss, values)``: the loss of one step (drawn from the
                stage's generator) and extra values to log.
        """
        if steps == 0:
            return
        stage = Stage(
            name,
            {name: net},
            torch.optim.Adam(net.parameters(), lr=lr),
            step=lambda _batch, _position: step_fn(),
            lr_factor=cosine_factor(steps),
        )
        schedule = Schedule(steps_per_epoch=steps, log_every=self.log_every)
        StageRunner(stage, schedule, self.out, resume_file=None, keep_log=True, stream=sys.stdout).run()
        net.eval()


# ------------------------------------------------------------------------------------------ root net


def train_rootnet(
    model: SelfPose3dModel,
    projector: VolumeProjector,
    rig: CameraRig,
    cfg: RootTrainConfig,
    run: ShelfRun,
    gen: torch.Generator,
) -> None:
    """Root net on synthetic detector-like root heatmaps (SPEC §3.2 (a))."""
    if cfg.steps == 0:
        return
    geo, dev = projector.geometry, projector.device
    box = coverage_box_for(projector, rig, cfg)
    log.info("synthetic root box (mm): %s", box.round().tolist())
    net = model.root_net
    V, B = geo.num_views, cfg.batch_size

    def step_fn() -> tuple[torch.Tensor, dict[str, float]]:
        roots, valid = tg.sample_synthetic_roots(B, box, cfg.max_roots + 1, generator=gen)
        roots, valid = roots.to(dev), valid.to(dev)
        target = tg.root_target_cubes(
            roots, valid, projector.space_size_mm, projector.space_center_mm, projector.root_bins
        )
        uv, front = to_heatmap_px(roots, geo)  # (V,B,R,2)
        uv = uv.permute(1, 0, 2, 3)[:, :, :, None]  # (B,V,R,1,2)
        stride = geo.affine_hm[:, 0, 0].abs().mean()
        uv = uv + cfg.jitter_px * stride * torch.randn(uv.shape, generator=gen).to(dev)
        lo, hi = cfg.score_range
        amp = lo + (hi - lo) * torch.rand(uv.shape[:-1], generator=gen).to(dev)
        keep = (torch.rand(uv.shape[:-1], generator=gen).to(dev) >= cfg.drop_prob) & valid[:, None, :, None]
        amp = amp * keep * front.permute(1, 0, 2)[..., None]
        n_fp = int(torch.poisson(torch.full((1,), cfg.false_positives * 4), generator=gen))
        if n_fp:  # spurious blobs anywhere in the heatmaps, at random views
            W, H = geo.heatmap_wh
            fp = torch.rand((B, V, n_fp, 1, 2), generator=gen).to(dev) * torch.tensor([W, H], device=dev)
            fa = torch.rand((B, V, n_fp, 1), generator=gen).to(dev) * (
                torch.rand((B, V, n_fp, 1), generator=gen).to(dev) < 0.25
            )
            uv, amp = torch.cat([uv, fp], 2), torch.cat([amp, fa * hi], 2)
        hm = render_detections(uv, amp, geo.heatmap_wh)  # (B,V,1,H,W)
        vols = torch.cat([projector.root_volume(hm[b]) for b in range(B)])  # (B,1,X,Y,Z)
        pred = net(vols)
        loss = 100.0 * torch.mean((pred - target) ** 2)
        return loss, {"peak": pred.detach().amax(dim=(1, 2, 3)).mean().item()}

    run.stage("root", net, cfg.lr, cfg.steps, step_fn)


def coverage_box_for(projector: VolumeProjector, rig: CameraRig, cfg: RootTrainConfig) -> np.ndarray:
    """:func:`coverage_box` of the projector's room."""
    return coverage_box(rig, projector.space_size_mm, projector.space_center_mm, cfg.z_range_mm, cfg.min_views)


@torch.no_grad()
def root_proposals(model: SelfPose3dModel, projector: VolumeProjector, heatmaps: torch.Tensor) -> list[torch.Tensor]:
    """Per frame the (P,3) valid root proposals of the frozen root net; heatmaps (F,V,J,h,w)."""
    rc = model.config.root_net
    r = model.config.root_joint
    out = []
    for f in range(heatmaps.shape[0]):
        vol = projector.root_volume(heatmaps[f, :, r : r + 1].float())
        prop = extract_proposals(
            model.root_net(vol),
            projector.space_size_mm,
            projector.space_center_mm,
            rc.max_people,
            rc.threshold,
            rc.nms_kernel,
        )[0]
        out.append(prop[prop[:, 3] >= 0, :3])
    return out


# ------------------------------------------------------------------------------------------ pose net


def train_posenet_ssl(
    model: SelfPose3dModel,
    projector: VolumeProjector,
    data: ShelfDetections,
    frames: list[int],
    cfg: PoseTrainConfig,
    sigma_px: float,
    run: ShelfRun,
    gen: torch.Generator,
) -> dict:
    """Pose net against the PAF-grouped detections of ``frames`` (confidence-weighted Hungarian L1)."""
    geo, dev = projector.geometry, projector.device
    t0 = time.time()
    hm = torch.as_tensor(data.input_heatmaps(frames, geo.affine_hm.cpu().numpy(), geo.heatmap_wh, sigma_px)).to(dev)
    joints, scores = (torch.as_tensor(a).to(dev) for a in data.people_arrays(frames, cfg.max_labels))
    proposals = root_proposals(model, projector, hm)
    counts = [len(p) for p in proposals]
    info = {
        "cache_s": round(time.time() - t0, 1),
        "frames": len(frames),
        "proposals_per_frame": float(np.mean(counts)),
        "labels_per_view": float((scores.amax(-1) > 0).sum(2).float().mean()),
    }
    print(f"[pose-ssl] {info}", flush=True)
    usable = [i for i, c in enumerate(counts) if c]
    if not usable:
        raise ConfigError(
            "the root net proposes nobody on the training frames",
            field="root.steps",
            fix="train the root net longer (or give a better root_init)",
        )
    image_wh = tuple(float(v) for v in geo.image_wh[0].tolist())
    net = model.pose_net
    V, K = geo.num_views, model.config.root_net.max_people

    def step_fn() -> tuple[torch.Tensor, dict[str, float]]:
        pick = torch.randint(len(usable), (cfg.batch_size,), generator=gen).tolist()
        preds, valids, gts, confs = [], [], [], []
        for i in pick:
            f = usable[i]
            centers = proposals[f] + cfg.root_jitter_mm * torch.randn(proposals[f].shape, generator=gen).to(dev)
            present = (torch.rand(V, generator=gen) >= cfg.view_dropout).to(dev)
            if not bool(present.any()):
                present[int(torch.randint(V, (1,), generator=gen))] = True
            poses = pose_forward(model, projector, hm[f].float(), centers, present)  # (P,J,3)
            uv = project_points(poses, geo.cams, z_eps=tg.PROJECT_Z_EPS)  # (V,P,J,2)
            P = poses.shape[0]
            preds.append(torch.nn.functional.pad(uv, (0, 0, 0, 0, 0, K - P)))
            valids.append(torch.arange(K, device=dev) < P)
            gts.append(joints[f])
            confs.append(scores[f])
        loss = hungarian_l1_loss(
            torch.stack(preds), torch.stack(valids), torch.stack(gts), torch.stack(confs), image_wh, cfg.drop_largest
        )
        return loss, {}

    run.stage("pose-ssl", net, cfg.lr, cfg.steps, step_fn)
    return info


def synthetic_pose_bank(rig: CameraRig, frames: int, seed: int) -> np.ndarray:
    """(N,15,3) synthetic poses (mm) from the motion model, each centred on its root's x, y."""
    from capture.synthetic.world import SyntheticWorld

    world = SyntheticWorld(rig, num_people=4, seed=seed, fps=2.0, entries_exits=False)
    poses = []
    for k in range(frames):
        p = world.people(k)
        j = p.joints_mm[p.present]
        poses.append(j[np.isfinite(j).all(axis=(1, 2))])
    bank = np.concatenate(poses)
    bank[..., :2] -= bank[:, 2:3, :2]  # root (mid-hip, joint 2) at x = y = 0
    return bank.astype(np.float32)


def sample_synthetic_scene(
    bank: torch.Tensor, box: np.ndarray, batch: int, people_range: tuple[int, int], gen: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """(B,P,15,3) poses placed at random positions and headings, (B,P) valid (P = people_range[1])."""
    P = people_range[1]
    idx = torch.randint(len(bank), (batch, P), generator=gen)
    poses = bank.cpu()[idx].clone()  # (B,P,15,3)
    yaw = 2 * math.pi * torch.rand((batch, P), generator=gen)
    c, s = torch.cos(yaw), torch.sin(yaw)
    x, y = poses[..., 0].clone(), poses[..., 1].clone()
    poses[..., 0] = c[..., None] * x - s[..., None] * y
    poses[..., 1] = s[..., None] * x + c[..., None] * y
    b = torch.as_tensor(box[:2], dtype=torch.float32)
    xy = b[:, 0] + torch.rand((batch, P, 2), generator=gen) * (b[:, 1] - b[:, 0])
    poses[..., :2] += xy[:, :, None, :]
    n = torch.randint(people_range[0], people_range[1] + 1, (batch, 1), generator=gen)
    return poses.to(bank.device), (torch.arange(P)[None] < n).to(bank.device)


def train_posenet_synthetic(
    model: SelfPose3dModel,
    projector: VolumeProjector,
    rig: CameraRig,
    cfg: PoseTrainConfig,
    root_cfg: RootTrainConfig,
    sigma_px: float,
    run: ShelfRun,
    gen: torch.Generator,
    seed: int,
) -> dict:
    """Pose net on synthetic 3D poses projected into the Shelf cameras (3D L1 supervision)."""
    geo, dev = projector.geometry, projector.device
    t0 = time.time()
    bank = torch.as_tensor(synthetic_pose_bank(rig, cfg.bank_frames, seed)).to(dev)
    box = coverage_box_for(projector, rig, root_cfg)
    info = {"bank_poses": int(len(bank)), "bank_s": round(time.time() - t0, 1)}
    print(f"[pose-syn] {info}", flush=True)
    net = model.pose_net
    stride = geo.affine_hm[:, 0, 0].abs().mean()
    W, H = geo.heatmap_wh
    lo, hi = cfg.score_range

    def step_fn() -> tuple[torch.Tensor, dict[str, float]]:
        poses, valid = sample_synthetic_scene(bank, box, cfg.batch_size, cfg.people_range, gen)  # (B,P,J,3)
        B, P, J = poses.shape[:3]
        uv, front = to_heatmap_px(poses, geo)  # (V,B,P,J,2)
        uv = uv.permute(1, 0, 2, 3, 4)
        uv = uv + cfg.joint_jitter_px * stride * torch.randn(uv.shape, generator=gen).to(dev)
        amp = lo + (hi - lo) * torch.rand(uv.shape[:-1], generator=gen).to(dev)
        keep = (torch.rand(uv.shape[:-1], generator=gen).to(dev) >= cfg.joint_drop) & valid[:, None, :, None]
        amp = amp * keep * front.permute(1, 0, 2, 3)
        n_fp = int(torch.poisson(torch.full((1,), cfg.false_positives), generator=gen))
        if n_fp:  # spurious joints
            fp = torch.rand((B, uv.shape[1], n_fp, J, 2), generator=gen).to(dev) * torch.tensor([W, H], device=dev)
            fa = (torch.rand((B, uv.shape[1], n_fp, J), generator=gen).to(dev) < 0.05) * hi * 0.6
            uv, amp = torch.cat([uv, fp], 2), torch.cat([amp, fa], 2)
        hm = render_detections(uv, amp, geo.heatmap_wh, sigma_px)  # (B,V,J,H,W)
        preds, gts = [], []
        for b in range(B):
            gt = poses[b, valid[b]]
            centers = gt[:, 2] + cfg.root_jitter_mm * torch.randn((len(gt), 3), generator=gen).to(dev)
            preds.append(pose_forward(model, projector, hm[b], centers))
            gts.append(gt)
        pred, gt = torch.cat(preds), torch.cat(gts)
        loss = (pred - gt).abs().mean() / 100.0
        return loss, {"mpjpe_mm": (pred - gt).norm(dim=-1).mean().item()}

    run.stage("pose-syn", net, cfg.lr, cfg.steps, step_fn)
    return info


# ------------------------------------------------------------------------------------------ run


def build_projector(model: SelfPose3dModel, rig: CameraRig, device: torch.device) -> VolumeProjector:
    """The engine's projector for the rig (the same one ``InferenceRuntime`` builds)."""
    cfg = model.config
    geometry = ViewGeometry.from_rig(rig, cfg.backbone.image_size, cfg.backbone.heatmap_size, device)
    return VolumeProjector(
        geometry,
        cfg.space_size_mm,
        cfg.space_center_mm,
        cfg.root_net.bins,
        cfg.pose_net.cube_size_mm,
        cfg.pose_net.bins,
    )


def build_training_model(preset: str) -> SelfPose3dModel:
    """A fresh model of the preset with its training initialisation (no weights loaded)."""
    model = build_model(load_preset(preset))
    model.init_training_weights()
    return model


def load_root_net(model: SelfPose3dModel, path: str | Path, preset: str) -> None:
    """Load only the root net of the model file ``path`` into ``model`` (of preset ``preset``)."""
    source, _ = load_model_file(path)
    try:
        model.root_net.load_state_dict(source.root_net.state_dict())
    except RuntimeError as exc:
        raise CheckpointError(
            f"its root net does not fit preset '{preset}': {str(exc).splitlines()[0]}",
            file=path,
            field="root_init",
            fix="retrain it with shelf_rootnet",
        ) from None


def train(cfg: ShelfTrainConfig, out: str | Path) -> dict:
    """Run one Shelf training (root net unless ``root_init``, then the pose net); writes
    ``out/{config.resolved.yaml, log.jsonl, model.pt, summary.json}`` and returns the summary."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    write_resolved(cfg, out)
    torch.manual_seed(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    device = resolve_device(cfg.device)
    data = ShelfDetections(cfg.data)
    model = build_training_model(cfg.model)
    if cfg.root_init:  # only the root net is taken from the file; the rest follows the preset
        load_root_net(model, cfg.root_init, cfg.model)
    model = model.to(device)
    projector = build_projector(model, data.rig, device)
    run = ShelfRun(out, cfg.log_every)
    (out / "log.jsonl").write_text("")  # the stages append to one fresh log
    t0 = time.time()
    summary: dict = {"device": str(device), "torch_threads": torch.get_num_threads()}
    if not cfg.root_init:
        train_rootnet(model, projector, data.rig, cfg.root, run, gen)
        summary["root_s"] = round(time.time() - t0, 1)
    t1 = time.time()
    if cfg.pose.steps:
        if cfg.pose.mode == "ssl":
            frames = parse_frames(cfg.train_frames, data.frame_ids)
            summary.update(train_posenet_ssl(model, projector, data, frames, cfg.pose, cfg.sigma_px, run, gen))
        else:
            summary.update(
                train_posenet_synthetic(
                    model, projector, data.rig, cfg.pose, cfg.root, cfg.sigma_px, run, gen, cfg.seed
                )
            )
    summary["pose_s"] = round(time.time() - t1, 1)
    summary["train_s"] = round(time.time() - t0, 1)
    model = model.cpu().eval()
    path = save_checkpoint(
        out / "model.pt",
        model,
        {
            "trainer": "training.shelf",
            "config": cfg.model,
            "input": "detections",
            "train_frames": cfg.train_frames,
            "pose_mode": cfg.pose.mode,
        },
    )
    summary["checkpoint"] = str(path)
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    print(f"saved {path}  ({summary['train_s']} s)", flush=True)
    return summary
