"""One module per ``selfpose3d`` subcommand; each defines ``add_arguments(parser)`` and ``run(args) -> int``."""
