"""Model configuration (frozen dataclasses; YAML presets in ``configs/model/``).

Only composition points (:func:`engine.model.build_model`, :mod:`engine.api`) read a config;
the network modules take explicit arguments. Our own checkpoints store this config beside the
weights so they can rebuild their model.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

from calib.common.paths import CONFIGS_DIR
from calib.configkit import ConfigError, from_dict, load, require, to_dict

PRESET_DIR = CONFIGS_DIR / "model"


@dataclass(frozen=True)
class BackboneConfig:
    """PoseResNet backbone: ResNet ``depth`` + deconv head + 1x1 joint layer.

    ``width`` is the stem width (64 in torchvision ResNets); ``deconv_channels`` lists the
    stride-2 deconvolutions (3 of them give stride 4 heatmaps).
    """

    depth: Literal[18, 34, 50, 101, 152] = 50
    width: int = 64
    deconv_channels: tuple[int, ...] = (256, 256, 256)
    image_size: tuple[int, int] = (960, 512)  # (w, h) network input px

    def __post_init__(self) -> None:
        require(
            self.width > 0 and self.width % 8 == 0,
            "backbone.width",
            f"must be a positive multiple of 8, got {self.width}",
        )
        require(all(c > 0 for c in self.deconv_channels), "backbone.deconv_channels", "must be positive")
        require(1 <= len(self.deconv_channels) <= 5, "backbone.deconv_channels", "use 1..5 deconv layers")
        stride = self.stride
        w, h = self.image_size
        require(
            w % 32 == 0 and h % 32 == 0,
            "backbone.image_size",
            f"(w, h) must be multiples of 32, got {self.image_size}; e.g. (960, 512) or (320, 192)",
        )
        require(stride >= 1, "backbone.deconv_channels", "too many deconvs for the ResNet stride 32")

    @property
    def stride(self) -> int:
        """Input px per heatmap px."""
        return 32 // (2 ** len(self.deconv_channels))

    @property
    def heatmap_size(self) -> tuple[int, int]:
        """(w, h) heatmap px."""
        return (self.image_size[0] // self.stride, self.image_size[1] // self.stride)


@dataclass(frozen=True)
class V2VConfig:
    """V2V 3D hourglass: channel widths (16, 32, 64, 128) x ``width``, first conv ``front_kernel``."""

    width: float = 1.0
    front_kernel: int = 7

    def __post_init__(self) -> None:
        require(self.width > 0, "v2v.width", f"must be > 0, got {self.width}")
        require(self.front_kernel % 2 == 1, "v2v.front_kernel", f"must be odd, got {self.front_kernel}")

    @property
    def channels(self) -> tuple[int, int, int, int]:
        return tuple(max(2, int(round(c * self.width))) for c in (16, 32, 64, 128))  # type: ignore[return-value]


@dataclass(frozen=True)
class RootNetConfig:
    """Root (cuboid proposal) net over the whole room."""

    bins: tuple[int, int, int] = (80, 80, 20)
    v2v: V2VConfig = field(default_factory=V2VConfig)
    max_people: int = 10
    threshold: float = 0.3
    nms_kernel: int = 3

    def __post_init__(self) -> None:
        require(
            all(b > 0 and b % 4 == 0 for b in self.bins),
            "root_net.bins",
            f"every grid dim must be divisible by 4 (V2V pools twice), got {self.bins}",
        )
        require(self.max_people >= 1, "root_net.max_people", "must be >= 1")
        require(self.nms_kernel % 2 == 1, "root_net.nms_kernel", "must be odd")


@dataclass(frozen=True)
class RefineConfig:
    """Local refinement of the pose net's joints (``engine.refine``): off when ``radius_mm`` is 0.

    ``radius_mm`` half-width and ``step_mm`` spacing of the local grid, ``beta`` its softmax temperature.
    """

    radius_mm: float = 0.0
    step_mm: float = 20.0
    beta: float = 100.0

    def __post_init__(self) -> None:
        require(self.radius_mm >= 0, "pose_net.refine.radius_mm", f"must be >= 0 (0 = off), got {self.radius_mm}")
        require(self.step_mm > 0, "pose_net.refine.step_mm", f"must be > 0, got {self.step_mm}")
        require(
            self.radius_mm / self.step_mm <= 8,
            "pose_net.refine",
            f"radius_mm / step_mm must be <= 8 (at most 17^3 points per joint), got {self.radius_mm}/{self.step_mm}",
        )
        require(self.beta > 0, "pose_net.refine.beta", f"must be > 0, got {self.beta}")


@dataclass(frozen=True)
class PoseNetConfig:
    """Per-person pose regression net over a cube centred on each root proposal."""

    cube_size_mm: tuple[float, float, float] = (2000.0, 2000.0, 2000.0)
    bins: tuple[int, int, int] = (64, 64, 64)
    v2v: V2VConfig = field(default_factory=V2VConfig)
    beta: float = 100.0
    input_skip: bool = False  # light preset: output = V2V(cube) + cube, so per-joint evidence bypasses a narrow V2V
    refine: RefineConfig = field(default_factory=RefineConfig)  # inference only; off as released

    def __post_init__(self) -> None:
        require(
            all(b > 0 and b % 4 == 0 for b in self.bins),
            "pose_net.bins",
            f"every grid dim must be divisible by 4 (V2V pools twice), got {self.bins}",
        )
        require(all(s > 0 for s in self.cube_size_mm), "pose_net.cube_size_mm", "must be positive")


@dataclass(frozen=True)
class ModelConfig:
    """The whole multi-person model (backbone + root net + pose net [+ attention net]).

    ``space_*`` are defaults for the room volume; a rig may override them at load time.
    """

    name: str = "released"
    skeleton: str = "panoptic15"
    num_joints: int = 15
    root_joint: int = 2
    backbone: BackboneConfig = field(default_factory=BackboneConfig)
    root_net: RootNetConfig = field(default_factory=RootNetConfig)
    pose_net: PoseNetConfig = field(default_factory=PoseNetConfig)
    with_attn: bool = True  # keep the training-only attention net so official files load strictly
    attn_depth: Literal[18, 34, 50] = 18
    space_size_mm: tuple[float, float, float] = (8000.0, 8000.0, 2000.0)
    space_center_mm: tuple[float, float, float] = (0.0, -500.0, 800.0)

    def __post_init__(self) -> None:
        require(0 <= self.root_joint < self.num_joints, "root_joint", f"must be in [0, {self.num_joints})")
        require(all(s > 0 for s in self.space_size_mm), "space_size_mm", "must be positive")

    def to_dict(self) -> dict:
        return to_dict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "ModelConfig":
        return from_dict(cls, data)


def with_refine_radius(config: ModelConfig, radius_mm: float | None) -> ModelConfig:
    """``config`` with ``pose_net.refine.radius_mm`` set (validated; 0 = off; None = unchanged)."""
    if radius_mm is None:
        return config
    refine = replace(config.pose_net.refine, radius_mm=float(radius_mm))
    return replace(config, pose_net=replace(config.pose_net, refine=refine))


def preset_names() -> list[str]:
    """Names of the YAML presets shipped in ``configs/model``."""
    return sorted(p.stem for p in PRESET_DIR.glob("*.yaml"))


def load_preset(name_or_path: str | Path, overrides: tuple[str, ...] = ()) -> ModelConfig:
    """Load a preset by name (``released``, ``light``) or a YAML path."""
    path = Path(name_or_path)
    if not path.suffix:
        path = PRESET_DIR / f"{name_or_path}.yaml"
        if not path.is_file():
            raise ConfigError(f"model preset '{name_or_path}' not found; available: {preset_names()}")
    return load(ModelConfig, path, overrides)
