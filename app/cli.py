"""Command-line entry points: ``selfpose3d <subcommand>`` and ``selfpose3d-live``.

Each subcommand lives in ``app/commands/<name>.py`` (hyphens become underscores) and defines
``add_arguments(parser)`` and ``run(args) -> int``. A subcommand whose module does not exist yet
is listed in ``--help`` and, when called, says it is not built yet and exits with status 2.
Command modules are imported only when their command runs, so ``--help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import logging
import sys
from typing import Sequence

# name -> (one-line help, issue that builds it)
COMMANDS: dict[str, tuple[str, int]] = {
    "demo": ("run the main job on the embedded default (no camera, GPU or download)", 2),
    "rig": ("inspect/convert a rig or calibration file (cameras, volume, projections)", 2),
    "predict": ("3D poses from a folder of synchronised images + calibration (JSON/NPZ)", 3),
    "synth": ("generate a synthetic multi-person scene (images, truth, pseudo labels, Panoptic tree)", 4),
    "capture": ("run a capture process: publish time-synced framesets on ZeroMQ", 5),
    "record": ("record a rig's streams to a session folder", 5),
    "replay": ("replay a recorded session or Panoptic sequence through the live stream", 5),
    "detect2d": ("run the bundled 2D estimator on a folder of images (COCO-style results JSON)", 19),
    "pseudo-labels": ("soft/hard 2D pseudo labels: from footage with the bundled estimator, or imported", 6),
    "train": ("train a stage: backbone | rootnet | posenet | finetune", 6),
    "train-shelf": ("train root/pose nets on Shelf from its 2D detections (no 3D ground truth)", 7),
    "train-detection": ("train the rig-agnostic learned detection route on synthetic random rigs", 20),
    "eval": ("evaluate: panoptic | shelf | campus | synthetic", 6),
    "release-model": ("a trained model file -> a small release file (float16, held-out metrics in its meta)", 6),
    "export": ("convert a recorded JSONL take to TRC (OpenSim), BVH or CSV", 8),
    "view": ("Open3D live viewer of the poses stream", 9),
    "overlay": ("draw 3D skeletons reprojected into each camera image, side by side", 9),
    "calibrate": ("calibration tools: intrinsics | extrinsics | refine | check | board", 10),
}


def _module_name(command: str) -> str:
    return "app.commands." + command.replace("-", "_")


def _is_built(command: str) -> bool:
    return importlib.util.find_spec(_module_name(command)) is not None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="selfpose3d", description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (help_text, issue) in COMMANDS.items():
        built = _is_built(name)
        p = sub.add_parser(name, help=help_text if built else f"[not built yet] {help_text}")
        if built:
            importlib.import_module(_module_name(name)).add_arguments(p)
        else:
            p.add_argument("rest", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
        p.set_defaults(_issue=issue)
    return parser


def _setup_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname).1s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )


def _run(command: str, args: argparse.Namespace) -> int:
    if not _is_built(command):
        print(
            f"selfpose3d {command}: not built yet (tracked in issue {args._issue}); nothing was done.",
            file=sys.stderr,
        )
        return 2
    return int(importlib.import_module(_module_name(command)).run(args) or 0)


def main(argv: Sequence[str] | None = None) -> int:
    """``selfpose3d`` entry point."""
    parser = build_parser()
    args = parser.parse_args(argv)
    _setup_logging(args.verbose)
    if not args.command:
        parser.print_help()
        return 2
    return _friendly(lambda: _run(args.command, args))


def live_main(argv: Sequence[str] | None = None) -> int:
    """``selfpose3d-live`` entry point (the live application, app/commands/live.py)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    module = importlib.import_module(_module_name("live"))
    parser = argparse.ArgumentParser(prog="selfpose3d-live", description="live multi-camera 3D pose")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    module.add_arguments(parser)
    args = parser.parse_args(argv)
    _setup_logging(args.verbose)
    return _friendly(lambda: int(module.run(args) or 0))


# Exceptions whose message already names the bad input and the fix: print one line, exit 1.
USER_ERRORS = {"ConfigError", "CalibrationError", "MessageError", "CheckpointError",
               "BackendUnavailableError", "DatasetError", "FileNotFoundError", "SourceError",
               "SessionError", "ShmError"}


def _friendly(fn) -> int:
    """Run ``fn``; turn the project's input errors into one clear line and exit status 1."""
    try:
        return fn()
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        if not any(cls.__name__ in USER_ERRORS for cls in type(exc).__mro__):
            raise
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
