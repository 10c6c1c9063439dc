"""Real images → the bundled 2D estimator → a 3D engine: the route for real cameras (DESIGN.md §1b).

:class:`EstimatorPredictor` has the image interface of :class:`engine.api.Predictor`
(``predict_images``, and ``start_images``/``finish`` so the live worker overlaps consecutive frames:
the estimator runs on frame t+1 while frame t is triangulated, tracked and published), so callers
never care which route runs. The 3D engine is either

* ``triangulate``: :class:`engine.triangulate.Triangulator` (association + robust DLT; no model), or
* ``learned``: a detection-route model (:meth:`engine.api.Predictor.predict_detections`: the
  estimator's keypoints rendered as heatmaps → root net → pose net).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Protocol, Sequence

import numpy as np

from engine.api import Prediction
from engine.estimators.pool import EstimatorPool
from engine.reprojection import match_reprojection
from calib.common.skeleton import get_skeleton

log = logging.getLogger(__name__)


class PeopleEngine(Protocol):
    """A 3D engine on per-view 2D people (Panoptic-15 or its own layout)."""

    def predict_people(
        self, poses_2d: Sequence[np.ndarray], views_present: Sequence[bool] | None = None
    ) -> Prediction: ...


class LearnedDetectionEngine:
    """The learned detection route as a :class:`PeopleEngine` (Panoptic-15 2D in)."""

    layout = "panoptic15"

    def __init__(self, predictor) -> None:
        self.predictor = predictor

    def predict_people(self, poses_2d: Sequence[np.ndarray], views_present: Sequence[bool] | None = None) -> Prediction:
        return self.predictor.predict_detections(poses_2d, views_present)


@dataclass
class StartedPeople:
    """A frameset after the estimator, before the 3D engine."""

    people_2d: list[np.ndarray]  # per view (N,J,3) in the engine's layout
    present: np.ndarray  # (V,) bool
    timings_ms: dict[str, float]


class EstimatorPredictor:
    """Images → estimator (views in parallel) → 3D engine.

    Args:
        estimators: the estimator pool.
        engine: the 3D engine (``predict_people``).
        engine_layout: the 2D layout ``engine`` takes (``coco17`` for the triangulator: it maps to
            Panoptic-15 in 3D; ``panoptic15`` for the learned route).
        route: a name for logs and timings (``triangulate`` | ``learned``).
        volume_center_mm, volume_size_mm: the rig's volume; people whose root (mid-hip) lies outside
            it by more than ``volume_margin_mm`` are dropped (a bystander seen by two cameras is real
            but not a person of the capture volume); None: keep everyone.
        cameras, support_views, support_max_px: a 3D person is kept only if, in at least
            ``support_views`` of ``cameras``, it reprojects onto one of the estimator's people of
            that view (median joint distance <= ``support_max_px``, each 2D person backing one 3D
            person): the learned route's ghost check (a person no two cameras saw is not there).
            0 views (or no cameras): no check.
    """

    def __init__(
        self,
        estimators: EstimatorPool,
        engine: PeopleEngine,
        engine_layout: str,
        route: str,
        *,
        volume_center_mm: Sequence[float] | None = None,
        volume_size_mm: Sequence[float] | None = None,
        volume_margin_mm: float = 250.0,
        cameras=None,
        support_views: int = 0,
        support_max_px: float = 30.0,
    ) -> None:
        self.estimators = estimators
        self.cameras = cameras
        self.support_views = support_views if cameras is not None else 0
        if self.support_views and engine_layout != "panoptic15":
            raise ValueError(f"the support check pairs Panoptic-15 people; engine layout is {engine_layout}")
        self.support_max_px = support_max_px
        self.unsupported = 0  # people dropped so far for lacking the support of enough views
        self.engine = engine
        self.engine_layout = engine_layout
        self.route = route
        self.outside_volume = 0  # people dropped so far for lying outside the volume
        self._box = None
        if volume_center_mm is not None and volume_size_mm is not None:
            c, h = np.asarray(volume_center_mm, float), np.asarray(volume_size_mm, float) / 2 + volume_margin_mm
            self._box = (c - h, c + h)
        self.skeleton = get_skeleton("panoptic15")
        self.runtime = self  # the live worker calls predictor.runtime.warmup()

    def start_images(
        self, images: np.ndarray | Sequence[np.ndarray], views_present: Sequence[bool] | None = None
    ) -> StartedPeople:
        """The estimator on the present views; the images are not read after it returns."""
        t0 = time.perf_counter()
        V = len(images)
        present = np.ones(V, bool) if views_present is None else np.asarray(views_present, bool)
        idx = np.nonzero(present)[0]
        found = self.estimators.detect([images[i] for i in idx])
        J = 17 if self.engine_layout == "coco17" else 15
        people = [np.zeros((0, J, 3), np.float32) for _ in range(V)]
        for i, p in zip(idx, found):
            people[i] = p.keypoints if self.engine_layout == "coco17" else p.to_panoptic15()
        return StartedPeople(people, present, {"estimator": (time.perf_counter() - t0) * 1e3})

    def finish(self, started: StartedPeople) -> Prediction:
        """The 3D engine on the estimator's people."""
        t0 = time.perf_counter()
        pred = self.engine.predict_people(started.people_2d, None if started.present.all() else started.present)
        if self._box is not None and pred.num_people:
            root = pred.poses_mm[:, self.skeleton.root]
            inside = np.all((root >= self._box[0]) & (root <= self._box[1]), axis=1)
            self.outside_volume += int((~inside).sum())
            pred = _keep(pred, inside)
        if self.support_views and pred.num_people:
            _, pair = match_reprojection(pred.poses_mm, started.people_2d, self.cameras)  # (P,V) px, NaN unpaired
            backed = (np.nan_to_num(pair, nan=np.inf) <= self.support_max_px).sum(axis=1) >= self.support_views
            self.unsupported += int((~backed).sum())
            pred = _keep(pred, backed)
        timings = dict(started.timings_ms)
        timings[self.route] = (time.perf_counter() - t0) * 1e3
        pred.timings_ms = timings
        return pred

    def predict_images(
        self, images: np.ndarray | Sequence[np.ndarray], views_present: Sequence[bool] | None = None
    ) -> Prediction:
        """Poses from one synchronised frameset (BGR images, sizes as the rig's cameras)."""
        return self.finish(self.start_images(images, views_present))

    def warmup(self) -> None:
        """Nothing to compile; the first estimator call allocates (done by the worker's blank frame)."""


