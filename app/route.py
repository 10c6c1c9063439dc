"""Which inference route a run takes, decided once (``preflight``) and built the same way everywhere.

Routes (``--engine``):
* ``image``: SelfPose3d as published: the model's own image backbone → root net → pose net. The
  default on synthetic rigs (the committed light model was trained on synthetic people) and with an
  image model named by ``--model`` (e.g. the official checkpoints).
* ``triangulate``: images → bundled 2D estimator → association + robust triangulation. The default
  on real cameras and videos (measured better than the learned route on the real Pose2Sim footage:
  docs/real_route.md).
* ``learned``: images → bundled 2D estimator → a detection-route model (``--model``, default
  ``models/detection_generic_candidate.pt``); chosen automatically for a model whose meta says it takes
  detections (e.g. ``models/shelf_ssl.pt``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from calib.common.paths import DEFAULT_MODEL, MODELS_DIR, REPO_ROOT
from calib.configkit import ConfigError

log = logging.getLogger(__name__)

ENGINES = ("auto", "image", "triangulate", "learned")
REAL_DEFAULT = "triangulate"  # by measurement on real footage (docs/real_route.md)
# The rig-agnostic detection-route model trained on synthetic random rigs (docs/detection_route.md).
# A candidate: it finds the people of unseen rigs but makes ghosts (and nobody on Shelf's
# cameras-inside-the-volume layout), hence not the default of any input.
DEFAULT_DETECTION_MODEL = MODELS_DIR / "detection_generic_candidate.pt"


@dataclass(frozen=True)
class Route:
    """A decided route: ``kind`` (image | triangulate | learned), the resolved ``model`` ('' when
    none) and why it was chosen (logged at start-up)."""

    kind: str
    model: str
    reason: str


def resolve_model(model: str) -> str:
    """Absolute model path (relative paths are tried from the repo root too) or a preset name."""
    from engine.config import preset_names

    if "," in model:
        return ",".join(resolve_model(m) for m in model.split(","))
    p = Path(model)
    for cand in (p, REPO_ROOT / p):
        if cand.exists():
            return str(cand.resolve())
    if model in preset_names():
        return model
    raise ConfigError(
        f"model '{model}': no such checkpoint file or folder, and not a preset ({preset_names()}). "
        "Train one (selfpose3d train ...), pass --model PATH, or --model light for an untrained "
        "plumbing-only model"
    )


def _input_of(model: str) -> str:
    from engine.checkpoints import model_input
    from engine.config import preset_names

    if model in preset_names():
        return "images"
    first = model.split(",")[0]
    return model_input(first) if Path(first).is_file() else "images"


def is_synthetic(rig) -> bool:
    """Every camera is the synthetic world (the embedded demo rig)."""
    return all(rig.source(n).kind == "synthetic" for n in rig.names)


def choose_route(engine: str, model: str, rig=None) -> Route:
    """Decide the route for ``engine`` (auto | image | triangulate | learned) and ``model`` ('' = the
    route's default) on ``rig`` (a :class:`calib.rig_config.Rig`; None: real images, e.g. a folder of
    photos for ``selfpose3d predict``)."""
    if engine not in ENGINES:
        raise ConfigError(f"engine: '{engine}' is not one of {ENGINES}")
    given = resolve_model(model) if model else ""
    kind = _input_of(given) if given else None
    if engine == "auto":
        if given:
            engine = "learned" if kind == "detections" else "image"
            reason = f"--model {given} takes {kind}"
        elif rig is not None and is_synthetic(rig):
            engine, reason = "image", "synthetic rig: the committed light model was trained on synthetic people"
        else:
            engine, reason = REAL_DEFAULT, "real cameras/videos: the measured default (docs/real_route.md)"
    else:
        reason = f"--engine {engine}"
    if engine == "triangulate":
        if given:
            raise ConfigError(f"--engine triangulate uses no model, but --model {model} was given: drop one of them")
        return Route("triangulate", "", reason)
    if engine == "learned":
        model_path = given or (str(DEFAULT_DETECTION_MODEL) if DEFAULT_DETECTION_MODEL.is_file() else "")
        if not model_path:
            raise ConfigError(
                f"--engine learned needs a detection-route model: pass --model FILE "
                f"({DEFAULT_DETECTION_MODEL} is not in this checkout)"
            )
        if _input_of(model_path) != "detections":
            raise ConfigError(
                f"--engine learned: {model_path} takes images, not 2D detections; use --engine image "
                "for it, or a detection-route model (e.g. models/detection_generic_candidate.pt)"
            )
        return Route("learned", model_path, reason)
    model_path = given or resolve_model(str(DEFAULT_MODEL))
    if _input_of(model_path) != "images":
        raise ConfigError(
            f"--engine image: {model_path} takes 2D detections (its image backbone is untrained); "
            "use --engine learned (images go through the bundled 2D estimator)"
        )
    return Route("image", model_path, reason)


def build_predictor(
    route: Route,
    cameras,
    *,
    estimator,
    estimator_workers: int = 2,
    backend: str = "auto",
    device: str = "auto",
    precision: str = "fp32",
    compile_: bool = False,
    volume_center_mm=None,
    volume_size_mm=None,
    refine_radius_mm: float | None = None,
):
    """The predictor of a decided route: an :class:`engine.api.Predictor` (image) or an
    :class:`engine.estimator_route.EstimatorPredictor` (triangulate / learned); both take images.

    Args:
        cameras: :class:`calib.camera.CameraRig` in image order.
        estimator: :class:`engine.estimators.EstimatorConfig` (triangulate / learned).
        backend, device, precision, compile_: the image route's runtime (see engine.api.load_model).
        volume_center_mm, volume_size_mm: the room volume of the learned models.
        refine_radius_mm: the image route's local joint refinement (None: as the checkpoint's
            config says; 0: off; see engine.api.load_model).
    """
    if route.kind == "image":
        from engine.api import load_model

        spec = route.model.split(",") if "," in route.model else route.model
        return load_model(
            spec,
            cameras,
            backend=backend,
            device=device,
            precision=precision,
            compile=compile_,
            volume_center_mm=volume_center_mm,
            volume_size_mm=volume_size_mm,
            refine_radius_mm=refine_radius_mm,
        )
    from engine.estimator_route import build_estimator_predictor

    return build_estimator_predictor(
        cameras,
        route.kind,
        estimator,
        workers=estimator_workers,
        model=route.model or None,
        volume_center_mm=volume_center_mm,
        volume_size_mm=volume_size_mm,
    )


def build_worker_predictor(route: Route, worker, rig, compile_: bool = False):
    """:func:`build_predictor` from the live worker's config (app.config.WorkerConfig) and a rig."""
    return build_predictor(
        route,
        rig.cameras,
        estimator=worker.estimator,
        estimator_workers=worker.estimator_workers,
        backend=worker.backend,
        device=worker.device,
        precision=worker.precision,
        compile_=compile_,
        volume_center_mm=rig.volume.center_mm,
        volume_size_mm=rig.volume.size_mm,
    )
