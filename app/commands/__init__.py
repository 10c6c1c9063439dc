"""One module per ``selfpose3d`` subcommand; each defines ``add_arguments(parser)`` and ``run(args) -> int``."""

import argparse


def add_set_option(parser: argparse.ArgumentParser, what: str, example: str) -> None:
    """The repeatable ``--set KEY=VALUE`` option (into ``args.overrides``) every configurable command has."""
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help=f"override {what}, e.g. {example} (repeatable)",
    )
