"""End-to-end benchmark of the live app on a rig (default: the embedded one).

Runs ``selfpose3d-live --no-viewer`` for ``--seconds`` in a subprocess, samples the CPU time and
resident memory of the whole process tree from /proc, and prints the live summary (poses fps,
latency p50/p99 from capture timestamp to poses published, drops, error against the synthetic
truth) plus CPU and memory, with one JSON object last (``--json``).

    python benchmarks/bench_live.py --seconds 60 --model light --json
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.benchutil import environment  # noqa: E402

CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


def _tree(pid: int) -> list[int]:
    """pid and all its descendants (from /proc)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry.name))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo += children.get(p, [])
    return out


def _usage(pids: list[int]) -> tuple[float, int]:
    """(CPU seconds, resident bytes) summed over pids."""
    cpu, rss = 0.0, 0
    for p in pids:
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            cpu += (int(fields[11]) + int(fields[12])) / CLK_TCK
            rss += int(fields[21]) * PAGE
        except (OSError, IndexError, ValueError):
            continue
    return cpu, rss


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rig", default=str(REPO / "configs" / "rig.yaml"))
    parser.add_argument(
        "--model", default="light", help="checkpoint or preset (default: untrained light); '' = the route's default"
    )
    parser.add_argument("--engine", default=None, help="auto | image | triangulate | learned (default: auto)")
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    tag = uuid.uuid4().hex[:8]
    cmd = [
        sys.executable,
        "-m",
        "app.cli_live",
        "--rig",
        args.rig,
        "--no-viewer",
        "--duration",
        str(args.seconds),
        "--set",
        f"poses_endpoint=ipc:///tmp/sp3d-bench-poses-{tag}",
        "--set",
        f"status_endpoint=ipc:///tmp/sp3d-bench-status-{tag}",
        "--set",
        f"capture.stream.endpoint=ipc:///tmp/sp3d-bench-frames-{tag}",
    ]
    cmd += ["--model", args.model] if args.model else []
    cmd += ["--engine", args.engine] if args.engine else []
    for o in args.overrides:
        cmd += ["--set", o]
    load_before = os.getloadavg()
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    peak_rss, samples = 0, []
    t0 = time.monotonic()
    while proc.poll() is None:
        cpu, rss = _usage(_tree(proc.pid))
        peak_rss = max(peak_rss, rss)
        samples.append((time.monotonic() - t0, cpu))
        time.sleep(1.0)
    out, err = proc.stdout.read(), proc.stderr.read()
    if proc.returncode != 0:
        print(err[-3000:], file=sys.stderr)
        return proc.returncode
    summary = json.loads(out.strip().splitlines()[-1])
    # CPU over the steady part: from `seconds` before the end (start-up and warm-up excluded) to the
    # last sample before processes began exiting (the tree's cumulative CPU peaks there).
    steady = [s for s in samples if s[0] >= samples[-1][0] - args.seconds] if samples else []
    end = max(steady, key=lambda s: s[1]) if steady else None
    cpu_pct = (
        round(100.0 * (end[1] - steady[0][1]) / (end[0] - steady[0][0]), 1)
        if end is not None and end[0] > steady[0][0]
        else None
    )
    result = {
        **summary,
        "seconds": args.seconds,
        "model": args.model,
        "cpu_percent_of_one_core": cpu_pct,
        "peak_rss_mb": round(peak_rss / 2**20, 1),
        "loadavg_before": load_before,
        "loadavg_after": os.getloadavg(),
        "overrides": args.overrides,
        "engine": args.engine or "auto",
        "environment": environment(),
    }
    for k, v in result.items():
        print(f"{k:>24}: {v}")
    if args.json:
        print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
