"""Typed configuration of the self-supervised trainer (YAML: ``configs/train/*.yaml``).

One :class:`TrainConfig` per stage run. YAML files list only what differs from these defaults
(which are the released SelfPose3d values of SPEC.md §1.2-§1.3); ``--set a.b=c`` overrides.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from calib.common.paths import CONFIGS_DIR
from calib.configkit import ConfigError, load, require

STAGES = ("backbone", "rootnet", "posenet", "finetune")
CONFIG_DIR = CONFIGS_DIR / "train"


@dataclass(frozen=True)
class SyntheticDataConfig:
    """Training data: synthetic scenes (default) or a user's real footage (``source: footage``).

    Attributes:
        source: ``synthetic`` (seeded scenes of capture.synthetic) or ``footage`` (real frames with
            the 2D estimator's pseudo labels, :mod:`training.ssl.footage`).
        footage: footage input when ``source: footage`` (rig YAML of videos, session, videos folder,
            image tree, as ``selfpose3d pseudo-labels``); None = the rig YAML's own camera sources.
        pseudo_labels: output prefix or folder of ``selfpose3d pseudo-labels --detector`` for this
            footage; None = the bundled estimator runs once into ``<run parent>/pseudo_labels/``.
        val_every: footage: every n-th sampled frame is held out (never trained on).
        max_frames: footage: at most this many frames are sampled (0 = all).
        min_frames_with_people: footage: sampled training frames with a person in >= 2 views needed.
        frame_cache_long_side_px: footage from videos/sessions is decoded once into
            ``<run parent>/cache/frames`` as JPEG, downscaled to this long side (0 = full size).
        rig: rig YAML of the cameras (the synthetic world is seen through them; for footage: the
            calibrated rig of the footage).
        people: person slots per scene (1..people present at a time).
        fps: frame rate of the scenes.
        train_seeds: world seeds of the training scenes.
        frames_per_scene: frames taken from each training scene.
        frame_interval: every n-th frame (consecutive frames are near duplicates); footage: frames
            whose number is a multiple of it (the estimator's ``--every`` when it runs automatically).
        val_seeds: world seeds of the held-out scenes (never used for training).
        val_frames_per_scene: frames evaluated per held-out scene.
        labels: ``detector`` (simulated detector = pseudo labels, the SSL setting) or ``exact``
            (true 2D projections of joints inside the image: the supervised-2D upper bound).
        detector_variant: ``soft`` or ``hard`` detector output (stage 4 uses ``hard``).
        detector_seed: seed of the simulated detector.
        target_centre: ``trunc`` (SPEC §4.8: target Gaussians at the truncated heatmap pixel) or
            ``exact`` (at the joint's sub-pixel heatmap position, where the engine samples it).
    """

    source: Literal["synthetic", "footage"] = "synthetic"
    footage: str | None = None
    pseudo_labels: str | None = None
    val_every: int = 10
    max_frames: int = 0
    min_frames_with_people: int = 20
    frame_cache_long_side_px: int = 0
    rig: str = "configs/rig.yaml"
    people: int = 3
    fps: float = 15.0
    train_seeds: tuple[int, ...] = (101, 102, 103, 104, 105, 106, 107, 108)
    frames_per_scene: int = 150
    frame_interval: int = 2
    val_seeds: tuple[int, ...] = (9001, 9002)
    val_frames_per_scene: int = 30
    labels: Literal["detector", "exact"] = "detector"
    detector_variant: Literal["soft", "hard"] = "soft"
    detector_seed: int = 0
    target_centre: Literal["trunc", "exact"] = "trunc"

    def __post_init__(self) -> None:
        require(self.people >= 1, "data.people", f"must be >= 1, got {self.people}")
        require(len(self.train_seeds) >= 1, "data.train_seeds", "list at least one seed")
        require(
            self.val_every >= 2, "data.val_every", f"must be >= 2 (every n-th frame held out), got {self.val_every}"
        )
        require(
            self.source == "synthetic" or self.labels == "detector",
            "data.labels",
            "footage has no exact 2D labels: use data.labels=detector with data.source=footage",
        )
        require(
            self.max_frames >= 0 and self.min_frames_with_people >= 1 and self.frame_cache_long_side_px >= 0,
            "data.max_frames",
            "max_frames and frame_cache_long_side_px must be >= 0, min_frames_with_people >= 1",
        )
        require(
            not set(self.train_seeds) & set(self.val_seeds),
            "data.val_seeds",
            f"held-out seeds {sorted(set(self.train_seeds) & set(self.val_seeds))} are also training seeds",
        )
        require(
            self.frames_per_scene >= 1 and self.frame_interval >= 1,
            "data.frames_per_scene",
            "frames_per_scene and frame_interval must be >= 1",
        )


@dataclass(frozen=True)
class AugmentConfig:
    """View-set augmentation (SPEC.md §4.8)."""

    rotation_factor_deg: float = 45.0
    scale_factor: float = 0.35
    photometric: bool | None = None  # RandAugment + Cutout on sets 1, 2; None = per stage (3-4 on)


@dataclass(frozen=True)
class LossConfig:
    """Loss weights (SPEC.md §3)."""

    root_syn_weight: float = 100.0
    root_reg_weight: float = 1.0
    root_consistency: bool = True
    syn_range_mm: tuple[tuple[float, float], ...] = ((2500.0, -2000.0), (1500.0, -1500.0), (250.0, -300.0))
    attn_weight: float = 0.1
    l1_weight: float = 0.01
    l1_epoch: int | None = None  # epoch from which the Hungarian L1 is on; None = per stage (5, finetune 0)
    l1_drop_largest: bool = True
    use_attention: bool = True

    def __post_init__(self) -> None:
        require(len(self.syn_range_mm) == 3, "loss.syn_range_mm", "give three (lo, hi) shrink pairs (x, y, z)")


@dataclass(frozen=True)
class AttentionConfig:
    """The training-only attention net when the model preset has none (light preset).

    A PoseResNet of ``depth`` with stem ``width`` and ``deconv_channels``, followed by a sigmoid;
    kept in the training checkpoint, not in the model file (it is not used at inference).
    """

    depth: Literal[18, 34] = 18
    width: int = 16
    deconv_channels: tuple[int, ...] = (32, 32, 32)


@dataclass(frozen=True)
class TrainConfig:
    """One stage of the self-supervised recipe.

    Attributes:
        stage: ``backbone`` | ``rootnet`` | ``posenet`` | ``finetune``.
        model: model preset name or YAML path (``configs/model``).
        model_overrides: ``a.b=c`` overrides of the model preset.
        init: checkpoint of the previous stage (our model file or an official one); required for
            every stage but ``backbone`` (which starts from ``init`` if given, else from scratch).
        init_attention: training checkpoint whose attention net to start from (finetune).
        epochs, steps_per_epoch: schedule (``steps_per_epoch`` 0 = the whole training set).
        batch_size: samples per step (stages 2-4 use 1 as released).
        lr, lr_steps, lr_factor: Adam + MultiStepLR stepped per epoch.
        grad_clip: max gradient norm (0 = off).
        bf16: CPU/GPU bf16 autocast for the networks (losses stay fp32).
        channels_last: channels-last memory (pair with bf16 on CPU).
        threads: torch threads (0 = leave torch's default).
        workers: DataLoader workers.
        seed: random seed of sampling and augmentation.
        val_every: validate every n epochs (0 = never); best model by mean AP.
        val_frames: cap on validation frames (0 = all held-out frames).
        log_every: steps between log lines.
        checkpoint_every_steps: also write the resume checkpoint every n steps (0 = per epoch).
        device: ``cpu`` | ``cuda`` | ``cuda:N`` | ``auto``.
        frozen_bn: trained parts whose BatchNorm statistics stay fixed (eval-mode BN).
        backbone_lr: learning rate of the backbone when it trains with other parts (None = ``lr``).
    """

    stage: Literal["backbone", "rootnet", "posenet", "finetune"] = "backbone"
    model: str = "released"
    model_overrides: tuple[str, ...] = ()
    init: str | None = None
    init_attention: str | None = None
    data: SyntheticDataConfig = field(default_factory=SyntheticDataConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    attention: AttentionConfig = field(default_factory=AttentionConfig)
    epochs: int = 20
    steps_per_epoch: int = 0
    batch_size: int = 1
    lr: float = 1e-4
    lr_steps: tuple[int, ...] = (10, 15)
    lr_factor: float = 0.1
    grad_clip: float = 0.0
    bf16: bool = False
    channels_last: bool = False
    threads: int = 0
    workers: int = 0
    seed: int = 0
    val_every: int = 1
    val_frames: int = 0
    log_every: int = 10
    checkpoint_every_steps: int = 0
    device: str = "auto"
    frozen_bn: tuple[str, ...] = ()
    backbone_lr: float | None = None

    def __post_init__(self) -> None:
        bad = [p for p in self.frozen_bn if p not in ("backbone", "pose_net", "root_net", "attention")]
        require(not bad, "frozen_bn", f"unknown parts {bad}; use backbone, pose_net, root_net, attention")
        require(self.epochs >= 1, "epochs", f"must be >= 1, got {self.epochs}")
        require(self.batch_size >= 1, "batch_size", f"must be >= 1, got {self.batch_size}")
        require(self.lr > 0, "lr", f"must be positive, got {self.lr}")
        require(self.backbone_lr is None or self.backbone_lr > 0, "backbone_lr", "must be positive (or null)")
        require(self.steps_per_epoch >= 0, "steps_per_epoch", "must be >= 0 (0 = whole training set)")
        require(
            self.stage == "backbone" or self.init is not None,
            "init",
            f"stage '{self.stage}' starts from the previous stage's model: set init: <model file> "
            "(e.g. runs/light_backbone/model_final.pt)",
        )
        require(self.workers >= 0 and self.threads >= 0, "workers", "workers and threads must be >= 0")

    @property
    def l1_epoch(self) -> int:
        """First epoch of the Hungarian L1 term (SPEC: 5 in stage 3, 0 in stage 4)."""
        if self.loss.l1_epoch is not None:
            return self.loss.l1_epoch
        return 0 if self.stage == "finetune" else 5

    @property
    def photometric(self) -> bool:
        """RandAugment + Cutout on view sets 1, 2 (stages 3-4 by default)."""
        if self.augment.photometric is not None:
            return self.augment.photometric
        return self.stage in ("posenet", "finetune")


def config_path(name_or_path: str | Path) -> Path:
    """A config name (``light_backbone``) or a YAML path -> the path."""
    path = Path(name_or_path)
    if path.suffix:
        return path
    candidate = CONFIG_DIR / f"{name_or_path}.yaml"
    if not candidate.is_file():
        names = sorted(p.stem for p in CONFIG_DIR.glob("*.yaml"))
        raise ConfigError(f"training config '{name_or_path}' not found in {CONFIG_DIR}; available: {names}")
    return candidate


def load_train_config(name_or_path: str | Path, overrides: tuple[str, ...] | list[str] = ()) -> TrainConfig:
    """Load a stage config by name or path, with ``a.b=c`` overrides."""
    return load(TrainConfig, config_path(name_or_path), tuple(overrides))
