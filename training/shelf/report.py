"""Markdown PCP table of the Shelf runs: ``python -m training.shelf.report [runs/shelf]``.

Reads ``<run>/metrics.json`` (written by ``selfpose3d eval shelf --checkpoint ... --metrics``) and
``<run>/summary.json`` (written by the trainer) of the runs ``ssl_a``, ``ssl_b`` and ``synthetic``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

RUNS = (
    ("(a) SSL, train 300-449, test 450-600", "ssl_a"),
    ("(b) SSL, all 301 frames (transductive)", "ssl_b"),
    ("(c) synthetic poses only", "synthetic"),
)


def table(root: str | Path = "runs/shelf") -> str:
    """The PCP table (Panoptic-15 head rule) of the runs found under ``root``."""
    root = Path(root)
    lines = [
        "| run | A1 | A2 | A3 | **Avg (A1-3)** | A4 | recall@500 | frames | train wall (s) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, run in RUNS:
        try:
            m = json.loads((root / run / "metrics.json").read_text())
            s = json.loads((root / run / "summary.json").read_text())
        except OSError:
            lines.append(f"| {name} | not measured | | | | | | | |")
            continue
        a = m["actors"]
        lines.append(
            f"| {name} | {a['Actor1']['pcp']:.2f} | {a['Actor2']['pcp']:.2f} | {a['Actor3']['pcp']:.2f} | "
            f"**{m['pcp_average']:.2f}** | {a['Actor4']['pcp']:.2f} | {m['recall500']:.3f} | {m['frames']} | "
            f"{s['train_s']} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    print(table(sys.argv[1] if len(sys.argv) > 1 else "runs/shelf"))
