"""Route selection (app/route.py) and the real-image route on real footage."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from app.route import Route, build_worker_predictor, choose_route
from app.config import WorkerConfig
from calib.common.paths import CONFIGS_DIR, DEFAULT_MODEL, MODELS_DIR
from calib.configkit import ConfigError
from calib.rig_config import load_rig
from engine.errors import CheckpointError

SHELF_MODEL = str(MODELS_DIR / "shelf_ssl.pt")


@pytest.fixture(scope="module")
def synthetic_rig():
    return load_rig(CONFIGS_DIR / "rig.yaml")


@pytest.fixture(scope="module")
def pose2sim_rig(shared_data):
    return load_rig(CONFIGS_DIR / "rigs" / "pose2sim_multiperson.yaml")


def test_auto_on_the_synthetic_rig_runs_the_committed_image_model(synthetic_rig):
    route = choose_route("auto", "", synthetic_rig)
    assert route.kind == "image" and route.model == str(DEFAULT_MODEL.resolve()) and "synthetic" in route.reason


@pytest.mark.data
def test_auto_on_real_videos_triangulates_without_a_model(pose2sim_rig):
    assert choose_route("auto", "", pose2sim_rig).kind == "triangulate"


@pytest.mark.data
def test_a_detection_model_goes_through_the_estimator_never_the_untrained_backbone(pose2sim_rig, synthetic_rig):
    assert choose_route("auto", SHELF_MODEL, pose2sim_rig) == Route(
        "learned", SHELF_MODEL, f"--model {SHELF_MODEL} takes detections"
    )
    with pytest.raises(ConfigError, match="takes 2D detections.*--engine learned"):
        choose_route("image", SHELF_MODEL, synthetic_rig)
    with pytest.raises(ConfigError, match="takes images, not 2D detections"):
        choose_route("learned", str(DEFAULT_MODEL), synthetic_rig)
    with pytest.raises(ConfigError, match="uses no model"):
        choose_route("triangulate", SHELF_MODEL, synthetic_rig)


def test_predict_images_refuses_a_detection_model(synthetic_rig):
    from engine.api import load_model

    predictor = load_model(SHELF_MODEL, synthetic_rig.cameras)
    blank = np.zeros((len(synthetic_rig.cameras), 360, 640, 3), np.uint8)
    with pytest.raises(CheckpointError, match="takes 2D detections.*--engine learned"):
        predictor.predict_images(blank)


def _framesets(rig, frames):
    caps = [cv2.VideoCapture(str(rig.source(n).uri)) for n in rig.names]
    out = []
    for f in frames:
        views = []
        for cap in caps:
            cap.set(cv2.CAP_PROP_POS_FRAMES, f)
            views.append(cap.read()[1])
        out.append(views)
    for cap in caps:
        cap.release()
    return out


def _reprojection_px(pred, people_2d, rig) -> list[float]:
    """Per (person, view) the median distance of the reprojected joints to its paired 2D person."""
    from engine.reprojection import match_reprojection

    _, pair = match_reprojection(pred.poses_mm, people_2d, rig.cameras)
    return [float(e) for e in pair.ravel() if np.isfinite(e)]


@pytest.mark.data
@pytest.mark.parametrize("engine", ["triangulate", "learned"])
def test_real_footage_two_people_on_the_people(engine, pose2sim_rig):
    """Three Pose2Sim framesets: the man and the second person, joints reprojecting onto the estimator's 2D."""
    from engine.estimators import build_estimator

    from app.route import DEFAULT_DETECTION_MODEL

    if engine == "learned" and not DEFAULT_DETECTION_MODEL.is_file():
        pytest.skip(f"{DEFAULT_DETECTION_MODEL} is not in this checkout")
    model = str(DEFAULT_DETECTION_MODEL) if engine == "learned" else ""
    route = choose_route(engine, model, pose2sim_rig)
    predictor = build_worker_predictor(route, WorkerConfig(engine=engine, estimator_workers=1), pose2sim_rig)
    est = build_estimator(WorkerConfig().estimator)
    for views in _framesets(pose2sim_rig, (5, 45, 85)):
        pred = predictor.predict_images(views)
        # the two people, no ghost (the learned route's ghosts are removed by its support check)
        assert pred.num_people == 2, (engine, pred.num_people)
        people_2d = [p.to_panoptic15() for p in est.detect(views)]
        errs = _reprojection_px(pred, people_2d, pose2sim_rig)
        bound = 25.0 if engine == "triangulate" else 40.0
        assert np.median(errs) < bound, (engine, np.round(errs, 1))


