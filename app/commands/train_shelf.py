"""``selfpose3d train-shelf``: train on Shelf from its 2D detections, without its 3D ground truth.

Examples::

    selfpose3d train-shelf --config shelf_rootnet --out runs/shelf/rootnet     # synthetic roots
    selfpose3d train-shelf --config shelf_ssl_a --out runs/shelf/ssl_a         # SSL on frames 300-449
    selfpose3d train-shelf --config shelf_ssl_b --out runs/shelf/ssl_b         # SSL on all 301 frames
    selfpose3d train-shelf --config shelf_synthetic --out runs/shelf/synthetic # synthetic poses only

A run folder holds ``config.resolved.yaml``, ``log.jsonl``, ``model.pt`` and ``summary.json``;
score it with ``selfpose3d eval shelf --checkpoint runs/shelf/ssl_a/model.pt --frames 450-600``.
See docs/shelf.md.
"""

from __future__ import annotations

import argparse
from app.commands import add_set_option


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config", required=True, help="Shelf training YAML (name in configs/train, e.g. shelf_ssl_a, or a path)"
    )
    parser.add_argument("--out", help="run folder (default runs/shelf/<config name>)")
    add_set_option(parser, "a config value", "--set pose.steps=100 --set data=../shared/data/shelf")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from training.shelf.config import load_config
    from training.shelf.trainer import train

    cfg = load_config(args.config, tuple(args.overrides))
    out = Path(args.out or f"runs/shelf/{Path(args.config).stem.removeprefix('shelf_')}")
    train(cfg, out)
    return 0


def main(argv: list[str] | None = None) -> int:
    """``python -m app.commands.train_shelf ...`` (the same as ``selfpose3d train-shelf``)."""
    import logging

    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname).1s %(name)s: %(message)s", datefmt="%H:%M:%S"
    )
    parser = argparse.ArgumentParser(prog="selfpose3d train-shelf", description=__doc__.splitlines()[0])
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
