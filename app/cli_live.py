"""``python -m app.cli_live``: the same as the ``selfpose3d-live`` console script."""

import sys

from app.cli import live_main

if __name__ == "__main__":
    sys.exit(live_main())
