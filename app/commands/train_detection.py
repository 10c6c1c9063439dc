"""``selfpose3d train-detection``: train the rig-agnostic learned detection route (root + pose nets)
on synthetic motion projected through random rigs, with a simulated 2D estimator's errors.

Examples::

    selfpose3d train-detection --config detection_generic --out runs/detection_generic
    selfpose3d train-detection --config detection_generic --out runs/dg --set optim.steps=200
    selfpose3d release-model runs/detection_generic/model.pt --out models/detection_generic.pt  # or
    python -m training.detection_route.release runs/detection_generic/model.pt

Re-running with the same ``--out`` resumes from ``out/checkpoint.pt`` (``--restart`` starts over).
See docs/detection_route.md.
"""

from __future__ import annotations

import argparse
from app.commands import add_set_option


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        default="detection_generic",
        help="training YAML (name in configs/train, e.g. detection_generic, or a path)",
    )
    parser.add_argument("--out", help="run folder (default runs/<config name>)")
    add_set_option(parser, "a config value", "--set optim.steps=100 --set rigs.cameras=[3,5]")
    parser.add_argument("--restart", action="store_true", help="ignore an existing out/checkpoint.pt and start over")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from training.detection_route.config import load_config
    from training.detection_route.trainer import train

    cfg = load_config(args.config, tuple(args.overrides))
    out = Path(args.out or f"runs/{Path(args.config).stem}")
    train(cfg, out, resume=not args.restart)
    return 0
