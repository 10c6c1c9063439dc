"""The bundled 2D estimator: PCK@0.2 on the real photos per input size / option, and its speed.

Accuracy: ``../shared/data/real_2d_samples`` (12 photos, 30 people; protocol in training/pck.py).
Speed: ms per view on those photos, and ms per 4-view frameset of the real 1088x1920 Pose2Sim footage
(views run one after another on ``--threads`` threads, and two views at a time on two 1-thread
sessions); variants interleaved in rounds, medians.

    python benchmarks/bench_estimator.py --json benchmarks/results/estimator_2d.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.benchutil import environment  # noqa: E402
from engine.estimators import EstimatorConfig, build_estimator  # noqa: E402
from engine.estimators.pool import EstimatorPool  # noqa: E402
from training.pck import pck_on_folder  # noqa: E402

VARIANTS = {  # name -> EstimatorConfig keywords
    "192": dict(input_long_side_px=192),
    "256": dict(input_long_side_px=256),
    "320": dict(input_long_side_px=320),
    "384": dict(input_long_side_px=384),
    "448": dict(input_long_side_px=448),
    "256+flip": dict(input_long_side_px=256, flip=True),
    "384+flip": dict(input_long_side_px=384, flip=True),
    "384+tiles2": dict(input_long_side_px=384, tiles=2),
}


def pose2sim_frames(shared: Path, frame: int = 30) -> list[np.ndarray]:
    frames = []
    for cam in sorted((shared / "pose2sim_demos/Demo_MultiPerson/videos").glob("*.mp4")):
        cap = cv2.VideoCapture(str(cam))
        cap.set(cv2.CAP_PROP_POS_FRAMES, frame)
        ok, img = cap.read()
        cap.release()
        if ok:
            frames.append(img)
    return frames


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--shared", default=str(REPO.parent / "shared" / "data"))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--variants", nargs="+", default=list(VARIANTS))
    ap.add_argument("--json", help="write the results here")
    args = ap.parse_args(argv)
    shared = Path(args.shared)
    photos = sorted(p for p in (shared / "real_2d_samples").glob("*/*.jpg"))
    images = {p: cv2.imread(str(p)) for p in photos}
    rig_frames = pose2sim_frames(shared)

    estimators = {v: build_estimator(EstimatorConfig(threads=args.threads, **VARIANTS[v])) for v in args.variants}
    rows: dict[str, dict] = {}
    for v, est in estimators.items():
        res = pck_on_folder(shared / "real_2d_samples", lambda p, est=est: est.detect([images[p]])[0].keypoints)
        rows[v] = {
            "pck@0.2": round(res.pck, 4),
            "per_source": res.to_dict()["per_source"],
            "missed_people": res.missed_people,
            "ms_per_photo": [],
            "ms_per_4view_frameset": [],
        }
    for _ in range(args.rounds):  # interleaved rounds
        for v, est in estimators.items():
            t = []
            for img in images.values():
                t0 = time.perf_counter()
                est.detect([img])
                t.append((time.perf_counter() - t0) * 1e3)
            rows[v]["ms_per_photo"].append(statistics.median(t))
            if rig_frames:
                t0 = time.perf_counter()
                est.detect(rig_frames)
                rows[v]["ms_per_4view_frameset"].append((time.perf_counter() - t0) * 1e3)
    # two views at a time on two single-thread sessions (the live route's layout)
    parallel = {}
    if rig_frames:
        for v in ("192", "256", "320"):
            if v not in args.variants:
                continue
            pool = EstimatorPool(EstimatorConfig(**VARIANTS[v]), workers=2)  # the live route's layout
            t = []
            for _ in range(args.rounds * 2):
                t0 = time.perf_counter()
                pool.detect(rig_frames)
                t.append((time.perf_counter() - t0) * 1e3)
            pool.close()
            parallel[v] = round(statistics.median(t), 1)
    for row in rows.values():
        row["ms_per_photo"] = round(statistics.median(row["ms_per_photo"]), 1)
        row["ms_per_4view_frameset"] = (
            round(statistics.median(row["ms_per_4view_frameset"]), 1) if row["ms_per_4view_frameset"] else None
        )
    print(f"{'variant':12s} {'PCK@0.2':>8s} {'ms/photo':>9s} {'ms/4 views':>11s}")
    for v, row in rows.items():
        print(f"{v:12s} {row['pck@0.2']:8.3f} {row['ms_per_photo']:9.1f} {row['ms_per_4view_frameset'] or 0:11.1f}")
    for v, ms in parallel.items():
        print(f"{v:12s} 4 Pose2Sim views on 2 one-thread sessions in parallel: {ms:.1f} ms")
    result = {
        "benchmark": "bench_estimator",
        "date": time.strftime("%Y-%m-%d"),
        "environment": environment(),
        "threads": args.threads,
        "rounds": args.rounds,
        "photos": len(photos),
        "pose2sim_views": len(rig_frames),
        "variants": rows,
        "parallel_2x1thread_ms_per_4views": parallel,
        "note": "machine shared with other work while measured: absolute ms are noisy, ratios less so",
    }
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
