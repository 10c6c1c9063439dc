"""The triangulation engine: speed on a synthetic 5-view x 4-person frameset, accuracy on Shelf.

* ``speed``: 4 synthetic people (``capture.synthetic.body``) projected into a 5-camera distorted
  ring rig with 2 px noise, one false 2D person, rows shuffled per view; ``predict_people`` timed
  per frame (wall median, p90, p99 and process CPU time over ``--repeats`` framesets; the machine
  load is recorded, as wall times on the shared 2 cores depend on it) and its MPJPE;
* ``shelf``: ``selfpose3d eval shelf --engine triangulate`` on all 301 frames (PCP per actor and
  limb group under both head rules, body MPJPE, predictions matched to no annotated actor),
  4D-Association's own output scored by the same evaluator, and the sensitivity of the PCP to
  the per-joint reprojection threshold ``joint_max_px``; with ``--learned M`` the learned route on
  the same frames for the side-by-side table of docs/shelf.md.

Prints a summary and writes ``benchmarks/results/shelf_triangulate.json``.

    python benchmarks/bench_triangulate.py [--repeats 300] [--no-sweep] [--learned models/shelf_ssl.pt] [--speed-only]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from calib.camera import Camera, CameraRig  # noqa: E402
from calib.projection import project_points  # noqa: E402
from capture.synthetic.body import forward_kinematics, neutral_pose, sample_body  # noqa: E402
from engine.triangulate import Triangulator  # noqa: E402

SHELF = REPO.parent / "shared" / "data" / "shelf"
PLACES = ((-900.0, -700.0, 0.3), (800.0, -600.0, 2.0), (-600.0, 900.0, -1.2), (700.0, 800.0, 3.0))


def ring_rig(n: int = 5, width: int = 1280, height: int = 720) -> CameraRig:
    cams = []
    for i, yaw in enumerate(np.deg2rad(np.arange(n) * 360.0 / n + 10.0)):
        center = np.array([4500.0 * np.cos(yaw), 4500.0 * np.sin(yaw), 2000.0])
        z = np.array([0.0, 0.0, 900.0]) - center
        z /= np.linalg.norm(z)
        x = np.cross(z, [0.0, 0.0, 1.0])
        x /= np.linalg.norm(x)
        K = np.array([[0.7 * width, 0, width / 2], [0, 0.7 * width, height / 2], [0, 0, 1.0]])
        cams.append(
            Camera.from_center(
                f"cam{i}", width, height, K, [-0.1, 0.02, 0, 0, 0], np.stack([x, np.cross(z, x), z]), center
            )
        )
    return CameraRig(tuple(cams))


def speed(repeats: int, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    rig = ring_rig()
    tri = Triangulator.from_rig(rig)
    times, cpu_times, errors, counts = [], [], [], []
    for _ in range(repeats):
        people = np.stack([forward_kinematics(sample_body(rng), neutral_pose(*p)) for p in PLACES])
        views = []
        for cam in rig:
            uv = project_points(people, cam) + rng.normal(0, 2.0, people.shape[:2] + (2,))
            rows = np.concatenate([uv, rng.uniform(0.5, 0.95, uv.shape[:2] + (1,))], -1)
            views.append(rows[rng.permutation(len(rows))])
        fake = project_points(forward_kinematics(sample_body(rng), neutral_pose(0.0, 1500.0, 0.0)), rig[0])
        views[0] = np.concatenate([views[0], np.concatenate([fake, np.full((15, 1), 0.9)], -1)[None]])
        t0, c0 = time.perf_counter(), time.process_time()
        pred = tri.predict_people(views)
        times.append(1e3 * (time.perf_counter() - t0))
        cpu_times.append(1e3 * (time.process_time() - c0))
        err = np.linalg.norm(pred.poses_mm[:, None] - people[None], axis=-1).mean(-1)
        errors.append(err.min(0).mean())
        counts.append(pred.num_people)
    t = np.array(times)
    return {
        "machine_load_1min": round(os.getloadavg()[0], 2),
        "views": 5,
        "people": 4,
        "false_2d_people": 1,
        "noise_px": 2.0,
        "frames": repeats,
        "ms_median": round(float(np.median(t)), 3),
        "ms_p90": round(float(np.percentile(t, 90)), 3),
        "ms_p99": round(float(np.percentile(t, 99)), 3),
        "cpu_ms_median": round(float(np.median(cpu_times)), 3),  # process CPU time: less load-dependent
        "mpjpe_mm": round(float(np.mean(errors)), 2),
        "people_found_mean": float(np.mean(counts)),
    }


def learned(checkpoint: str) -> dict:
    """The learned route on the same frames (slow: ~1 s/frame on 2 cores) with its body MPJPE."""
    import tempfile

    from training.datasets.shelf_campus import SHELF as SPEC, load_ground_truth
    from training.results_io import load_predictions
    from training.shelf.evaluate import evaluate_shelf_checkpoint
    from training.shelf.triangulate import body_mpjpe_and_unmatched

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "learned.npz"
        out = evaluate_shelf_checkpoint(checkpoint, SHELF, save_to=path)
        out.pop("table")
        out.update(body_mpjpe_and_unmatched(load_predictions(path), load_ground_truth(SHELF, SPEC)))
    return out


def shelf(sweep: bool) -> dict:
    from training.datasets.shelf_campus import SHELF as SPEC, load_ground_truth
    from training.evaluate import evaluate_shelf_campus, pcp_metrics
    from training.results_io import load_predictions
    from training.shelf.triangulate import evaluate_shelf_triangulate

    out = evaluate_shelf_triangulate(SHELF)
    out.pop("table")
    out["coco17"].pop("table")
    gt = load_ground_truth(SHELF, SPEC)
    from training.shelf.triangulate import body_mpjpe_and_unmatched

    ref = {}
    for name in ("pred_4dassoc.npz", "pred_4dassoc_coco17.npz"):
        preds = load_predictions(SHELF / name)
        ref[name] = pcp_metrics(evaluate_shelf_campus(preds, gt))
        ref[name].update(body_mpjpe_and_unmatched(preds, gt))
    late = evaluate_shelf_triangulate(SHELF, frame_ids=list(range(450, 601)))
    late.pop("table")
    late["coco17"].pop("table")
    result = {"triangulate": out, "triangulate_frames_450_600": late, "4d_association_output": ref}
    if sweep:
        result["joint_max_px_sweep"] = {
            str(px): round(evaluate_shelf_triangulate(SHELF, with_coco17=False, joint_max_px=px)["pcp_average"], 2)
            for px in (15.0, 20.0, 25.0, 30.0, 40.0)
        }
    return result


def cpu_name() -> str:
    try:
        text = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
        model = next(line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith("Model name"))
        number = next(line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith("Model:"))
        return f"{model} (model {number}), {platform.machine()}"
    except (OSError, StopIteration):
        return platform.processor() or platform.machine()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=300)
    parser.add_argument("--no-sweep", action="store_true", help="skip the joint_max_px sweep on Shelf")
    parser.add_argument(
        "--learned",
        metavar="CHECKPOINT",
        help="also run this learned model on Shelf (e.g. models/shelf_ssl.pt; ~5 min)",
    )
    parser.add_argument(
        "--speed-only",
        action="store_true",
        help="re-measure only the speed part and update it in the existing --out JSON",
    )
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "shelf_triangulate.json"))
    args = parser.parse_args()
    result = {"cpu": cpu_name(), "threads": "numpy default (1 process)", "speed": speed(args.repeats)}
    s = result["speed"]
    print(
        f"5 views x 4 people (+1 false 2D person): {s['ms_median']:.2f} ms median, {s['ms_p99']:.2f} ms p99, "
        f"{s['cpu_ms_median']:.2f} ms CPU time median (machine load {s['machine_load_1min']}), "
        f"MPJPE {s['mpjpe_mm']:.1f} mm, {s['people_found_mean']:.2f} people found"
    )
    if args.speed_only and Path(args.out).is_file():
        result = {**json.loads(Path(args.out).read_text()), **result}
    elif SHELF.is_dir():
        result.update(shelf(not args.no_sweep))
        t = result["triangulate"]
        print(
            f"Shelf PCP avg A1-3: {t['pcp_average']:.2f} (panoptic15 head rule), {t['coco17']['pcp_average']:.2f} "
            f"(coco17 rule); per actor {t['actor_pcp']}; body MPJPE {t['body_mpjpe_mm']}"
        )
        print(f"4D-Association output: {result['4d_association_output']['pred_4dassoc.npz']['pcp_average']:.2f}")
        if "joint_max_px_sweep" in result:
            print(f"joint_max_px sweep: {result['joint_max_px_sweep']}")
        if args.learned:
            result["learned"] = learned(args.learned)
            lr = result["learned"]
            print(
                f"learned {args.learned}: PCP avg {lr['pcp_average']:.2f}, per actor {lr['actor_pcp']}, "
                f"body MPJPE {lr['body_mpjpe_mm']}, {1000 * lr['seconds_per_frame']:.0f} ms/frame"
            )
    Path(args.out).write_text(json.dumps(result, indent=1, default=float) + "\n")
    print(f"written {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