def test_people_outside_the_volume_are_dropped_and_counted():
    from engine.api import Prediction
    from engine.estimator_route import EstimatorPredictor, StartedPeople

    class TwoPeople:  # one at the volume centre, one 3 m outside
        def predict_people(self, poses_2d, views_present=None):
            poses = np.zeros((2, 15, 3), np.float32)
            poses[1, :, 0] = 3000.0
            return Prediction(
                poses,
                np.array([0.9, 0.8], np.float32),
                np.zeros((2, 5), np.float32),
                np.zeros((2, 15, 5), np.float32),
                {},
            )

    pred = EstimatorPredictor(
        None, TwoPeople(), "coco17", "triangulate", volume_center_mm=(0, 0, 0), volume_size_mm=(2000, 2000, 2000)
    )
    out = pred.finish(StartedPeople([], np.ones(2, bool), {"estimator": 1.0}))
    assert out.num_people == 1 and out.poses_mm[0, 0, 0] == 0 and pred.outside_volume == 1
    assert set(out.timings_ms) == {"estimator", "triangulate"}


def test_triangulation_pixel_thresholds_scale_with_the_focal_length(toy_rig):
    from engine.estimator_route import REFERENCE_FOCAL_PX, pixel_thresholds_for
    from engine.triangulate import TriangulatorConfig

    base = TriangulatorConfig()
    assert pixel_thresholds_for(toy_rig) == {"joint_max_px": base.joint_max_px, "view_max_px": base.view_max_px}
    sharp = type(toy_rig)(tuple(c.replace(K=c.K * np.array([[2.0], [2.0], [1.0]])) for c in toy_rig))
    scale = 1800.0 / REFERENCE_FOCAL_PX  # the toy rig's 900 px focal length, doubled
    assert pixel_thresholds_for(sharp) == pytest.approx(
        {"joint_max_px": base.joint_max_px * scale, "view_max_px": base.view_max_px * scale}
    )


def test_the_learned_route_drops_a_person_no_two_views_back_and_counts_it(toy_rig):
    """A 3D person that reprojects onto the estimator's people in every view stays; one that lands on
    a 2D person in a single view only (a ghost built from one camera's mistake) is dropped."""
    from calib.projection import project_points
    from engine.api import Prediction
    from engine.estimator_route import EstimatorPredictor, StartedPeople

    rng = np.random.default_rng(0)
    real = rng.uniform(-300, 300, (15, 3)) + np.array([0.0, 0.0, 1000.0])
    ghost = real + np.array([1500.0, 0.0, 0.0])
    people_2d = []
    for v, cam in enumerate(toy_rig):
        views = [project_points(real, cam)] + ([project_points(ghost, cam)] if v == 0 else [])
        people_2d.append(np.stack([np.concatenate([uv, np.ones((15, 1))], 1) for uv in views]).astype(np.float32))

    class RealAndGhost:
        def predict_people(self, poses_2d, views_present=None):
            return Prediction(
                np.stack([real, ghost]).astype(np.float32),
                np.array([0.9, 0.8], np.float32),
                np.zeros((2, 5), np.float32),
                np.zeros((2, 15, 5), np.float32),
                {},
            )

    route = EstimatorPredictor(
        None, RealAndGhost(), "panoptic15", "learned", cameras=toy_rig, support_views=2, support_max_px=30.0
    )
    out = route.finish(StartedPeople(people_2d, np.ones(len(toy_rig), bool), {"estimator": 1.0}))
    assert out.num_people == 1 and np.allclose(out.poses_mm[0], real, atol=1e-3) and route.unsupported == 1
    off = EstimatorPredictor(None, RealAndGhost(), "panoptic15", "learned", cameras=toy_rig, support_views=0)
    assert off.finish(StartedPeople(people_2d, np.ones(len(toy_rig), bool), {})).num_people == 2
