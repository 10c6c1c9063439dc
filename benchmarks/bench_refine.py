"""Local joint refinement (engine/refine.py): accuracy with and without it, same weights.

Scores a synthetic-scene model on the held-out scenes (AP, MPJPE) and, where the Shelf data is
present, Shelf models on their detections (PCP), each with refinement off and at the given radii.
Prints a table and, with ``--json``, one JSON object last.

    python benchmarks/bench_refine.py --json > benchmarks/results/local_refinement.json
    python benchmarks/bench_refine.py --shelf runs/shelf/ssl_a/model.pt:450-600 --radii 0 80 160
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from training.shelf.evaluate import evaluate_shelf_checkpoint  # noqa: E402
from training.ssl.synthetic_eval import evaluate_default  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--synthetic",
        nargs="*",
        default=[str(REPO / "models" / "light_synthetic.pt")],
        help="synthetic-scene model files (held-out scenes of light_posenet)",
    )
    ap.add_argument(
        "--shelf",
        nargs="*",
        default=[f"{REPO / 'models' / 'shelf_ssl.pt'}:300-600"],
        help="Shelf model files as FILE:FRAMES",
    )
    ap.add_argument("--shelf-data", default=str(REPO.parent / "shared" / "data" / "shelf"))
    ap.add_argument("--radii", nargs="+", type=float, default=[0.0, 80.0], help="refinement radii in mm (0 = off)")
    ap.add_argument("--json", action="store_true", help="print one JSON object last")
    args = ap.parse_args(argv)

    rows = []
    for model in args.synthetic:
        for r in args.radii:
            t0 = time.perf_counter()
            m = evaluate_default(checkpoint=model, refine_radius_mm=r)
            rows.append(
                {
                    "model": model,
                    "data": "synthetic held-out",
                    "refine_mm": r,
                    "mpjpe_mm": m["mpjpe_mm"],
                    **{f"ap{t}": 100 * m[f"ap{t}"] for t in (25, 50, 75, 100, 125, 150)},
                    "recall500": 100 * m["recall500"],
                    "seconds": time.perf_counter() - t0,
                }
            )
    if Path(args.shelf_data).is_dir():
        for spec in args.shelf:
            model, _, frames = spec.rpartition(":")
            lo, hi = (int(x) for x in frames.split("-"))
            for r in args.radii:
                t0 = time.perf_counter()
                m = evaluate_shelf_checkpoint(model, args.shelf_data, list(range(lo, hi + 1)), refine_radius_mm=r)
                m.pop("table")
                rows.append(
                    {
                        "model": model,
                        "data": f"shelf {frames}",
                        "refine_mm": r,
                        "pcp_average": m["pcp_average"],
                        "actors": {k: v["pcp"] for k, v in m["actors"].items()},
                        "head": m["actors"] and sum(v["Head"] for v in m["actors"].values()) / len(m["actors"]),
                        "seconds": time.perf_counter() - t0,
                    }
                )
    else:
        print(f"{args.shelf_data}: not found, Shelf rows skipped", file=sys.stderr)
    print(f"{'model':48s} {'data':20s} {'refine':>6s}  result")
    for row in rows:
        res = (
            f"MPJPE {row['mpjpe_mm']:.1f} mm  AP100 {row['ap100']:.2f}  AP150 {row['ap150']:.2f}"
            if "mpjpe_mm" in row
            else f"PCP {row['pcp_average']:.2f}  head {row['head']:.1f}"
        )
        print(f"{Path(row['model']).name:48s} {row['data']:20s} {row['refine_mm']:6.0f}  {res}")
    if args.json:
        print(json.dumps({"benchmark": "local_refinement", "rows": rows}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
