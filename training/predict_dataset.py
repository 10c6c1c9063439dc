"""Run a model on a dataset's images (a Panoptic tree, a Campus folder) into a prediction file.

The model is any image predictor (``predict_images(BGR images) -> engine.api.Prediction``): the
image route (:class:`engine.api.Predictor`) or the estimator routes
(:class:`engine.estimator_route.EstimatorPredictor`). The caller builds it for a rig (the route
decision lives in ``app.route``; training does not import app), so this module only reads the
framesets, checks them against the calibration and packs the people found into
:class:`training.results_io.Predictions`, the format ``selfpose3d eval --predictions`` scores
(SPEC.md §5; scoring in :mod:`training.evaluate`).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable, Iterator, Sequence

import numpy as np

from calib.camera import CameraRig
from training.datasets.panoptic import HD_CAMERAS, PanopticFrame, PanopticSequence
from training.datasets.shelf_campus import VoxelPoseDataset, VoxelPoseDatasetSpec
from training.errors import DatasetError
from training.results_io import LAYOUTS, Predictions

# rig -> an object with predict_images(list of (H,W,3) BGR uint8) -> engine.api.Prediction
PredictorFactory = Callable[[CameraRig], object]
# (done, total, text) after each frame, e.g. training.runner.Progress.update
ProgressFn = Callable[[int, int, str], None]


def check_image_size(image: np.ndarray, camera, where: str) -> None:
    """DatasetError unless ``image`` (H,W,3) has the calibration's size of ``camera``."""
    h, w = image.shape[:2]
    if (w, h) != (camera.width, camera.height):
        raise DatasetError(
            f"{where}: image is {w}x{h} px but the calibration of camera {camera.name} says "
            f"{camera.width}x{camera.height}; use the images the calibration was made for "
            "(or rescale the calibration to the image size)"
        )


def _pack(
    people: Sequence[tuple[np.ndarray, np.ndarray]],
    frame_ids: Sequence[int],
    sequences: Sequence[str] | None,
    layout: str,
) -> Predictions:
    """Predictions from per-frame (poses (P,J,3) mm, scores (P,)) lists; slots padded to the max P."""
    M = max([len(p) for p, _ in people] + [1])
    J = people[0][0].shape[1] if people and people[0][0].ndim == 3 else 15
    poses = np.zeros((len(people), M, J, 3))
    valid = np.zeros((len(people), M), bool)
    scores = np.zeros((len(people), M))
    for i, (p, s) in enumerate(people):
        poses[i, : len(p)] = p[..., :3]
        valid[i, : len(p)] = True
        scores[i, : len(p)] = s
    seqs = np.asarray(sequences, dtype=str) if sequences is not None else None
    return Predictions(poses, np.asarray(frame_ids, np.int64), valid, scores, None, layout, seqs)


def _run(
    framesets: Iterator[tuple[object, str, int, list[np.ndarray]]],
    total: int,
    progress: ProgressFn | None,
) -> tuple[list[tuple[np.ndarray, np.ndarray]], str, float]:
    """Run each (predictor, sequence, frame, BGR images) frameset; (people per frame, layout, s/frame)."""
    people: list[tuple[np.ndarray, np.ndarray]] = []
    layout = "panoptic15"
    seconds = 0.0
    for i, (predictor, seq, frame, images) in enumerate(framesets):
        t0 = time.perf_counter()
        pred = predictor.predict_images(images)
        seconds += time.perf_counter() - t0
        layout = pred.skeleton.name
        people.append((np.asarray(pred.poses_mm, np.float64), np.asarray(pred.scores, np.float64)))
        if progress is not None:
            progress(i + 1, total, f"{seq} frame {frame}: {pred.num_people} people")
    if layout not in LAYOUTS:
        raise DatasetError(f"the model predicts skeleton '{layout}', which cannot be scored (layouts {LAYOUTS})")
    return people, layout, seconds / max(1, total)


