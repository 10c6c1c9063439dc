"""Bundled off-the-shelf 2D pose estimators (real photos → per-view 2D people, COCO-17).

``build_estimator(EstimatorConfig(...))`` returns an :class:`~engine.estimators.base.Estimator`
chosen by name from a registry, so callers never name a concrete class. Importing this package is
light: the ONNX runtime is imported when an estimator is built.
"""

from engine.estimators.base import (
    Estimator,
    EstimatorConfig,
    People2D,
    build_estimator,
    estimator_names,
    register_estimator,
)

__all__ = ["Estimator", "EstimatorConfig", "People2D", "build_estimator", "estimator_names", "register_estimator"]
