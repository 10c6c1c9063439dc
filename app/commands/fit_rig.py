"""``selfpose3d fit-rig``: adapt the learned 3D model to your own calibrated rig and footage, no labels.

Examples::

    selfpose3d fit-rig --rig my.yaml --footage videos/ --out runs/my             # --budget cpu
    selfpose3d fit-rig --rig my.yaml --out runs/my --budget gpu                   # footage = the rig's sources
    selfpose3d fit-rig --rig my.yaml --footage SESSION --out runs/my --set rig.steps=50 --people 2
    selfpose3d-live --rig my.yaml --model runs/my/model.pt
    selfpose3d fit-rig --variant image --rig my.yaml --footage videos/ --out runs/my_image --set image.steps=300

Stages labels -> rig -> ssl -> validate -> release (training/fit_rig/run.py, docs/fit_rig.md); a
re-run with the same ``--out`` skips finished stages and resumes training from its last checkpoint.
"""

from __future__ import annotations

import argparse
from app.commands import add_set_option


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from training.fit_rig.config import BUDGETS

    parser.add_argument("--rig", required=True, help="your rig YAML (calibrated cameras; docs/rig_yaml.md)")
    parser.add_argument(
        "--footage",
        default=None,
        help="videos folder (one per camera, named as in the rig), session, image tree; default: the rig's sources",
    )
    parser.add_argument(
        "--variant",
        choices=("detection", "image"),
        default="detection",
        help="detection: root/pose nets on the estimator's 2D (default, CPU-sized); image: the image-input "
        "model's four SSL stages on the footage's frames (GPU work; training/fit_rig/image_variant.py)",
    )
    parser.add_argument("--out", required=True, help="run folder (re-run the same command to resume)")
    parser.add_argument(
        "--budget", default="cpu", help=f"training preset: {' | '.join(BUDGETS)} (configs/fit_rig/) or a YAML path"
    )
    parser.add_argument(
        "--people", type=int, default=None, help="people in the volume in every frame, if known (validation recall)"
    )
    add_set_option(parser, "a preset value", "--set rig.steps=50 --set labels.every=2")


def run(args: argparse.Namespace) -> int:
    from training.fit_rig.config import load_config
    from training.fit_rig.run import fit_rig

    overrides = tuple(args.overrides) + ((f"expected_people={args.people}",) if args.people is not None else ())
    cfg = load_config(args.budget, overrides)
    if args.variant == "image":
        from training.fit_rig.image_variant import fit_rig_image

        fit_rig_image(args.rig, args.footage, args.out, cfg)
        return 0
    fit_rig(args.rig, args.footage, args.out, cfg)
    return 0