def predict_panoptic(
    make_predictor: PredictorFactory,
    root: str | Path,
    frames: Sequence[PanopticFrame],
    camera_names: Sequence[str] = HD_CAMERAS,
    progress: ProgressFn | None = None,
) -> tuple[Predictions, float]:
    """Run a model on the images of Panoptic GT ``frames`` (``hdImgs`` JPEGs or ``hdVideos``).

    Args:
        make_predictor: builds the predictor for one sequence's rig (called once per sequence).
        root: the folder of sequence folders.
        frames: the frames to run (e.g. :func:`training.datasets.panoptic.index_frames`).
        camera_names: Panoptic HD cameras in view order (default: VoxelPose's five).
        progress: called after each frame.
    Returns:
        (predictions with a ``sequences`` array, seconds of model time per frame).
    Raises:
        DatasetError / CalibrationError: a missing sequence, calibration, camera or image, or an
        image whose size differs from the calibration's.
    """
    import cv2

    by_seq: dict[str, list[PanopticFrame]] = {}
    for f in frames:
        by_seq.setdefault(f.sequence, []).append(f)
    rigs = {}  # checked before the model runs: calibration, cameras, an image or video per view
    for name, seq_frames in by_seq.items():
        seq = PanopticSequence(Path(root) / name, camera_names)
        rigs[name] = seq.load_rig()
        for cam in rigs[name]:
            if seq.video_path(cam.name).is_file():
                continue
            for f in seq_frames:
                if not seq.image_path(cam.name, f.frame).is_file():
                    raise DatasetError(
                        f"{seq.image_path(cam.name, f.frame)}: image of camera {cam.name}, frame {f.frame} is missing "
                        f"(and no hdVideos/{seq.video_path(cam.name).name}); extract the frames or add the video"
                    )

    def framesets():
        for name, seq_frames in by_seq.items():
            seq = PanopticSequence(Path(root) / name, camera_names)
            rig = rigs[name]
            predictor = make_predictor(rig)
            try:
                for f in sorted(seq_frames, key=lambda f: f.frame):
                    images = []
                    for cam in rig:
                        rgb = seq.read_image(cam.name, f.frame)
                        check_image_size(rgb, cam, f"{seq.image_path(cam.name, f.frame)} (sequence {name})")
                        images.append(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
                    yield predictor, name, f.frame, images
            finally:
                seq.close()

    order = [f for fs in by_seq.values() for f in sorted(fs, key=lambda f: f.frame)]
    people, layout, per_frame = _run(framesets(), len(order), progress)
    return _pack(people, [f.frame for f in order], [f.sequence for f in order], layout), per_frame


def predict_voxelpose_dataset(
    make_predictor: PredictorFactory,
    root: str | Path,
    spec: VoxelPoseDatasetSpec,
    frame_ids: Sequence[int],
    progress: ProgressFn | None = None,
) -> tuple[Predictions, float]:
    """Run a model on the images of a Campus (or Shelf) folder, frames ``frame_ids``.

    Images: ``<root>/Camera{k}/...`` as ``spec.image_pattern``; calibration
    ``<root>/calibration_<name>.json`` (VoxelPose JSON). Returns (predictions, seconds per frame).
    """
    from capture.image_framesets import decode_image

    data = VoxelPoseDataset(root, spec)
    rig = data.load_rig()
    for f in frame_ids:  # checked before the model runs
        for k, cam in enumerate(rig):
            path = data.image_path(k, int(f))
            if not path.is_file():
                raise DatasetError(
                    f"{path}: image of camera {cam.name}, frame {f} is missing; add the {spec.name} "
                    f"images (pattern {spec.image_pattern}) or pass --frames with the frames you have"
                )
    predictor = make_predictor(rig)

    def framesets():
        for f in frame_ids:
            images = []
            for k, cam in enumerate(rig):
                path = data.image_path(k, int(f))
                image, problem = decode_image(path)
                if problem:
                    raise DatasetError(f"{path}: {problem}")
                check_image_size(image, cam, str(path))
                images.append(image)
            yield predictor, spec.name, int(f), images

    people, layout, per_frame = _run(framesets(), len(frame_ids), progress)
    return _pack(people, frame_ids, None, layout), per_frame
