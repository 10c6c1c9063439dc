"""``selfpose3d detect2d``: the bundled 2D estimator on every image of a folder → COCO-style results JSON.

Example::

    selfpose3d detect2d --images photos/ --out results.json [--input-size 384] [--flip]

Writes a JSON list of ``{"file_name": <path relative to DIR>, "keypoints": [x, y, score] * 17 (COCO
order), "score": s}`` (the COCO results layout keyed by file name), one entry per person. An image
that cannot be decoded is named, skipped and counted; the run goes on (exit 1 if none decoded).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

DEFAULT_INPUT_PX = 384  # PCK@0.2 0.92 on ../shared/data/real_2d_samples (docs/estimator.md)


def add_estimator_arguments(parser: argparse.ArgumentParser, default_input_px: int, person_score: bool = True) -> None:
    """The estimator options shared by every command that runs it (``person_score=False``: the
    command defines its own ``--min-person-score``)."""
    parser.add_argument("--estimator", default="movenet", help="2D estimator name (default: movenet, bundled)")
    parser.add_argument("--estimator-model", default="", help="model file (default: the bundled one under models/)")
    parser.add_argument(
        "--input-size",
        type=int,
        default=default_input_px,
        help=f"the estimator's input long side in px, a multiple of 32 (default {default_input_px})",
    )
    parser.add_argument("--flip", action="store_true", help="flip test-time augmentation (2x the cost)")
    parser.add_argument("--tiles", type=int, default=1, help="also run N x N overlapping tiles (crowds of > 6)")
    parser.add_argument("--threads", type=int, default=0, help="estimator threads (0: the runtime's default)")
    if person_score:
        parser.add_argument(
            "--min-person-score", type=float, default=None, help="drop people scoring below this (default 0.2)"
        )


def estimator_from_args(args: argparse.Namespace):
    from engine.estimators import EstimatorConfig, build_estimator

    return build_estimator(
        EstimatorConfig(
            name=args.estimator,
            model_path=args.estimator_model,
            input_long_side_px=args.input_size,
            threads=args.threads,
            min_person_score=0.2 if args.min_person_score is None else args.min_person_score,
            flip=args.flip,
            tiles=args.tiles,
        )
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = "Run the bundled 2D pose estimator (MoveNet MultiPose, COCO-17) on a folder of images."
    parser.add_argument("--images", required=True, help="folder of images (searched recursively)")
    parser.add_argument("--out", required=True, help="output results JSON")
    add_estimator_arguments(parser, DEFAULT_INPUT_PX)


def run(args: argparse.Namespace) -> int:
    from training.errors import DatasetError
    from capture.image_framesets import IMAGE_EXTS, decode_image
    from training.runner import Progress

    root = Path(args.images)
    if not root.is_dir():
        raise DatasetError(f"--images {root}: not a folder")
    files = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_EXTS)
    if not files:
        raise DatasetError(f"--images {root}: no images ({', '.join(IMAGE_EXTS)}) under it")
    estimator = estimator_from_args(args)
    results, bad = [], []
    progress = Progress(len(files), "detect2d", every=max(1, len(files) // 100))
    for i, path in enumerate(files, 1):
        image, problem = decode_image(path)
        if image is None:
            bad.append(path)
            print(f"detect2d: {path}: {problem}; skipped", file=sys.stderr)
        else:
            people = estimator.detect([image])[0]
            for kp, score in zip(people.keypoints, people.scores):
                results.append(
                    {
                        "file_name": path.relative_to(root).as_posix(),
                        "keypoints": [round(float(v), 2) for v in kp.reshape(-1)],
                        "score": round(float(score), 4),
                    }
                )
        progress.update(i, path.name)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results))
    print(
        f"{args.out}: {len(files) - len(bad)} images, {len(results)} people; {len(bad)} undecodable"
        + (f" ({', '.join(p.name for p in bad[:5])}{' ...' if len(bad) > 5 else ''})" if bad else "")
    )
    return 1 if len(bad) == len(files) else 0
