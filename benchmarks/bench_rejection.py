"""Cost of rejecting hostile messages on the receive path (capture.messages.decode), per message.

Hostile kinds (what a flood of ~300/s sent in issue 23): unsigned and wrongly signed framesets
(rejected by the MAC check), garbage, and a frameset header packed with 200 000 list items
(~200 KB: before the per-kind header cap the receiver msgpack-decoded all of it before rejecting
it). A valid signed 4-view frameset header is the reference. Runs in one process, one thread.

    python benchmarks/bench_rejection.py [--repeat 2000] [--json]

Prints µs per message for each kind, with the key (the live app) and, for the big header, the
cost of the pre-cap path (msgpack.unpackb of the whole header), and writes
benchmarks/results/rejection.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import msgpack
import numpy as np

from capture.messages import FrameSet, MessageError, View, decode, encode

KEY = b"k" * 32


def _frameset() -> FrameSet:
    imgs = [np.zeros((1920, 1088, 3), np.uint8) for _ in range(4)]
    views = tuple(View(f"cam0{i}", 7, 1, 1088, 1920, "bgr8", img.nbytes) for i, img in enumerate(imgs))
    return FrameSet("lab", 3_000_000_000_000, 1, 2, views, tuple(imgs))


def _per_message_us(frames, repeat: int, key) -> float:
    t0 = time.perf_counter()
    for _ in range(repeat):
        try:
            decode(frames, key)
        except MessageError:
            pass
    return (time.perf_counter() - t0) / repeat * 1e6


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=2000)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    fs = _frameset()
    big_header = msgpack.packb({"v": 1, "kind": "frameset", "rig": "lab", "views": [0] * 200_000})
    kinds = {
        "valid_signed": encode(fs, KEY),
        "unsigned": encode(fs),
        "wrong_mac": encode(fs, b"x" * 32),
        "garbage": [b"frames/lab", b"\xc1" * 64],
        "big_header_200k_items": [b"frames/lab", big_header],
    }
    out = {"cpu": platform.processor() or platform.machine(), "repeat": args.repeat, "us_per_message": {}}
    for name, frames in kinds.items():
        out["us_per_message"][name] = round(_per_message_us(frames, args.repeat, KEY), 2)
    t0 = time.perf_counter()
    for _ in range(max(args.repeat // 20, 10)):
        msgpack.unpackb(big_header)
    out["pre_cap_unpack_big_header_us"] = round((time.perf_counter() - t0) / max(args.repeat // 20, 10) * 1e6, 1)
    for name, us in out["us_per_message"].items():
        print(f"{name:24s} {us:9.2f} us/message")
    print(
        f"{'big header, pre-cap path':24s} {out['pre_cap_unpack_big_header_us']:9.1f} us/message "
        "(msgpack decode of the whole header)"
    )
    results = Path(__file__).resolve().parent / "results"
    results.mkdir(exist_ok=True)
    (results / "rejection.json").write_text(json.dumps(out, indent=2))
    if args.json:
        print(json.dumps(out))


if __name__ == "__main__":
    main()
