"""``selfpose3d release-model``: a run's model file -> a small release file (float16, no attention net).

Example::

    selfpose3d release-model runs/light/posenet/model_best.pt --out models/light_synthetic.pt
"""

from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", type=Path, help="model file written by `selfpose3d train`")
    parser.add_argument("--out", type=Path, default=Path("models/light_synthetic.pt"), help="release file to write")
    parser.add_argument("--fp32", action="store_true", help="keep float32 weights (default: float16 storage)")
    parser.add_argument("--no-eval", action="store_true", help="skip the held-out synthetic evaluation")
    parser.add_argument(
        "--refine-mm",
        type=float,
        default=None,
        help="local joint refinement radius of the release in mm (0 = off; default: the "
        "source config's; see docs/architecture.md)",
    )


def run(args: argparse.Namespace) -> int:
    from training.ssl.release import release_model

    release_model(args.model, args.out, half=not args.fp32, evaluate=not args.no_eval, refine_radius_mm=args.refine_mm)
    size = args.out.stat().st_size / 1e6
    print(f"wrote {args.out} ({size:.1f} MB)")
    return 0
