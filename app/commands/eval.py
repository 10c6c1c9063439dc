"""``selfpose3d eval``: score 3D pose predictions on Shelf, Campus or CMU Panoptic.

Examples::

    selfpose3d eval shelf --predictions preds.npz --gt data/Shelf --metrics shelf.json
    selfpose3d eval campus --predictions preds.npz --gt data/CampusSeq1
    selfpose3d eval panoptic --predictions preds.npz --gt data/panoptic-toolbox/data --metrics m.json

A prediction file is an NPZ with ``poses (F,M,15,3+)`` mm, ``frame_ids (F,)``, ``valid (F,M)``
(see docs/evaluation.md). ``selfpose3d eval synthetic [--checkpoint M]`` scores a model (default:
the committed light model) on the held-out synthetic scenes. ``selfpose3d eval shelf --checkpoint
M --frames 450-600 --save-predictions preds.npz`` runs a model on Shelf's 2D detections
(``detections.npz`` beside the GT, see docs/shelf.md) through the engine and scores it;
``selfpose3d eval shelf --engine triangulate [--frames ...] [--save-predictions ...]`` runs the
triangulation engine (``engine/triangulate.py``) on the same detections instead.

``selfpose3d eval panoptic --checkpoint M --gt TREE [--sequences S ...] [--save-predictions P.npz]``
and ``selfpose3d eval campus --checkpoint M --gt DIR [--frames 350-470]`` run a model on the
dataset's images (Panoptic ``hdImgs``/``hdVideos``, Campus ``Camera{k}`` PNGs) on the route
``selfpose3d predict`` takes for it (``app.route``: an image model runs its backbone; a
detection-input model gets the bundled 2D estimator's people), then score the predictions with the
same code as ``--predictions`` (SPEC.md §5); ``--save-predictions`` writes them in the format
``--predictions`` reads, so the run can be re-scored independently.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from calib.common.paths import SHARED_DATA_DIR

DEFAULT_GT = {"shelf": "data/Shelf", "campus": "data/CampusSeq1", "panoptic": "data/panoptic-toolbox/data"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dataset", choices=("shelf", "campus", "panoptic", "synthetic"), help="what to evaluate on")
    parser.add_argument("--predictions", help="prediction NPZ (poses (F,M,15,3+) mm, frame_ids, valid)")
    parser.add_argument(
        "--checkpoint",
        help="synthetic: model to score (default: the committed light model); "
        "shelf: model run on the 2D detections (default --gt: ../shared/data/shelf); "
        "panoptic/campus: model run on the --gt tree's images (detection-input models through the "
        "bundled 2D estimator)",
    )
    parser.add_argument(
        "--engine",
        choices=("learned", "triangulate"),
        default="learned",
        help="shelf: 'triangulate' runs the triangulation engine on the PAF-grouped 2D detections "
        "(no --checkpoint); 'learned' (default) the --checkpoint model",
    )
    parser.add_argument(
        "--detections",
        help="shelf --checkpoint / --engine triangulate: OpenPose detections NPZ "
        "(default: detections.npz in the --gt folder)",
    )
    parser.add_argument(
        "--frames", help="shelf/campus: score only these frames, e.g. 450-600 (default: all evaluation frames)"
    )
    parser.add_argument(
        "--save-predictions",
        help="--checkpoint / --engine triangulate: write the predictions NPZ here (the --predictions format)",
    )
    parser.add_argument("--device", default="cpu", help="--checkpoint: cpu | cuda (default cpu)")
    parser.add_argument("--max-frames", type=int, default=None, help="synthetic: score only the first N frames")
    parser.add_argument(
        "--refine-mm",
        type=float,
        default=None,
        help="--checkpoint: local joint refinement radius in mm (0 = off; default: as the "
        "checkpoint's config says, see docs/architecture.md)",
    )
    parser.add_argument(
        "--gt",
        help="ground-truth folder (Shelf/Campus: actorsGT.mat or gt.npz; Panoptic: "
        "the folder of sequences or a VoxelPose GT pickle such as group_validation_cam5_sub.pkl). Default: "
        + ", ".join(f"{k}: {v}" for k, v in DEFAULT_GT.items()),
    )
    parser.add_argument("--split", default="validation", choices=("validation", "train"), help="Panoptic split")
    parser.add_argument("--sequences", nargs="+", help="Panoptic: evaluate these sequences instead of the split's")
    parser.add_argument("--interval", type=int, help="Panoptic: frame interval (default 12 validation, 3 train)")
    parser.add_argument(
        "--count-missing-frames",
        action="store_true",
        help="Shelf/Campus: count GT actors of frames without any prediction as wrong (upstream skips such frames)",
    )
    parser.add_argument("--metrics", help="write the metrics JSON here")


def _usage_error(message: str) -> int:
    print(f"selfpose3d eval: {message}", file=sys.stderr)
    return 2


def run(args: argparse.Namespace) -> int:
    if args.engine == "triangulate":
        if args.dataset != "shelf":
            return _usage_error(
                f"--engine triangulate runs on shelf only (got {args.dataset}); score other "
                "datasets' prediction files with --predictions"
            )
        if args.checkpoint or args.predictions:
            return _usage_error(
                "--engine triangulate uses no model and no prediction file; drop --checkpoint/--predictions"
            )
        return _shelf_triangulate(args)
    if args.dataset == "synthetic":
        from training.results_io import save_metrics
        from training.ssl.synthetic_eval import evaluate_default

        metrics = evaluate_default(
            checkpoint=args.checkpoint, max_frames=args.max_frames, refine_radius_mm=args.refine_mm
        )
        if args.metrics:
            print(f"metrics written to {save_metrics(args.metrics, metrics)}")
        return 0
    if args.checkpoint and args.predictions:
        return _usage_error("--checkpoint runs a model, --predictions scores a file: pass one of them")
    if args.checkpoint and args.dataset == "shelf":
        return _shelf_checkpoint(args)
    if not args.predictions and not args.checkpoint:
        return _usage_error("--predictions FILE or --checkpoint MODEL is required (or, on shelf, --engine triangulate)")
    from training.results_io import load_predictions, save_metrics

    preds, run_info = (load_predictions(args.predictions), {}) if args.predictions else (None, {})
    gt_path = args.gt or DEFAULT_GT[args.dataset]
    if args.dataset == "panoptic":
        frames = _panoptic_frames(gt_path, args)
        if args.checkpoint:
            preds, run_info = _run_panoptic(frames, gt_path, args)
        metrics = _panoptic(preds, frames, args)
    else:
        gt = _shelf_campus_gt(gt_path, args)
        if args.checkpoint:
            preds, run_info = _run_campus(gt, gt_path, args)
        metrics = _shelf_campus(preds, gt, args)
    metrics.update(run_info)
    if args.save_predictions and args.checkpoint:
        print(f"predictions written to {args.save_predictions}")
    if args.metrics:
        print(f"metrics written to {save_metrics(args.metrics, metrics)}")
    return 0


def _model_predictor_factory(args: argparse.Namespace, volume_center_mm=None, volume_size_mm=None):
    """(rig -> predictor, route) of ``--checkpoint`` as ``selfpose3d predict`` builds it: an image model
    runs its own backbone; a detection-input model gets the bundled 2D estimator's people."""
    from app.route import build_predictor, choose_route
    from engine.estimators import EstimatorConfig

    route = choose_route("auto", args.checkpoint)
    print(f"model {route.model}: route {route.kind} ({route.reason})", file=sys.stderr)
    if args.refine_mm is not None and route.kind != "image":
        from calib.configkit import ConfigError

        raise ConfigError(
            f"--refine-mm applies to image models; {route.model} takes 2D detections ({route.kind} route): drop it"
        )

    def make(rig):
        return build_predictor(
            route,
            rig,
            estimator=EstimatorConfig(),
            backend="eager",
            device=args.device,
            precision="fp32",
            volume_center_mm=volume_center_mm,
            volume_size_mm=volume_size_mm,
            refine_radius_mm=args.refine_mm,
        )

    return make, route


