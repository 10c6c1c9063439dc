"""Typed config of ``selfpose3d fit-rig`` (``configs/fit_rig/<budget>.yaml``: ``cpu`` | ``gpu``)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

from calib.common.paths import CONFIGS_DIR, MODELS_DIR, REPO_ROOT
from calib.configkit import ConfigError, load, require

CONFIG_DIR = CONFIGS_DIR / "fit_rig"
BUDGETS = ("cpu", "gpu")


@dataclass(frozen=True)
class LabelsConfig:
    """Stage ``labels``: pseudo labels of the footage with the bundled estimator.

    Attributes:
        input_px: the estimator's input long side (the live app's default, so validation sees
            what the live route sees).
        every: every N-th frame of each camera.
        max_frames: at most this many (sampled) frames per camera (0: all).
        val_every: every N-th labelled frame is held out for validation (never trained on).
        min_frames_with_people: fewer usable frames (a person in >= 2 views) is an error.
        threads: estimator threads.
    """

    input_px: int = 256
    every: int = 1
    max_frames: int = 0
    val_every: int = 10
    min_frames_with_people: int = 20
    threads: int = 1

    def __post_init__(self) -> None:
        require(self.every >= 1, "labels.every", "must be >= 1")
        require(self.val_every >= 2, "labels.val_every", "must be >= 2 (every val_every-th frame is held out)")
        require(self.max_frames >= 0, "labels.max_frames", "must be >= 0 (0 = all)")
        require(self.min_frames_with_people >= 1, "labels.min_frames_with_people", "must be >= 1")
        require(self.input_px >= 32, "labels.input_px", "must be >= 32 (the estimator's input long side)")


@dataclass(frozen=True)
class RigStageConfig:
    """Stage ``rig``: fine-tune root + pose nets on synthetic motion projected through this rig.

    Attributes:
        steps: optimisation steps (``batch_size`` synthetic scenes each).
        batch_size: scenes per step.
        lr_root, lr_pose: Adam learning rates (cosine decay over ``steps``).
        people: (min, max) synthetic people in the rig's volume per scene.
        bystander_prob: probability of a person just outside the volume.
        error_model: the estimator's measured error model (DetectorParams YAML).
        root_jitter_mm: noise on the true roots used as pose cube centres.
    """

    steps: int = 300
    batch_size: int = 1
    lr_root: float = 3e-4
    lr_pose: float = 3e-4
    people: tuple[int, int] = (1, 4)
    bystander_prob: float = 0.3
    error_model: str = "configs/estimators/movenet_error_model.yaml"
    root_jitter_mm: float = 60.0

    def __post_init__(self) -> None:
        require(self.steps >= 0 and self.batch_size >= 1, "rig.steps", "steps >= 0 and batch_size >= 1")
        require(
            1 <= self.people[0] <= self.people[1],
            "rig.people",
            f"[min, max] with 1 <= min <= max, got {list(self.people)}",
        )
        require(0.0 <= self.bystander_prob <= 1.0, "rig.bystander_prob", "must be in 0..1")


@dataclass(frozen=True)
class SSLStageConfig:
    """Stage ``ssl``: self-supervised fine-tune on the footage's training frames (no labels).

    Attributes:
        steps: optimisation steps (one real frameset each).
        lr_root, lr_pose: Adam learning rates (cosine decay).
        min_score: pseudo 2D joints scoring below this get no weight in the reprojection loss.
        root_jitter_mm: noise on the triangulated roots used as pose cube centres.
        root_weight: weight of the root net's term against the triangulated roots (0: pose net only).
    """

    steps: int = 600
    lr_root: float = 1e-4
    lr_pose: float = 1e-4
    min_score: float = 0.3
    root_jitter_mm: float = 60.0
    root_weight: float = 1.0

    def __post_init__(self) -> None:
        require(self.steps >= 0, "ssl.steps", "must be >= 0")


@dataclass(frozen=True)
class ImageVariantConfig:
    """``fit-rig --variant image``: the image-input model's four SSL stages on the footage
    (``selfpose3d train`` with ``data.source: footage``, :mod:`training.fit_rig.image_variant`).

    Attributes:
        recipe: training config family (``configs/train/<recipe>_<stage>.yaml``).
        init: the model the backbone stage starts from (the committed synthetic light model).
        steps: training steps of each stage (one epoch each).
        frame_cache_long_side_px: long side of the decoded frame cache (0 = full size).
        val_frames: cap on the held-out frames scored after each epoch (0 = all).
    """

    recipe: str = "light"
    init: str = str(MODELS_DIR / "light_synthetic.pt")
    steps: int = 300
    frame_cache_long_side_px: int = 640
    val_frames: int = 0

    def __post_init__(self) -> None:
        require(self.steps >= 1, "image.steps", "must be >= 1")
        require(self.frame_cache_long_side_px >= 0, "image.frame_cache_long_side_px", "must be >= 0 (0 = full size)")
        require(self.val_frames >= 0, "image.val_frames", "must be >= 0")


@dataclass(frozen=True)
class FitRigConfig:
    """One ``fit-rig`` run.

    Attributes:
        init: the model the run starts from (the rig-agnostic detection model).
        sigma_px: Gaussian σ (heatmap px) of the rendered input heatmaps (as inference).
        checkpoint_every: training steps between resumable checkpoints.
        threads: torch CPU threads.
        seed: random seed of the synthetic scenes and the jitter.
        expected_people: people known to be in the volume in every frame (0: unknown); gives
            the validation's recall.
    """

    init: str = str(MODELS_DIR / "detection_generic_candidate.pt")
    sigma_px: float = 3.0
    labels: LabelsConfig = field(default_factory=LabelsConfig)
    rig: RigStageConfig = field(default_factory=RigStageConfig)
    ssl: SSLStageConfig = field(default_factory=SSLStageConfig)
    image: ImageVariantConfig = field(default_factory=ImageVariantConfig)
    checkpoint_every: int = 25
    threads: int = 1
    seed: int = 0
    expected_people: int = 0

    def __post_init__(self) -> None:
        require(self.checkpoint_every >= 1, "checkpoint_every", "must be >= 1")
        require(self.expected_people >= 0, "expected_people (--people)", "must be >= 0 (0 = unknown)")


def load_config(budget_or_path: str | Path, overrides: tuple[str, ...] = ()) -> FitRigConfig:
    """The preset of a budget (``cpu`` | ``gpu``) or a YAML path, with ``--set`` overrides."""
    path = Path(budget_or_path)
    if not path.is_file():
        path = CONFIG_DIR / f"{budget_or_path}.yaml"
    if not path.is_file():
        raise ConfigError(f"fit-rig budget '{budget_or_path}' not found; use one of {list(BUDGETS)} or a YAML path")
    cfg = load(FitRigConfig, path, overrides)
    return replace(
        cfg,
        init=repo_path(cfg.init),
        rig=replace(cfg.rig, error_model=repo_path(cfg.rig.error_model)),
        image=replace(cfg.image, init=repo_path(cfg.image.init)),
    )


def repo_path(path: str) -> str:
    """A relative path as given when it exists from here, else from the repository root."""
    p = Path(path)
    if not path or p.is_absolute():
        return path
    return str(p.resolve() if p.exists() else REPO_ROOT / p)
