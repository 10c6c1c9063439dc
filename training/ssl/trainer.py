"""One self-supervised training stage (SPEC.md §1.2), configured for the shared stage runner.

The ``build_*`` functions make the stage's objects from its :class:`TrainConfig` (rig, model
config, networks, loss module, optimiser, schedule, data); the previous stage's weights are
loaded separately (:func:`training.ssl.stages.initialise`). :class:`Trainer` hands them to
:class:`training.runner.StageRunner`, which owns the loop: Adam over the stage's trainable
parameters (the backbone in its own group), the rate stepped down per epoch as ``MultiStepLR``,
losses logged as JSON lines, a progress line on stderr, the resumable ``checkpoint.pt`` (model,
attention, optimiser, generator, position, best metric, resolved config), validation on held-out
synthetic scenes every ``val_every`` epochs with ``model_best.pt`` by mean AP. Model files are
written with :func:`engine.checkpoints.save_checkpoint`. Under ``torchrun`` (``WORLD_SIZE`` > 1)
the step module is wrapped in DistributedDataParallel and every rank takes its shard of the
epoch's sample order.

Outputs in ``out_dir``: ``config.resolved.yaml``, ``log.jsonl``, ``checkpoint.pt`` (resume),
``model_last.pt`` (end of the latest epoch), ``model_final.pt``, ``model_best.pt``, ``metrics.json``.
"""

from __future__ import annotations

import json
import logging
import math
import os
from dataclasses import replace
from pathlib import Path
from typing import Iterator

import torch

from calib.common.paths import REPO_ROOT
from calib.configkit import to_dict, write_resolved
from training.runner import RESUME_FILE, Position, Schedule, Stage, StageRunner, multistep_factor, read_resume_file
from training.ssl.config import TrainConfig


