"""The self-supervised training loop for one stage (SPEC.md §1.2).

Adam over the stage's trainable parameters, ``MultiStepLR`` stepped once per epoch, losses
logged as JSON lines, a progress line on stderr, a resumable checkpoint (model, attention,
optimiser, scheduler, epoch, step-in-epoch, best metric, resolved config), model files written
with :func:`engine.checkpoints.save_checkpoint` (``model_final.pt``, ``model_best.pt`` by mean AP
on held-out synthetic scenes). Under ``torchrun`` (``WORLD_SIZE`` > 1) the step module is wrapped
in DistributedDataParallel and every rank takes its shard of the epoch's sample order.

Outputs in ``out_dir``: ``config.resolved.yaml``, ``log.jsonl``, ``checkpoint.pt`` (resume),
``model_last.pt`` (end of the latest epoch), ``model_final.pt``, ``model_best.pt``, ``metrics.json``.
"""

from __future__ import annotations

import json
import logging
import math
import os
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Iterator

import numpy as np
import torch

from calib.configkit import to_dict, write_resolved
from calib.common.paths import REPO_ROOT
from training.runner import Progress
from training.ssl.config import TrainConfig

log = logging.getLogger(__name__)

RESUME_FILE = "checkpoint.pt"


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

    rig = config.data.rig
    return load_rig(Path(rig) if Path(rig).is_absolute() else REPO_ROOT / rig)


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


def build_optimizer(
    config: TrainConfig, model, params: list
) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.MultiStepLR]:
    """Adam over the trainable ``params`` (the backbone at ``backbone_lr``), stepped down at ``lr_steps``."""
    backbone_ids = {id(p) for p in model.backbone.parameters()}
    groups = [
        {"params": [p for p in params if id(p) not in backbone_ids], "lr": config.lr},
        {"params": [p for p in params if id(p) in backbone_ids], "lr": config.backbone_lr or config.lr},
    ]
    optimizer = torch.optim.Adam([g for g in groups if g["params"]], lr=config.lr)
    return optimizer, torch.optim.lr_scheduler.MultiStepLR(optimizer, list(config.lr_steps), config.lr_factor)


