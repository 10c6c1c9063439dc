"""Command-line entry points: ``selfpose3d <subcommand>`` and ``selfpose3d-live``.

Each subcommand lives in ``app/commands/<name>.py`` (hyphens become underscores) and defines
``add_arguments(parser)`` and ``run(args) -> int``. Bad input (any
:class:`calib.common.errors.UserError`) prints one line naming the input and the fix and exits 2;
``--debug`` adds the traceback.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
import traceback
from typing import Callable, Sequence

from calib.common.errors import UserError

# name -> one-line help; each is app/commands/<name>.py (hyphens become underscores)
COMMANDS: dict[str, str] = {
    "demo": "run the main job on the embedded default (no camera, GPU or download)",
    "rig": "inspect/convert a rig or calibration file (cameras, volume, projections)",
    "predict": "3D poses from a folder of synchronised images + calibration (JSON/NPZ)",
    "synth": "generate a synthetic multi-person scene (images, truth, pseudo labels, Panoptic tree)",
    "capture": "run a capture process: publish time-synced framesets on ZeroMQ",
    "record": "record a rig's streams to a session folder",
    "replay": "replay a recorded session or Panoptic sequence through the live stream",
    "detect2d": "run the bundled 2D estimator on a folder of images (COCO-style results JSON)",
    "pseudo-labels": "soft/hard 2D pseudo labels: from footage with the bundled estimator, or imported",
    "train": "train a stage: backbone | rootnet | posenet | finetune",
    "train-detection": "train the rig-agnostic learned detection route on synthetic random rigs",
    "train-shelf": "train root/pose nets on Shelf from its 2D detections (no 3D ground truth)",
    "fit-rig": "adapt the learned 3D model to your rig and footage, no labels (pseudo labels -> train -> validate -> release)",
    "eval": "evaluate: panoptic | shelf | campus | synthetic",
    "release-model": "a trained model file -> a small release file (float16, held-out metrics in its meta)",
    "export": "convert a recorded JSONL take to TRC (OpenSim), BVH or CSV",
    "view": "Open3D live viewer of the poses stream",
    "overlay": "draw 3D skeletons reprojected into each camera image, side by side",
    "calibrate": "calibration tools: intrinsics | extrinsics | refine | check | board",
    "bench": "benchmarks: precision (joint deviation and speed of fp32 / bf16 per model)",
}
USER_ERROR_EXIT = 2  # bad input: one line naming it and the fix
INTERRUPTED_EXIT = 130


def _module_name(command: str) -> str:
    return "app.commands." + command.replace("-", "_")


def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    parser.add_argument("--debug", action="store_true", help="show the traceback of an input error")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="selfpose3d", description=__doc__.splitlines()[0])
    _add_common(parser)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, help_text in COMMANDS.items():
        importlib.import_module(_module_name(name)).add_arguments(sub.add_parser(name, help=help_text))
    return parser


def _setup_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname).1s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )


def _run(command: str, args: argparse.Namespace) -> int:
    return int(importlib.import_module(_module_name(command)).run(args) or 0)


def main(argv: Sequence[str] | None = None) -> int:
    """``selfpose3d`` entry point."""
    parser = build_parser()
    args = parser.parse_args(argv)
    _setup_logging(args.verbose)
    if not args.command:
        parser.print_help()
        return 2
    return _friendly(lambda: _run(args.command, args), args.debug)


def live_main(argv: Sequence[str] | None = None) -> int:
    """``selfpose3d-live`` entry point (the live application, app/commands/live.py)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    module = importlib.import_module(_module_name("live"))
    parser = argparse.ArgumentParser(prog="selfpose3d-live", description="live multi-camera 3D pose")
    _add_common(parser)
    module.add_arguments(parser)
    args = parser.parse_args(argv)
    _setup_logging(args.verbose)
    return _friendly(lambda: int(module.run(args) or 0), args.debug)


def _friendly(fn: Callable[[], int], debug: bool = False) -> int:
    """Run ``fn``; a :class:`UserError` (bad input, named with its fix) becomes one line and exit 2
    (with ``--debug``, its traceback too); anything else is a bug and raises."""
    try:
        return fn()
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return INTERRUPTED_EXIT
    except UserError as exc:
        if debug:
            traceback.print_exc()
        print(f"error: {exc}", file=sys.stderr)
        return USER_ERROR_EXIT


if __name__ == "__main__":
    sys.exit(main())
