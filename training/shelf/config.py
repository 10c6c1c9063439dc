"""Typed config of the Shelf trainers (YAML: ``configs/train/shelf_*.yaml``; ``--set a.b=c`` overrides)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from calib.common.paths import CONFIGS_DIR
from calib.configkit import ConfigError, load, require

CONFIG_DIR = CONFIGS_DIR / "train"


@dataclass(frozen=True)
class RootTrainConfig:
    """Root net on synthetic roots in the Shelf volume (SPEC §3.2 (a), with detector-like noise).

    Attributes:
        steps, batch_size, lr: optimisation (Adam).
        max_roots: 1..max_roots people per sample.
        z_range_mm: root (mid-hip) height range sampled, mm.
        min_views: roots are sampled where at least this many cameras see the point (from the
            calibration only).
        drop_prob: a root is missing in a view with this probability (occlusion, missed detection).
        score_range: peak of a root's Gaussian (the detector's score), uniform.
        jitter_px: 2D detection noise σ in original pixels.
        false_positives: mean number of spurious root blobs per view (Poisson).
    """

    steps: int = 1500
    batch_size: int = 8
    lr: float = 1e-3
    max_roots: int = 6
    z_range_mm: tuple[float, float] = (450.0, 1200.0)
    min_views: int = 3
    drop_prob: float = 0.15
    score_range: tuple[float, float] = (0.3, 1.0)
    jitter_px: float = 5.0
    false_positives: float = 0.3

    def __post_init__(self) -> None:
        require(self.steps >= 0 and self.batch_size >= 1, "root.steps", "steps >= 0 and batch_size >= 1")
        require(self.max_roots >= 1, "root.max_roots", "must be >= 1")
        require(0.0 <= self.drop_prob < 1.0, "root.drop_prob", "must be in [0, 1)")


@dataclass(frozen=True)
class PoseTrainConfig:
    """Pose net: ``ssl`` (projected poses vs PAF-grouped detections of the training frames) or
    ``synthetic`` (synthetic 3D poses projected into the Shelf cameras, supervised in 3D).

    Attributes:
        mode: ``ssl`` or ``synthetic``.
        steps, batch_size, lr: optimisation (Adam; batch = frames).
        root_jitter_mm: σ of the noise added to the cube centres (robustness to root error).
        view_dropout: probability that a view's input heatmaps are zeroed in a step (ssl).
        max_labels: per view at most this many grouped people are used as pseudo labels.
        drop_largest: drop the largest per-view L1 term (upstream's L1_ATTN).
        bank_frames: synthetic: frames of the synthetic motion model sampled into the pose bank.
        people_range: synthetic: people per sample (inclusive).
        joint_jitter_px, joint_drop, score_range, false_positives: synthetic detector noise.
    """

    mode: Literal["ssl", "synthetic"] = "ssl"
    steps: int = 2000
    batch_size: int = 4
    lr: float = 1e-3
    root_jitter_mm: float = 60.0
    view_dropout: float = 0.1
    max_labels: int = 8
    drop_largest: bool = True
    bank_frames: int = 1500
    people_range: tuple[int, int] = (1, 5)
    joint_jitter_px: float = 6.0
    joint_drop: float = 0.1
    score_range: tuple[float, float] = (0.3, 1.0)
    false_positives: float = 1.0

    def __post_init__(self) -> None:
        require(self.steps >= 0 and self.batch_size >= 1, "pose.steps", "steps >= 0 and batch_size >= 1")
        require(1 <= self.people_range[0] <= self.people_range[1], "pose.people_range", "need 1 <= lo <= hi")


@dataclass(frozen=True)
class ShelfTrainConfig:
    """One Shelf training run.

    Attributes:
        model: model preset (``configs/model``) of a fresh model.
        data: Shelf folder (detections.npz + calibration).
        train_frames: frames of the detections used by the ssl pose loss (e.g. ``300-449``).
        root_init: checkpoint whose root net is reused (then ``root.steps`` is ignored); empty:
            train the root net here.
        sigma_px: Gaussian σ of the rendered input heatmaps (heatmap px).
        device: ``auto`` | ``cpu`` | ``cuda``; threads: CPU threads (1 by default: on a CPU
            shared with other jobs, 2 OpenMP threads measured 25x slower per step than 1).
    """

    model: str = "shelf"
    data: str = "../shared/data/shelf"
    train_frames: str = "300-449"
    root_init: str = ""
    sigma_px: float = 3.0
    root: RootTrainConfig = field(default_factory=RootTrainConfig)
    pose: PoseTrainConfig = field(default_factory=PoseTrainConfig)
    seed: int = 0
    device: str = "auto"
    threads: int = 1
    log_every: int = 50


def load_config(name_or_path: str | Path, overrides: tuple[str, ...] = ()) -> ShelfTrainConfig:
    """A config by name in ``configs/train`` (``shelf_ssl_a``) or by path."""
    path = Path(name_or_path)
    if not path.is_file():
        path = CONFIG_DIR / f"{name_or_path}.yaml"
    if not path.is_file():
        names = sorted(p.stem for p in CONFIG_DIR.glob("shelf_*.yaml"))
        raise ConfigError(f"Shelf training config '{name_or_path}' not found; available: {names}")
    return load(ShelfTrainConfig, path, overrides)