# The triangulator's pixel thresholds were chosen on Shelf (focal length ~1090 px); a sharper rig
# sees the same millimetres as more pixels, so its thresholds scale with the median focal length.
REFERENCE_FOCAL_PX = 1090.0


def _keep(pred: Prediction, keep: np.ndarray) -> Prediction:
    """``pred`` with only the people where ``keep`` (P,) is True (K-row proposals stay K)."""
    if keep.all():
        return pred
    per_person = lambda a: a[keep] if len(a) == len(keep) else a  # noqa: E731
    return Prediction(
        pred.poses_mm[keep],
        pred.scores[keep],
        per_person(pred.proposals),
        per_person(pred.candidates),
        pred.timings_ms,
        pred.skeleton,
    )


def pixel_thresholds_for(rig) -> dict[str, float]:
    """``joint_max_px`` / ``view_max_px`` of :class:`engine.triangulate.TriangulatorConfig` for ``rig``."""
    from engine.triangulate import TriangulatorConfig

    scale = max(1.0, float(np.median([c.K[0, 0] for c in rig])) / REFERENCE_FOCAL_PX)
    base = TriangulatorConfig()
    return {"joint_max_px": base.joint_max_px * scale, "view_max_px": base.view_max_px * scale}


def build_estimator_predictor(
    rig, route: str, estimator_config, *, workers: int = 2, model=None, volume_center_mm=None, volume_size_mm=None
) -> EstimatorPredictor:
    """The real-image route for a rig.

    Args:
        rig: :class:`calib.camera.CameraRig` in view order.
        route: ``triangulate`` or ``learned``.
        estimator_config: :class:`engine.estimators.EstimatorConfig`.
        workers: parallel estimator sessions.
        model: ``learned``: a detection-route checkpoint (e.g. ``models/detection_generic_candidate.pt``).
        volume_center_mm, volume_size_mm: ``learned``: the room volume.
    """
    from calib.configkit import ConfigError

    pool = EstimatorPool(estimator_config, workers)
    if route == "triangulate":
        from engine.triangulate import Triangulator

        engine: PeopleEngine = Triangulator.from_rig(rig, layout="coco17", **pixel_thresholds_for(rig))
        layout = "coco17"
    elif route == "learned":
        from engine.api import load_model

        if model is None:
            raise ConfigError(
                "engine 'learned' needs a detection-route model (--model models/detection_generic_candidate.pt)"
            )
        engine = LearnedDetectionEngine(
            load_model(model, rig, volume_center_mm=volume_center_mm, volume_size_mm=volume_size_mm)
        )
        layout = "panoptic15"
    else:
        raise ConfigError(f"engine: '{route}' is not a real-image route (triangulate | learned)")
    log.info(
        "real-image route: %s estimator (input %d px, %d parallel sessions) -> %s",
        estimator_config.name,
        estimator_config.input_long_side_px,
        pool.workers,
        route,
    )
    return EstimatorPredictor(
        pool,
        engine,
        layout,
        route,
        volume_center_mm=volume_center_mm,
        volume_size_mm=volume_size_mm,
        **support_check(rig, route),
    )


def support_check(rig, route: str) -> dict:
    """The :class:`EstimatorPredictor` ghost-check arguments of ``route`` on ``rig``: the
    triangulator only builds people several views agree on; the learned nets can propose a person
    no camera saw (docs/real_route.md), so their people need the support of 2 views."""
    return {
        "cameras": rig,
        "support_views": 2 if route == "learned" else 0,
        "support_max_px": pixel_thresholds_for(rig)["view_max_px"],
    }
