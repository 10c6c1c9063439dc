"""``selfpose3d pseudo-labels``: 2D pseudo labels from footage with the bundled estimator, or imported.

Examples::

    selfpose3d pseudo-labels --detector movenet configs/rigs/pose2sim_multiperson.yaml --out runs/p2s/labels
    selfpose3d pseudo-labels --detector movenet SESSION_DIR | VIDEOS_DIR | PANOPTIC_TREE | IMAGE_DIR --out OUT

    selfpose3d pseudo-labels --from coco person_keypoints.json --variant hard --out labels_hard.npz
    selfpose3d pseudo-labels --from coco results.json --images image_list.json --out labels_soft.npz
    selfpose3d pseudo-labels --from openpose openpose_json/Shelf --image-size 1032 776 --out shelf.npz
    selfpose3d pseudo-labels --from selfpose3d-pkl group_train_cam5_pseudo_hrnet_soft_9videos.pkl --out soft.npz

With ``--detector``, the input is footage (:mod:`training.pseudo_labels.footage`: a rig YAML, a
recorded session, a folder of videos, a Panoptic tree or an image folder) and the run writes
``OUT_soft.npz``, ``OUT_hard.npz``, ``OUT_detections.jsonl`` (raw, and the resume cache) and
``OUT_summary.json`` (:mod:`training.pseudo_labels.detect`). Everything is mapped to Panoptic-15
(neck / mid-hip from the shoulders / hips when the source has none) and written in the project's
pseudo-label NPZ format (docs/training.md).
"""

from __future__ import annotations

import argparse

SOURCES = ("coco", "openpose", "selfpose3d-pkl")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from app.commands.detect2d import add_estimator_arguments

    parser.description = (
        "Panoptic-15 pseudo labels: estimate them on footage with the bundled 2D estimator (--detector), or "
        "import 2D keypoints (COCO JSON, OpenPose JSON, SelfPose3d pickle) with --from."
    )
    parser.add_argument(
        "input",
        help="--detector: footage (rig YAML, session, videos folder, image folder); --from: keypoint file or folder",
    )
    how = parser.add_mutually_exclusive_group(required=True)
    how.add_argument("--detector", choices=("movenet",), help="estimate with this bundled 2D estimator")
    how.add_argument("--from", dest="source", choices=SOURCES, help="import this keypoint format")
    parser.add_argument(
        "--out", required=True, help="--from: output .npz; --detector: output prefix (OUT_soft.npz, ...)"
    )
    parser.add_argument("--every", type=int, default=1, help="--detector: every N-th frame of each camera")
    parser.add_argument("--max-frames", type=int, default=None, help="--detector: at most N frames per camera")
    add_estimator_arguments(parser, 384, person_score=False)
    parser.add_argument(
        "--variant",
        choices=("soft", "hard"),
        default=None,
        help="soft: raw confidences; hard: SPEC §4.7 thresholding (default: soft; for "
        "selfpose3d-pkl: from the file name)",
    )
    parser.add_argument("--images", help="coco: image list JSON (id, file_name, width, height) for a results list")
    parser.add_argument(
        "--image-size",
        type=int,
        nargs=2,
        metavar=("W", "H"),
        help="openpose: image size (for the hard variant's in-image test)",
    )
    parser.add_argument(
        "--min-person-score",
        type=float,
        default=None,
        help="drop people scoring below this (coco import: default 0; --detector: 0.2)",
    )
    parser.add_argument("--sequence", help="force the sequence name (default: parsed from the paths)")


def _run_detector(args: argparse.Namespace) -> int:
    from app.commands.detect2d import estimator_from_args
    from training.pseudo_labels.detect import generate
    from training.pseudo_labels.footage import open_footage
    from training.runner import Progress

    footage = open_footage(args.input, args.sequence)
    estimator = estimator_from_args(args)

    def detect(image):
        people = estimator.detect([image])[0]
        return people.keypoints, people.scores

    bar: list = []

    def progress(done: int, total: int, text: str) -> None:
        if not bar:
            bar.append(Progress(total, "pseudo-labels", every=max(1, total // 200)))
        bar[0].update(done, text)

    summary = generate(
        footage,
        detect,
        args.out,
        every=args.every,
        max_frames=args.max_frames,
        source_name=f"{args.detector}@{args.input_size}",
        progress=progress,
    )
    for cam, c in summary["cameras"].items():
        print(
            f"  {cam}: {c['frames']} frames, {c['undecodable']} undecodable, {c['people']} people "
            f"({c['people_per_frame']}/frame), mean person score {c['mean_person_score']}"
        )
        for bad in c["undecodable_frames"][:5]:
            print(f"    undecodable: {bad}")
    files = summary["files"]
    print(
        f"{files['soft']}, {files['hard']}: {summary['images']} images ({summary['undecodable']} undecodable); "
        f"raw detections {files['detections']}, summary {files['summary']}"
    )
    return 1 if summary["images"] and summary["undecodable"] == summary["images"] else 0


def run(args: argparse.Namespace) -> int:
    if args.detector:
        return _run_detector(args)
    from training.pseudo_labels.importers import import_coco, import_openpose, import_selfpose3d_pickle

    if args.source == "coco":
        labels = import_coco(
            args.input, args.variant or "soft", args.images, args.min_person_score or 0.0, args.sequence
        )
    elif args.source == "openpose":
        size = tuple(args.image_size) if args.image_size else None
        labels = import_openpose(args.input, args.variant or "soft", size, args.sequence)
    else:
        labels = import_selfpose3d_pickle(args.input, args.variant)
    path = labels.save(args.out)
    visible = sum(int(e.labels.visible.sum()) for e in labels)
    print(
        f"{path}: {len(labels)} images, {len(labels.frames())} frames, cameras {labels.cameras()}, "
        f"{labels.num_persons()} persons, {visible} visible joints ({labels.variant})"
    )
    return 0