def _resolve_device(name: str, local_rank: int) -> torch.device:
    if name == "auto":
        return torch.device(f"cuda:{local_rank}" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and torch.cuda.is_available():
        return torch.device(f"cuda:{local_rank}")
    return torch.device(name)


def epoch_order(n: int, seed: int, epoch: int, rank: int = 0, world: int = 1) -> list[int]:
    """The shuffled sample order of an epoch, this rank's shard (padded so shards are equal)."""
    g = torch.Generator().manual_seed(int(seed) * 1000003 + int(epoch))
    order = torch.randperm(n, generator=g).tolist()
    per_rank = math.ceil(n / world)
    order += order[: per_rank * world - n]
    return order[rank::world]


# ------------------------------------------------------------------ builders (config -> objects)


def load_training_rig(config: TrainConfig):
    """The rig of ``config.data.rig`` (relative paths are from the checkout)."""
    from calib.rig_config import load_rig

    rig = Path(config.data.rig)
    return load_rig(rig if rig.is_absolute() or rig.is_file() else REPO_ROOT / rig)


def build_model_config(config: TrainConfig, rig):
    """The model preset with the config's overrides, its room set to the rig's volume."""
    from engine.config import load_preset

    vol = rig.volume
    model_cfg = load_preset(config.model, tuple(config.model_overrides))
    return replace(model_cfg, space_size_mm=tuple(vol.size_mm), space_center_mm=tuple(vol.center_mm))


def build_networks(config: TrainConfig, model_cfg, policy):
    """The model and the attention net the stage trains (the model's own, a light one, or None)."""
    from engine.model import SelfPose3dModel
    from training.ssl.forward import LightAttention

    model = SelfPose3dModel(model_cfg)
    attention = None
    if policy.uses_attention and config.loss.use_attention:
        a = config.attention
        attention = getattr(model, "attn", None) or LightAttention(
            a.depth, model_cfg.num_joints, a.width, tuple(a.deconv_channels)
        )
    return model, attention


SYN_RANGE_ROOM_MM = (8000.0, 8000.0, 2000.0)  # the room the default ``loss.syn_range_mm`` was set for


def fitted_syn_range(loss_cfg, size_mm, center_mm):
    """``loss_cfg`` with its synthetic-root shrink scaled to a room where the configured one leaves
    no box (a small rig volume: the defaults shrink an 8 x 8 x 2 m room by 2.5 m); else unchanged."""
    from training.targets import synthetic_root_box

    try:
        synthetic_root_box(size_mm, center_mm, loss_cfg.syn_range_mm)
        return loss_cfg
    except ValueError:
        scale = [s / r for s, r in zip(size_mm, SYN_RANGE_ROOM_MM)]
        fitted = tuple((lo * k, hi * k) for (lo, hi), k in zip(loss_cfg.syn_range_mm, scale))
        logging.getLogger(__name__).warning(
            "loss.syn_range_mm %s leaves no synthetic-root box in the %s mm volume: scaled to %s",
            list(loss_cfg.syn_range_mm),
            list(size_mm),
            [list(r) for r in fitted],
        )
        return replace(loss_cfg, syn_range_mm=fitted)


def build_ssl_module(config: TrainConfig, model, attention, rig, model_cfg, device: torch.device, generator):
    """The module whose forward gives the stage's losses (the rig's geometry on ``device``)."""
    from training.ssl.forward import SSLGeometry, SSLModule

    geometry = SSLGeometry.from_rig(rig.cameras, model_cfg, device)
    loss = fitted_syn_range(config.loss, model_cfg.space_size_mm, model_cfg.space_center_mm)
    module = SSLModule(model, geometry, config.stage, attention, loss, config.bf16, generator, config.channels_last)
    module.set_l1_epoch(config.l1_epoch)
    return module


def build_optimizer(config: TrainConfig, model, params: list) -> torch.optim.Optimizer:
    """Adam over the trainable ``params``, the backbone in its own group at ``backbone_lr``."""
    backbone_ids = {id(p) for p in model.backbone.parameters()}
    groups = [
        {"params": [p for p in params if id(p) not in backbone_ids], "lr": config.lr},
        {"params": [p for p in params if id(p) in backbone_ids], "lr": config.backbone_lr or config.lr},
    ]
    return torch.optim.Adam([g for g in groups if g["params"]], lr=config.lr)


def build_schedule(config: TrainConfig, steps_per_epoch: int, validates: bool) -> Schedule:
    """The runner's schedule: epochs, log/checkpoint cadence, validation every ``val_every`` epochs."""
    return Schedule(
        epochs=config.epochs,
        steps_per_epoch=steps_per_epoch,
        log_every=config.log_every,
        checkpoint_every=config.checkpoint_every_steps,
        eval_every_epochs=config.val_every if validates else 0,
        grad_clip=config.grad_clip,
    )


def build_footage(config: TrainConfig, rig, model_cfg, run_root: Path):
    """``data.source: footage``: the footage's labelled frames (checked, sampled, split, cached;
    :mod:`training.ssl.footage`), their dataset and the held-out validation (or None)."""
    from training.ssl.data import ImageFolderSource
    from training.ssl.footage import FootageValidation, build_footage_data

    d = config.data
    data = build_footage_data(d, rig, d.detector_variant, run_root)
    sizes = {c.name: (c.width, c.height) for c in rig.cameras}
    source = ImageFolderSource(data.train_labels, "", sizes)
    dataset = ssv_dataset(config, model_cfg, rig, data.train_labels, source.image_rgb)
    val = None
    if config.val_every and config.stage != "backbone" and data.val:
        val = FootageValidation(rig, data, ImageFolderSource(data.val_labels, "", sizes).image_rgb)
    return data, dataset, val


def ssv_dataset(config: TrainConfig, model_cfg, rig, labels, image_rgb):
    """The SSV training dataset of ``labels`` (synthetic scenes or footage) with the run's augmentation."""
    from training.ssl.data import SSVDataset

    b = model_cfg.backbone
    return SSVDataset(
        labels,
        image_rgb,
        rig.cameras,
        tuple(b.image_size),
        tuple(b.heatmap_size),
        model_cfg.root_net.max_people,
        config.augment.rotation_factor_deg,
        config.augment.scale_factor,
        config.photometric,
        config.seed,
        target_centre=config.data.target_centre,
    )


def build_data(config: TrainConfig, rig, model_cfg, cache_dir: Path):
    """The training scenes, their pseudo-labelled dataset and the validation scenes (or None)."""
    from training.ssl.data import SyntheticScenes

    if config.data.source == "footage":
        return build_footage(config, rig, model_cfg, cache_dir.parent)
    d, vol = config.data, rig.volume
    scenes = SyntheticScenes(
        rig.cameras, d.train_seeds, d.frames_per_scene, d.frame_interval, d.people, d.fps, vol.center_mm, vol.size_mm
    )
    labels = scenes.pseudo_labels(d.labels, d.detector_variant, d.detector_seed, cache_dir)
    dataset = ssv_dataset(config, model_cfg, rig, labels, scenes.image_rgb)
    val_scenes = None
    if config.val_every and config.stage != "backbone" and d.val_seeds:
        val_scenes = SyntheticScenes(
            rig.cameras,
            d.val_seeds,
            d.val_frames_per_scene,
            d.frame_interval,
            d.people,
            d.fps,
            vol.center_mm,
            vol.size_mm,
        )
    return scenes, dataset, val_scenes


class Trainer:
    """One stage, configured for the :class:`training.runner.StageRunner` (which owns the loop).

    The networks, optimiser and data are built from the config (the ``build_*`` functions); the
    previous stage's weights are loaded separately (:func:`training.ssl.stages.initialise`).

    Args:
        config: the stage's :class:`TrainConfig`.
        out_dir: run folder (created); an existing ``checkpoint.pt`` there is resumed.
        resume: resume when a checkpoint exists.
    """

    def __init__(self, config: TrainConfig, out_dir: str | Path, resume: bool = True):
        from training.ssl import stages

        self.config = config
        self.out_dir = Path(out_dir)
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        if config.threads:
            torch.set_num_threads(config.threads)
        self.device = _resolve_device(config.device, int(os.environ.get("LOCAL_RANK", "0")))
        if self.world > 1 and not torch.distributed.is_initialized():
            torch.distributed.init_process_group("nccl" if self.device.type == "cuda" else "gloo")
        torch.manual_seed(config.seed + self.rank)
        self.rig = load_training_rig(config)
        model_cfg = build_model_config(config, self.rig)
        self.policy = stages.policy(config.stage)
        self.model, self.attention = build_networks(config, model_cfg, self.policy)
        self.loaded = stages.initialise(self.model, self.attention, self.policy, config.init, config.init_attention)
        self._place_networks()
        self.generator = torch.Generator().manual_seed(config.seed * 7919 + self.rank)
        self.module = build_ssl_module(
            config, self.model, self.attention, self.rig, model_cfg, self.device, self.generator
        )
        is_own = self.attention is getattr(self.model, "attn", None)
        self.separate_attention = None if is_own else self.attention
        self.params = stages.apply_modes(self.model, self.attention, self.policy, config.frozen_bn)
        self.optimizer = build_optimizer(config, self.model, self.params)
        self.step_module: torch.nn.Module = self.module
        if self.world > 1:
            from torch.nn.parallel import DistributedDataParallel as DDP

            ids = [self.device.index] if self.device.type == "cuda" else None
            self.step_module = DDP(self.module, device_ids=ids, find_unused_parameters=True)
        self.scenes, self.dataset, self.val_scenes = build_data(
            config, self.rig, model_cfg, self.out_dir.parent / "cache"
        )
        schedule = build_schedule(config, self.steps_per_epoch(), self.val_scenes is not None)
        self.runner = StageRunner(self._stage(), schedule, self.out_dir, RESUME_FILE, resume, rank=self.rank)

    def _place_networks(self) -> None:
        self.model.to(self.device)
        if self.attention is not None:
            self.attention.to(self.device)
        if self.config.channels_last:  # 2D nets only (pairs with bf16 on CPU, PLATFORM.md)
            self.model.backbone.to(memory_format=torch.channels_last)
            if self.attention is not None:
                self.attention.to(memory_format=torch.channels_last)

    def _stage(self) -> Stage:
        from training.ssl import stages

        cfg = self.config
        modules = {"model": self.model}
        if self.separate_attention is not None:
            modules["attention"] = self.separate_attention
        return Stage(
            name=cfg.stage,
            modules=modules,
            optimizer=self.optimizer,
            step=self.train_step,
            batches=self.epoch_batches,
            lr_factor=multistep_factor(cfg.lr_steps, cfg.lr_factor),  # MultiStepLR per epoch
            generators={"ssl": self.generator},
            # BN modes re-applied each epoch and after validation
            train_mode=lambda: stages.apply_modes(self.model, self.attention, self.policy, cfg.frozen_bn),
            evaluate=self.validate if self.val_scenes is not None else None,
            score=self.selection_metric,
            save_model=lambda kind, metrics: self._save_model(f"model_{kind}.pt", metrics),
            report=("mean_ap", "mpjpe_mm", "root_mean_ap", "reproj_px", "ghost_rate", "people_per_frame_mean"),
            meta={"config": to_dict(cfg)},
        )

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def epoch(self) -> int:
        """Epochs done (across resumed runs)."""
        return self.runner.epoch

    def _save_model(self, name: str, metrics: dict | None = None) -> Path:
        from engine.checkpoints import save_checkpoint
        from training.ssl.stages import ATTENTION_META_KEY

        meta = {
            "stage": self.config.stage,
            "epoch": self.runner.epoch,
            "step": self.runner.global_step,
            "train_config": json.dumps(to_dict(self.config)),
            "metrics": json.dumps(metrics or {}),
        }
        if self.separate_attention is not None:
            meta[ATTENTION_META_KEY] = self.separate_attention.state_dict()
        return save_checkpoint(self.out_dir / name, self.model, meta)

    # ------------------------------------------------------------------ what the runner calls
    def epoch_batches(self, epoch: int, first_step: int) -> Iterator[dict[str, torch.Tensor]]:
        """The epoch's batches from step ``first_step`` on (this rank's shard of its order)."""
        self.dataset.set_epoch(epoch)
        bs = self.config.batch_size
        order = epoch_order(len(self.dataset), self.config.seed, epoch, self.rank, self.world)
        return self._batches(order[first_step * bs : self.steps_per_epoch() * bs])

    def _batches(self, order: list[int]) -> Iterator[dict[str, torch.Tensor]]:
        bs = self.config.batch_size
        if self.config.workers:
            loader = torch.utils.data.DataLoader(
                self.dataset, batch_size=bs, sampler=order, num_workers=self.config.workers, drop_last=True
            )
            yield from loader
            return
        for s in range(0, len(order) - bs + 1, bs):
            items = [self.dataset[i] for i in order[s : s + bs]]
            yield {k: torch.stack([it[k] for it in items]) for k in items[0]}

    def steps_per_epoch(self) -> int:
        n = math.ceil(len(self.dataset) / self.world) // self.config.batch_size
        return min(n, self.config.steps_per_epoch) if self.config.steps_per_epoch else n

    def train_step(self, batch: dict[str, torch.Tensor], position: Position) -> tuple[torch.Tensor, dict[str, float]]:
        """The stage's total loss of one batch and each loss term (logged)."""
        from training.ssl.forward import total_loss

        batch = {k: v.to(self.device, non_blocking=True) for k, v in batch.items()}
        losses = self.step_module(batch, position.epoch)
        return total_loss(losses), {k: float(v.detach()) for k, v in losses.items()}

    def validate(self) -> dict[str, float]:
        from training.ssl.synthetic_eval import evaluate_model

        if self.config.data.source == "footage":  # label-free figures (truth figures where known)
            return self.val_scenes.evaluate(self.model, str(self.device), self.config.val_frames)

        frames = self.val_scenes.frames
        if self.config.val_frames:
            frames = frames[:: max(1, len(frames) // self.config.val_frames)][: self.config.val_frames]
        return evaluate_model(self.model, self.val_scenes, frames, device=str(self.device))

    def selection_metric(self, metrics: dict[str, float]) -> float:
        """Mean AP of poses (root proposals in the root-net stage); footage: its ``selection_score``."""
        if "selection_score" in metrics:
            return metrics["selection_score"]
        return metrics["root_mean_ap"] if self.config.stage == "rootnet" else metrics["mean_ap"]

    def run(self) -> dict:
        """Train every remaining epoch; returns a summary (last losses, best metric, files)."""
        cfg = self.config
        if self.is_main:
            self.out_dir.mkdir(parents=True, exist_ok=True)
            write_resolved(cfg, self.out_dir)
        result = self.runner.run()
        if not self.is_main:
            return {}
        final = self._save_model("model_final.pt")
        summary = {
            "stage": cfg.stage,
            "epochs": cfg.epochs,
            "steps": result.steps,
            "seconds": round(result.seconds, 1),
            "last": result.last,
            "best_metric": result.best,
            "model": str(final),
        }
        (self.out_dir / "summary.json").write_text(json.dumps(summary, indent=2), encoding="utf-8")
        return summary


def train(config: TrainConfig, out_dir: str | Path, resume: bool = True) -> dict:
    """Build a :class:`Trainer` and run it (the ``selfpose3d train`` entry point)."""
    return Trainer(config, out_dir, resume).run()


def export_resume_checkpoint(run_dir: str | Path, name: str = "model_last.pt") -> Path:
    """Write a model file from a run folder's ``checkpoint.pt`` (e.g. of a run cut short).

    The model config is rebuilt from the training config stored in the checkpoint (preset,
    overrides, the rig's volume); the attention net goes into the file's meta as usual.
    """
    from calib.configkit import from_dict
    from engine.checkpoints import save_checkpoint
    from engine.model import SelfPose3dModel
    from training.ssl.stages import ATTENTION_META_KEY

    run_dir = Path(run_dir)
    state = read_resume_file(run_dir / RESUME_FILE)
    config = json.loads(state["meta"])["config"]
    cfg = from_dict(TrainConfig, config)
    model = SelfPose3dModel(build_model_config(cfg, load_training_rig(cfg)))
    model.load_state_dict(state["modules"]["model"])
    meta = {
        "stage": cfg.stage,
        "epoch": int(state["epoch"]),
        "step": int(state["global_step"]),
        "train_config": json.dumps(config),
        "metrics": "{}",
    }
    if "attention" in state["modules"]:
        meta[ATTENTION_META_KEY] = state["modules"]["attention"]
    return save_checkpoint(run_dir / name, model, meta)
