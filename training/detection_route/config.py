"""Typed config of the rig-agnostic detection-route trainer (``configs/train/detection_generic.yaml``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from calib.common.paths import CONFIGS_DIR
from calib.configkit import ConfigError, load, require

CONFIG_DIR = CONFIGS_DIR / "train"

# Image sizes (w, h) a random camera picks from: landscape webcams / machine vision / Shelf, portrait phones.
DEFAULT_RESOLUTIONS = (
    (640, 480),
    (640, 360),
    (1280, 720),
    (1920, 1080),
    (1032, 776),
    (800, 600),
    (1088, 1920),
    (720, 1280),
    (1080, 1920),
)


@dataclass(frozen=True)
class RigSamplerConfig:
    """Random rigs and volumes (one per training scene).

    Attributes:
        cameras: (min, max) cameras per rig (inclusive).
        volume_xy_mm: (min, max) side of the volume's x and y (each drawn separately).
        volume_z_mm: (min, max) volume height.
        center_xy_mm: volume centre x and y are uniform in +- this.
        floor_z_mm: (min, max) floor height (the volume's bottom sits 150 mm below it).
        distance_factor: camera distance from the volume centre = this (uniform) x the volume's
            half diagonal, plus ``distance_extra_mm``.
        distance_extra_mm: (min, max) added distance.
        camera_height_mm: (min, max) camera height above the floor.
        fov_margin: the long-side field of view = the angle the volume subtends x this (uniform),
            clipped to ``fov_deg``.
        fov_deg: (min, max) long-side field of view.
        fov_free_prob: probability that a camera's field of view is uniform in ``fov_deg`` instead
            (cameras inside an oversized volume, like Shelf's, see only part of it).
        arc_deg: (min, max) azimuth span the cameras spread over (360 = all around).
        aim_jitter_mm: cameras aim at the volume centre +- this (x, y) and a height in aim_z_mm.
        aim_z_mm: (min, max) aim height above the floor.
        shared_resolution: probability that every camera of the rig has the same image size.
        resolutions: image sizes (w, h) to pick from.
        distortion_k1: (min, max) radial distortion k1.
    """

    cameras: tuple[int, int] = (2, 8)
    volume_xy_mm: tuple[float, float] = (2500.0, 9000.0)
    volume_z_mm: tuple[float, float] = (2000.0, 2400.0)
    center_xy_mm: float = 3000.0
    floor_z_mm: tuple[float, float] = (-300.0, 300.0)
    distance_factor: tuple[float, float] = (0.8, 1.6)
    distance_extra_mm: tuple[float, float] = (300.0, 2500.0)
    camera_height_mm: tuple[float, float] = (600.0, 3500.0)
    fov_margin: tuple[float, float] = (0.9, 1.3)
    fov_deg: tuple[float, float] = (40.0, 110.0)
    fov_free_prob: float = 0.0
    arc_deg: tuple[float, float] = (90.0, 360.0)
    aim_jitter_mm: float = 400.0
    aim_z_mm: tuple[float, float] = (500.0, 1400.0)
    shared_resolution: float = 0.6
    resolutions: tuple[tuple[int, int], ...] = DEFAULT_RESOLUTIONS
    distortion_k1: tuple[float, float] = (-0.15, 0.03)

    def __post_init__(self) -> None:
        require(1 <= self.cameras[0] <= self.cameras[1], "rigs.cameras", "need 1 <= min <= max")
        require(len(self.resolutions) >= 1, "rigs.resolutions", "need at least one (w, h)")


@dataclass(frozen=True)
class SceneConfig:
    """People in a scene.

    Attributes:
        people: (min, max) people inside the volume (the targets).
        bystander_prob: probability of one extra person outside the volume (seen, not a target).
        min_views: a person inside the volume is a target only if its mid-hip is in front of and
            inside at least this many cameras.
        margin_mm: people's roots stay this far inside the volume's x, y sides.
        bank_frames: frames of the synthetic motion model sampled into the pose bank.
        body_radius_mm: occlusion model: a joint is hidden by a nearer person whose bones pass
            within this radius (projected) of it.
    """

    people: tuple[int, int] = (1, 5)
    bystander_prob: float = 0.3
    min_views: int = 2
    margin_mm: float = 300.0
    bank_frames: int = 600
    body_radius_mm: float = 120.0

    def __post_init__(self) -> None:
        require(0 <= self.people[0] <= self.people[1], "scene.people", "need 0 <= min <= max")
        require(self.min_views >= 1, "scene.min_views", "must be >= 1")


@dataclass(frozen=True)
class EstimatorNoiseConfig:
    """The simulated 2D estimator (``capture.synthetic.detector.DetectorParams`` fields) and the
    estimator's own output rules applied afterwards.

    Attributes:
        params: DetectorParams overrides (e.g. ``score_visible: [0.6, 0.2]``); a path in
            ``params_file`` is loaded first (the measured MoveNet error model), these win.
        params_file: YAML with DetectorParams fields (may be empty).
        min_joint_score: joints scoring below this get score 0 (``EstimatorConfig.min_joint_score``).
        drop_outside_image: joints outside the image get score 0 (the estimator never reports them).
    """

    params: dict = field(default_factory=dict)
    params_file: str = ""
    min_joint_score: float = 0.05
    drop_outside_image: bool = True


@dataclass(frozen=True)
class OptimConfig:
    """Optimisation (Adam, cosine decay; root and pose nets trained side by side on the same scenes).

    Attributes:
        steps: training steps; batch_size: scenes per step.
        lr_root, lr_pose: learning rates.
        root_jitter_mm: σ of the noise on the true roots used as pose cube centres.
        max_pose_people: at most this many people per scene go through the pose net (speed).
    """

    steps: int = 3000
    batch_size: int = 2
    lr_root: float = 1e-3
    lr_pose: float = 1e-3
    root_jitter_mm: float = 60.0
    max_pose_people: int = 4

    def __post_init__(self) -> None:
        require(self.steps >= 0 and self.batch_size >= 1, "optim.steps", "steps >= 0 and batch_size >= 1")


@dataclass(frozen=True)
class DetectionTrainConfig:
    """One rig-agnostic detection-route training run.

    Attributes:
        model: model preset (``configs/model``) of the fresh model (volume and heatmap sizes).
        init: model file whose root and pose nets start this run (fine-tuning); empty: fresh.
        sigma_px: Gaussian σ of the rendered input heatmaps (heatmap px; as inference's default).
        root_threshold: root score threshold written into the released config.
        checkpoint_every: steps between resumable checkpoints (``out/checkpoint.pt``).
        threads: CPU threads (1: on a shared CPU more threads were slower per step).
        time_budget_s: stop early (and save) after this many seconds of training (0 = no limit).
    """

    model: str = "shelf"
    init: str = ""
    sigma_px: float = 3.0
    root_threshold: float = 0.3
    rigs: RigSamplerConfig = field(default_factory=RigSamplerConfig)
    scene: SceneConfig = field(default_factory=SceneConfig)
    estimator: EstimatorNoiseConfig = field(default_factory=EstimatorNoiseConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    seed: int = 0
    device: str = "cpu"
    threads: int = 1
    checkpoint_every: int = 100
    log_every: int = 20
    time_budget_s: float = 0.0


def load_config(name_or_path: str | Path, overrides: tuple[str, ...] = ()) -> DetectionTrainConfig:
    """A config by name in ``configs/train`` (``detection_generic``) or by path."""
    path = Path(name_or_path)
    if not path.is_file():
        path = CONFIG_DIR / f"{name_or_path}.yaml"
    if not path.is_file():
        names = sorted(p.stem for p in CONFIG_DIR.glob("detection_*.yaml"))
        raise ConfigError(f"detection-route training config '{name_or_path}' not found; available: {names}")
    return load(DetectionTrainConfig, path, overrides)
