"""``selfpose3d pseudo-labels``: import 2D keypoints from another detector as pseudo labels.

Examples::

    selfpose3d pseudo-labels --from coco person_keypoints.json --variant hard --out labels_hard.npz
    selfpose3d pseudo-labels --from coco results.json --images image_list.json --out labels_soft.npz
    selfpose3d pseudo-labels --from openpose openpose_json/Shelf --image-size 1032 776 --out shelf.npz
    selfpose3d pseudo-labels --from selfpose3d-pkl group_train_cam5_pseudo_hrnet_soft_9videos.pkl --out soft.npz

Everything is mapped to Panoptic-15 (neck / mid-hip from the shoulders / hips when the source has
none) and written in the project's pseudo-label NPZ format (docs/training.md).
Generating labels with the engine's own backbone comes with the trainer (issue 6) and is not
built yet.
"""

from __future__ import annotations

import argparse

SOURCES = ("coco", "openpose", "selfpose3d-pkl")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Import 2D keypoints (COCO JSON, OpenPose JSON, SelfPose3d pickle) as Panoptic-15 pseudo labels. "
        "Estimating them with the engine's backbone is NOT built yet: it comes with the trainer (issue 6)."
    )
    parser.add_argument("input", help="keypoint file or folder")
    parser.add_argument("--from", dest="source", required=True, choices=SOURCES,
                        help="input format (the backbone-estimator path comes with the trainer)")
    parser.add_argument("--out", required=True, help="output .npz (project pseudo-label format)")
    parser.add_argument("--variant", choices=("soft", "hard"), default=None,
                        help="soft: raw confidences; hard: SPEC §4.7 thresholding (default: soft; for "
                             "selfpose3d-pkl: from the file name)")
    parser.add_argument("--images", help="coco: image list JSON (id, file_name, width, height) for a results list")
    parser.add_argument("--image-size", type=int, nargs=2, metavar=("W", "H"),
                        help="openpose: image size (for the hard variant's in-image test)")
    parser.add_argument("--min-person-score", type=float, default=0.0, help="coco: drop detections scoring below this")
    parser.add_argument("--sequence", help="force the sequence name (default: parsed from the paths)")


def run(args: argparse.Namespace) -> int:
    from training.pseudo_labels.importers import import_coco, import_openpose, import_selfpose3d_pickle

    if args.source == "coco":
        labels = import_coco(args.input, args.variant or "soft", args.images, args.min_person_score, args.sequence)
    elif args.source == "openpose":
        size = tuple(args.image_size) if args.image_size else None
        labels = import_openpose(args.input, args.variant or "soft", size, args.sequence)
    else:
        labels = import_selfpose3d_pickle(args.input, args.variant)
    path = labels.save(args.out)
    visible = sum(int(e.labels.visible.sum()) for e in labels)
    print(f"{path}: {len(labels)} images, {len(labels.frames())} frames, cameras {labels.cameras()}, "
          f"{labels.num_persons()} persons, {visible} visible joints ({labels.variant})")
    return 0
