"""Estimator interface, its config and the registry (a second estimator joins by name, no caller changes)."""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np

from calib.common.paths import MODELS_DIR  # noqa: F401  (re-exported for the estimators)
from calib.configkit import ConfigError, require


@dataclass(frozen=True)
class EstimatorConfig:
    """How to run a 2D estimator.

    Attributes:
        name: registry name (``movenet``; see :func:`estimator_names`).
        model_path: model file; empty = the estimator's bundled default under ``models/``.
        input_long_side_px: the network input's longer side (the image is letterboxed to it; 32 | it).
        threads: ONNX Runtime intra-op threads (0 = the runtime's default).
        min_person_score: people below this score are dropped.
        min_joint_score: joints below this score get score 0 (absent).
        flip: also run the horizontally flipped image and average (test-time augmentation, 2x cost).
        tiles: split each image into ``tiles`` x ``tiles`` overlapping tiles as well (for > 6 people).
    """

    name: str = "movenet"
    model_path: str = ""
    input_long_side_px: int = 256
    threads: int = 0
    min_person_score: float = 0.2
    min_joint_score: float = 0.05
    flip: bool = False
    tiles: int = 1

    def __post_init__(self) -> None:
        require(
            self.name in estimator_names(),
            "estimator.name",
            f"unknown estimator '{self.name}'; known: {estimator_names()}",
        )
        require(
            self.input_long_side_px >= 64 and self.input_long_side_px % 32 == 0,
            "estimator.input_long_side_px",
            f"must be a multiple of 32 and >= 64, got {self.input_long_side_px}",
        )
        require(self.threads >= 0, "estimator.threads", "must be >= 0 (0 = automatic)")
        require(0.0 <= self.min_person_score < 1.0, "estimator.min_person_score", "must be in [0, 1)")
        require(0.0 <= self.min_joint_score < 1.0, "estimator.min_joint_score", "must be in [0, 1)")
        require(1 <= self.tiles <= 4, "estimator.tiles", f"must be 1..4, got {self.tiles}")


@dataclass
class People2D:
    """The people an estimator found in one image.

    Attributes:
        keypoints: (N,K,3) float32: x px, y px in the ORIGINAL image, score in [0,1] (0 = absent).
        scores: (N,) float32 person scores, descending.
        layout: keypoint layout name (``calib.common.keypoint_maps.LAYOUTS``), e.g. ``coco17``.
    """

    keypoints: np.ndarray
    scores: np.ndarray
    layout: str = "coco17"
    timings_ms: dict[str, float] = field(default_factory=dict)

    @property
    def num_people(self) -> int:
        return int(self.scores.shape[0])

    def to_panoptic15(self) -> np.ndarray:
        """(N,15,3) in the product skeleton (derived neck / mid-hip), through the shared keypoint maps."""
        from calib.common.keypoint_maps import keypoints_to_panoptic15

        if not self.num_people:
            return np.zeros((0, 15, 3), dtype=np.float32)
        return keypoints_to_panoptic15(self.keypoints, self.layout).astype(np.float32)


class Estimator(ABC):
    """Images → per-image 2D people. Implementations are registered by name."""

    layout: str = "coco17"

    @abstractmethod
    def detect(self, images: np.ndarray | Sequence[np.ndarray], bgr: bool = True) -> list[People2D]:
        """Per image a :class:`People2D`.

        Args:
            images: (V,H,W,3) uint8 or a list of (H_v,W_v,3) uint8 arrays (sizes may differ).
            bgr: channel order of the images (OpenCV: BGR).
        """


_REGISTRY: dict[str, Callable[[EstimatorConfig], Estimator]] = {}
# Built-in estimators: registry name -> module that registers it when imported.
_BUILTIN_MODULES = {"movenet": "engine.estimators.movenet"}


def register_estimator(name: str) -> Callable:
    """Decorator: ``@register_estimator("mine")`` on a factory ``(EstimatorConfig) -> Estimator``."""

    def deco(factory: Callable[[EstimatorConfig], Estimator]) -> Callable[[EstimatorConfig], Estimator]:
        _REGISTRY[name] = factory
        return factory

    return deco


def estimator_names() -> list[str]:
    """Registered names (built-ins are listed without importing their runtime)."""
    return sorted(set(_REGISTRY) | set(_BUILTIN_MODULES))


def build_estimator(config: EstimatorConfig) -> Estimator:
    """The estimator ``config.name`` names (ConfigError for an unknown name)."""
    if config.name not in _REGISTRY and config.name in _BUILTIN_MODULES:
        importlib.import_module(_BUILTIN_MODULES[config.name])
    if config.name not in _REGISTRY:
        raise ConfigError(f"estimator.name: unknown estimator '{config.name}'; known: {estimator_names()}")
    return _REGISTRY[config.name](config)