def _finish_run(preds, per_frame_s: float, route, args: argparse.Namespace) -> dict:
    """Save the predictions (``--save-predictions``) and the run's facts for the metrics JSON."""
    from training.results_io import save_predictions

    if args.save_predictions:
        save_predictions(args.save_predictions, preds)
    print(f"{route.kind} route: {1000 * per_frame_s:.0f} ms/frame ({args.device})")
    if not preds.valid.any():
        print(
            f"warning: {route.model} found nobody in any of the {len(preds.frame_ids)} frames ({route.kind} route); "
            "the scores below are those of an empty prediction (check the images, the volume and the model)",
            file=sys.stderr,
        )
    return {"checkpoint": route.model, "route": route.kind, "seconds_per_frame": per_frame_s}


def _run_panoptic(frames, gt_path: str, args: argparse.Namespace):
    """Run ``--checkpoint`` on the images of the Panoptic GT ``frames``: (predictions, run facts)."""
    from training.errors import DatasetError
    from training.predict_dataset import predict_panoptic
    from training.runner import Progress

    if gt_path.endswith(".pkl"):
        raise DatasetError(
            f"--gt {gt_path}: a GT pickle holds no images; --checkpoint needs the Panoptic tree "
            "(the folder of sequences with calibration, hdImgs or hdVideos)"
        )
    make, route = _model_predictor_factory(args)
    progress = Progress(len(frames), "eval panoptic", stream=sys.stderr, every=max(1, len(frames) // 100))
    preds, per_frame = predict_panoptic(make, gt_path, frames, progress=lambda d, t, text: progress.update(d, text))
    return preds, _finish_run(preds, per_frame, route, args)


def _run_campus(gt, gt_path: str, args: argparse.Namespace):
    """Run ``--checkpoint`` on the Campus images of the GT frames: (predictions, run facts)."""
    from training.datasets.shelf_campus import get_spec
    from training.predict_dataset import predict_voxelpose_dataset
    from training.runner import Progress

    spec = get_spec(args.dataset)
    make, route = _model_predictor_factory(args, spec.space_center_mm, spec.space_size_mm)
    frames = [int(f) for f in gt.frame_ids]
    progress = Progress(len(frames), f"eval {spec.name}", stream=sys.stderr, every=max(1, len(frames) // 100))
    root = gt_path if not gt_path.endswith((".mat", ".npz")) else str(Path(gt_path).parent)
    preds, per_frame = predict_voxelpose_dataset(
        make, root, spec, frames, progress=lambda d, t, text: progress.update(d, text)
    )
    return preds, _finish_run(preds, per_frame, route, args)


def _shelf_checkpoint(args: argparse.Namespace) -> int:
    from training.results_io import save_metrics
    from training.shelf.data import ShelfDetections, parse_frames
    from training.shelf.evaluate import evaluate_shelf_checkpoint

    root = _shelf_root(args)
    frames = parse_frames(args.frames, ShelfDetections(root, args.detections).frame_ids)
    metrics = evaluate_shelf_checkpoint(
        args.checkpoint,
        root,
        frames,
        save_to=args.save_predictions,
        device=args.device,
        detections=args.detections,
        refine_radius_mm=args.refine_mm,
    )
    print(f"shelf PCP (panoptic15 head rule) of {args.checkpoint}, frames {metrics['frames']}:")
    print(metrics.pop("table"))
    print(
        f"average PCP (actors 1-3): {metrics['pcp_average']:.2f}   recall@500: {metrics['recall500']:.4f}   "
        f"{1000 * metrics['seconds_per_frame']:.0f} ms/frame"
    )
    if args.save_predictions:
        print(f"predictions written to {args.save_predictions}")
    if args.metrics:
        print(f"metrics written to {save_metrics(args.metrics, metrics)}")
    return 0


def _shelf_root(args: argparse.Namespace) -> str:
    return args.gt or str(SHARED_DATA_DIR / "shelf")


def _shelf_triangulate(args: argparse.Namespace) -> int:
    from training.results_io import save_metrics
    from training.shelf.data import ShelfDetections, parse_frames
    from training.shelf.triangulate import evaluate_shelf_triangulate

    root = _shelf_root(args)
    frames = parse_frames(args.frames, ShelfDetections(root, args.detections).frame_ids)
    metrics = evaluate_shelf_triangulate(root, frames, save_to=args.save_predictions, detections=args.detections)
    coco = metrics["coco17"]
    print(f"shelf PCP (panoptic15 head rule) of the triangulation engine, frames {metrics['frames']}:")
    print(metrics.pop("table"))
    print(
        f"average PCP (actors 1-3): {metrics['pcp_average']:.2f}   coco17 head rule: {coco['pcp_average']:.2f}   "
        f"recall@500: {metrics['recall500']:.4f}"
    )
    body = "  ".join(f"{k} {v:.1f}" for k, v in metrics["body_mpjpe_mm"].items() if v is not None)
    print(f"body MPJPE (12 joints, mm): {body}")
    print(
        f"predictions: {metrics['predictions']}, of which {metrics['unmatched_predictions']} match no annotated "
        f"actor within 500 mm (ghosts or unannotated people)"
    )
    ms = metrics["ms_per_frame"]
    print(
        f"{ms['triangulation']:.1f} ms/frame triangulation ({ms['triangulation_cpu']:.1f} ms CPU time) + "
        f"{ms['grouping']:.1f} ms/frame PAF grouping"
    )
    coco.pop("table")
    if args.save_predictions:
        print(f"predictions written to {args.save_predictions}")
    if args.metrics:
        print(f"metrics written to {save_metrics(args.metrics, metrics)}")
    return 0


def _shelf_campus_gt(gt_path: str, args: argparse.Namespace):
    """The Shelf/Campus GT of the evaluation frames (``--frames`` selects some)."""
    from training.datasets.shelf_campus import get_spec, load_ground_truth

    gt = load_ground_truth(gt_path, get_spec(args.dataset))
    if args.frames:
        from training.shelf.data import parse_frames

        gt = gt.select(parse_frames(args.frames, gt.frame_ids))
    return gt


def _shelf_campus(preds, gt, args: argparse.Namespace) -> dict:
    from training.datasets.shelf_campus import get_spec
    from training.evaluate import evaluate_shelf_campus, pcp_metrics

    spec = get_spec(args.dataset)
    result = evaluate_shelf_campus(preds, gt, skip_frames_without_predictions=not args.count_missing_frames)
    print(f"{spec.name} PCP ({preds.layout} head rule), frames {int(gt.frame_ids[0])}..{int(gt.frame_ids[-1])}:")
    print(result.table())
    if result.skipped_frames:
        print(f"{len(result.skipped_frames)} frames had no valid prediction and were skipped")
    metrics = pcp_metrics(result)
    print(f"average PCP (actors 1-3): {metrics['pcp_average']:.2f}   recall@500: {metrics['recall500']:.4f}")
    metrics["dataset"] = spec.name
    return metrics


def _panoptic_frames(gt_path: str, args: argparse.Namespace) -> list:
    """The Panoptic GT frames: a tree's split/--sequences sampled every --interval, or a GT pickle's."""
    from training.datasets.panoptic import index_frames

    if gt_path.endswith(".pkl"):
        from training.datasets.panoptic import read_gt_pickle

        frames = read_gt_pickle(gt_path)
        if args.sequences:
            frames = [f for f in frames if f.sequence in set(args.sequences)]
    else:
        frames = index_frames(gt_path, args.split, args.sequences, args.interval)
    if not frames:
        from training.errors import DatasetError

        raise DatasetError(
            f"--gt {gt_path}: no GT frame with a person in sequences {args.sequences or args.split}; "
            "check the hdPose3d_stage1_coco19 body files (or the --sequences / --interval)"
        )
    return frames


def _panoptic(preds, frames: list, args: argparse.Namespace) -> dict:
    from training.evaluate import evaluate_panoptic
    from training.metrics import AP_THRESHOLDS_MM

    metrics = evaluate_panoptic(preds, frames)
    print(
        f"panoptic {' '.join(args.sequences) if args.sequences else args.split}: {len(frames)} frames, {int(metrics['num_gt'])} GT persons, "
        f"{int(metrics['num_predictions'])} predictions"
    )
    for prefix, label in (("", "pose"), ("root_", "root")):
        if f"{prefix}ap25" not in metrics:
            continue
        print(f"  {label:5s} " + "  ".join(f"AP{t}={metrics[f'{prefix}ap{t}']:.4f}" for t in AP_THRESHOLDS_MM))
        print(
            f"  {label:5s} MPJPE={metrics[f'{prefix}mpjpe_mm']:.2f} mm  recall@500={metrics[f'{prefix}recall500']:.4f}  "
            f"mean AP={metrics[f'{prefix}mean_ap']:.4f}"
        )
    metrics["dataset"] = "panoptic"
    return metrics