def build_data(config: TrainConfig, rig, model_cfg, cache_dir: Path):
    """The training scenes, their pseudo-labelled dataset and the validation scenes (or None)."""
    from training.ssl.data import SSVDataset, SyntheticScenes

    d, vol = config.data, rig.volume
    scenes = SyntheticScenes(
        rig.cameras, d.train_seeds, d.frames_per_scene, d.frame_interval, d.people, d.fps, vol.center_mm, vol.size_mm
    )
    labels = scenes.pseudo_labels(d.labels, d.detector_variant, d.detector_seed, cache_dir)
    b = model_cfg.backbone
    dataset = SSVDataset(
        labels,
        scenes.image_rgb,
        rig.cameras,
        tuple(b.image_size),
        tuple(b.heatmap_size),
        model_cfg.root_net.max_people,
        config.augment.rotation_factor_deg,
        config.augment.scale_factor,
        config.photometric,
        config.seed,
        target_centre=d.target_centre,
    )
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
    """Runs one stage.

    Args:
        config: the stage's :class:`TrainConfig`.
        out_dir: run folder (created); an existing ``checkpoint.pt`` there is resumed.
        resume: resume when a checkpoint exists.
    """

    def __init__(self, config: TrainConfig, out_dir: str | Path, resume: bool = True):
        from training.ssl import stages
        from training.ssl.forward import SSLGeometry, SSLModule

        self.config = config
        self.out_dir = Path(out_dir)
        self.resume = resume
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        if config.threads:
            torch.set_num_threads(config.threads)
        self.device = _resolve_device(config.device, local_rank)
        if self.world > 1 and not torch.distributed.is_initialized():
            torch.distributed.init_process_group("nccl" if self.device.type == "cuda" else "gloo")
        torch.manual_seed(config.seed + self.rank)
        self.rig = load_training_rig(config)
        model_cfg = build_model_config(config, self.rig)
        self.policy = stages.policy(config.stage)
        self.model, self.attention = build_networks(config, model_cfg, self.policy)
        self.loaded = stages.initialise(self.model, self.attention, self.policy, config.init, config.init_attention)
        self.model.to(self.device)
        if self.attention is not None:
            self.attention.to(self.device)
        if config.channels_last:  # 2D nets only (pairs with bf16 on CPU, PLATFORM.md)
            self.model.backbone.to(memory_format=torch.channels_last)
            if self.attention is not None:
                self.attention.to(memory_format=torch.channels_last)
        self.generator = torch.Generator().manual_seed(config.seed * 7919 + self.rank)
        geometry = SSLGeometry.from_rig(self.rig.cameras, model_cfg, self.device)
        separate_attention = self.attention if self.attention is not getattr(self.model, "attn", None) else None
        self.module = SSLModule(
            self.model,
            geometry,
            config.stage,
            self.attention,
            config.loss,
            config.bf16,
            self.generator,
            config.channels_last,
        )
        self.module.set_l1_epoch(config.l1_epoch)
        self.separate_attention = separate_attention
        self.params = stages.apply_modes(self.model, self.attention, self.policy, config.frozen_bn)
        self.optimizer, self.scheduler = build_optimizer(config, self.model, self.params)
        self.step_module: torch.nn.Module = self.module
        if self.world > 1:
            from torch.nn.parallel import DistributedDataParallel as DDP

            ids = [self.device.index] if self.device.type == "cuda" else None
            self.step_module = DDP(self.module, device_ids=ids, find_unused_parameters=True)
        self.scenes, self.dataset, self.val_scenes = build_data(
            config, self.rig, model_cfg, self.out_dir.parent / "cache"
        )
        self.epoch = 0
        self.step_in_epoch = 0
        self.global_step = 0
        self.best = -math.inf
        self.history: list[dict] = []
        self.seconds_before = 0.0  # training time of earlier runs of this folder (resume)
        self._t_start = time.perf_counter()

    # ------------------------------------------------------------------ files
    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def _save_model(self, name: str, metrics: dict | None = None) -> Path:
        from engine.checkpoints import save_checkpoint
        from training.ssl.stages import ATTENTION_META_KEY

        meta = {
            "stage": self.config.stage,
            "epoch": self.epoch,
            "step": self.global_step,
            "train_config": json.dumps(to_dict(self.config)),
            "metrics": json.dumps(metrics or {}),
        }
        if self.separate_attention is not None:
            meta[ATTENTION_META_KEY] = self.separate_attention.state_dict()
        return save_checkpoint(self.out_dir / name, self.model, meta)

    def save_resume(self) -> Path:
        """Write ``checkpoint.pt``: everything needed to continue exactly where we are."""
        state = {
            "model": self.model.state_dict(),
            "attention": self.separate_attention.state_dict() if self.separate_attention is not None else None,
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "epoch": self.epoch,
            "step_in_epoch": self.step_in_epoch,
            "global_step": self.global_step,
            "best": self.best,
            "config": json.dumps(to_dict(self.config)),
            "generator": self.generator.get_state(),
            "seconds": self.seconds(),
        }
        self.seconds_before, self._t_start = state["seconds"], time.perf_counter()
        path = self.out_dir / RESUME_FILE
        tmp = path.with_suffix(".tmp")
        torch.save(state, tmp)
        os.replace(tmp, path)
        return path

    def load_resume(self) -> bool:
        path = self.out_dir / RESUME_FILE
        if not (self.resume and path.is_file()):
            return False
        state = torch.load(path, map_location=self.device, weights_only=True)
        self.model.load_state_dict(state["model"])
        if self.separate_attention is not None and state.get("attention") is not None:
            self.separate_attention.load_state_dict(state["attention"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.epoch, self.step_in_epoch = int(state["epoch"]), int(state["step_in_epoch"])
        self.global_step, self.best = int(state["global_step"]), float(state["best"])
        self.generator.set_state(state["generator"])
        self.seconds_before = float(state.get("seconds", 0.0))
        log.info("%s: resumed at epoch %d step %d", path, self.epoch, self.step_in_epoch)
        return True

    def seconds(self) -> float:
        """Training wall time of this folder so far, across resumed runs."""
        return self.seconds_before + time.perf_counter() - self._t_start

    def _last_logged_step(self) -> dict[str, float]:
        """The last step record of ``log.jsonl`` (a resumed run that had nothing left to do)."""
        path = self.out_dir / "log.jsonl"
        last: dict[str, float] = {}
        if path.is_file():
            for line in path.read_text(encoding="utf-8").splitlines():
                try:
                    record = json.loads(line)
                except json.JSONDecodeError:
                    continue  # a line cut by a killed run
                if "loss" in record:
                    last = record
        return last

    def _log(self, record: dict) -> None:
        self.history.append(record)
        if self.is_main:
            with open(self.out_dir / "log.jsonl", "a", encoding="utf-8") as fh:
                fh.write(json.dumps(record) + "\n")

    # ------------------------------------------------------------------ loop
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

    def train_step(self, batch: dict[str, torch.Tensor]) -> dict[str, float]:
        """One optimiser step; returns the logged values."""
        from training.ssl.forward import total_loss

        batch = {k: v.to(self.device, non_blocking=True) for k, v in batch.items()}
        losses = self.step_module(batch, self.epoch)
        total = total_loss(losses)
        self.optimizer.zero_grad(set_to_none=True)
        total.backward()
        if self.config.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(self.params, self.config.grad_clip)
        self.optimizer.step()
        out = {k: float(v.detach()) for k, v in losses.items()}
        out["loss"] = float(total.detach())
        return out

    def validate(self) -> dict[str, float]:
        from training.ssl.synthetic_eval import evaluate_model

        frames = self.val_scenes.frames
        if self.config.val_frames:
            frames = frames[:: max(1, len(frames) // self.config.val_frames)][: self.config.val_frames]
        return evaluate_model(self.model, self.val_scenes, frames, device=str(self.device))

    def selection_metric(self, metrics: dict[str, float]) -> float:
        """Mean AP of poses (root proposals in the root-net stage)."""
        return metrics["root_mean_ap"] if self.config.stage == "rootnet" else metrics["mean_ap"]

    def run(self) -> dict:
        """Train every remaining epoch; returns a summary (last losses, best metric, files)."""
        from training.ssl import stages

        cfg = self.config
        if self.is_main:
            self.out_dir.mkdir(parents=True, exist_ok=True)
            write_resolved(cfg, self.out_dir)
        if not self.load_resume() and self.is_main:
            (self.out_dir / "log.jsonl").unlink(missing_ok=True)  # a fresh run starts a fresh log
        steps = self.steps_per_epoch()
        self._t_start = time.perf_counter()
        last: dict[str, float] = {}
        while self.epoch < cfg.epochs:
            stages.apply_modes(self.model, self.attention, self.policy, cfg.frozen_bn)  # BN modes re-applied each epoch
            self.dataset.set_epoch(self.epoch)
            order = epoch_order(len(self.dataset), cfg.seed, self.epoch, self.rank, self.world)
            order = order[self.step_in_epoch * cfg.batch_size : steps * cfg.batch_size]
            progress = Progress(steps, f"[{cfg.stage}] epoch {self.epoch + 1}/{cfg.epochs}", every=cfg.log_every)
            window: list[dict[str, float]] = []
            for batch in self._batches(order):
                t0 = time.perf_counter()
                values = self.train_step(batch)
                self.step_in_epoch += 1
                self.global_step += 1
                values.update(
                    step=self.global_step,
                    epoch=self.epoch,
                    lr=self.optimizer.param_groups[0]["lr"],
                    sec=round(time.perf_counter() - t0, 3),
                )
                self._log(values)
                window.append(values)
                last = values
                if self.step_in_epoch % cfg.log_every == 0 or self.step_in_epoch == steps:
                    mean = {k: np.mean([w[k] for w in window if k in w]) for k in values if k.startswith("loss")}
                    if self.is_main:
                        progress.update(self.step_in_epoch, " ".join(f"{k}={v:.4g}" for k, v in sorted(mean.items())))
                    window = []
                if cfg.checkpoint_every_steps and self.global_step % cfg.checkpoint_every_steps == 0 and self.is_main:
                    self.save_resume()
                if self.step_in_epoch >= steps:
                    break
            self.scheduler.step()
            self.epoch += 1
            self.step_in_epoch = 0
            if self.is_main:
                self._end_of_epoch()
        if self.is_main:
            final = self._save_model("model_final.pt")
            self.save_resume()  # its training seconds are the summary's, so a re-run adds to them
            summary = {
                "stage": cfg.stage,
                "epochs": cfg.epochs,
                "steps": self.global_step,
                "seconds": round(self.seconds_before, 1),
                "last": last or self._last_logged_step(),
                "best_metric": self.best if self.best > -math.inf else None,
                "model": str(final),
            }
            (self.out_dir / "summary.json").write_text(json.dumps(summary, indent=2), encoding="utf-8")
            return summary
        return {}

    def _end_of_epoch(self) -> None:
        cfg = self.config
        metrics = None
        if self.val_scenes is not None and cfg.val_every and self.epoch % cfg.val_every == 0:
            metrics = self.validate()
            self._log({"epoch": self.epoch, "step": self.global_step, "val": metrics})
            score = self.selection_metric(metrics)
            log.info(
                "[%s] epoch %d validation: mean AP %.4f, MPJPE %.1f mm, root mean AP %.4f",
                cfg.stage,
                self.epoch,
                metrics["mean_ap"],
                metrics["mpjpe_mm"],
                metrics["root_mean_ap"],
            )
            sys.stderr.write(
                f"[{cfg.stage}] epoch {self.epoch} val: mean AP {metrics['mean_ap']:.4f} "
                f"MPJPE {metrics['mpjpe_mm']:.1f} root mean AP {metrics['root_mean_ap']:.4f}\n"
            )
            if score > self.best:
                self.best = score
                self._save_model("model_best.pt", metrics)
            (self.out_dir / "metrics.json").write_text(json.dumps(metrics, indent=2), encoding="utf-8")
        self._save_model("model_last.pt", metrics)  # a usable model even if the run is cut short
        self.save_resume()


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
    state = torch.load(run_dir / RESUME_FILE, map_location="cpu", weights_only=True)
    cfg = from_dict(TrainConfig, json.loads(state["config"]))
    model = SelfPose3dModel(build_model_config(cfg, load_training_rig(cfg)))
    model.load_state_dict(state["model"])
    meta = {
        "stage": cfg.stage,
        "epoch": int(state["epoch"]),
        "step": int(state["global_step"]),
        "train_config": state["config"],
        "metrics": "{}",
    }
    if state.get("attention") is not None:
        meta[ATTENTION_META_KEY] = state["attention"]
    return save_checkpoint(run_dir / name, model, meta)
