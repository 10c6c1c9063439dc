"""Tracking benchmark: id switches, jitter and lag on synthetic sequences with known identities.

The synthetic world's people (entering, leaving, crossing) are perturbed like a 3D detector's
output (per-joint noise, missed people, false positives) and tracked. Prints a table and, with
``--json``, one JSON object last.

    python benchmarks/bench_tracking.py --seconds 60 --people 4 --noise-mm 20 --json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from calib.rig_config import load_rig  # noqa: E402
from capture.synthetic.world import SyntheticWorld  # noqa: E402
from engine.tracking import PoseTracker, count_id_switches, jitter_mm  # noqa: E402


def simulate(
    world: SyntheticWorld, frames: int, noise_mm: float, miss_rate: float, fp_rate: float, rng: np.random.Generator
):
    """Per frame: detections (D,15,3), their true ids (-1 = false positive), truth by id."""
    for k in range(frames):
        people = world.people(k)
        keep = people.present & np.isfinite(people.joints_mm).all(axis=(1, 2))
        ids, joints = people.ids[keep], people.joints_mm[keep]
        det_mask = rng.random(len(ids)) >= miss_rate
        dets = joints[det_mask] + rng.normal(0.0, noise_mm, joints[det_mask].shape)
        true = ids[det_mask]
        if rng.random() < fp_rate and len(joints):
            fake = joints[rng.integers(len(joints))] + [rng.uniform(-3000, 3000), rng.uniform(-3000, 3000), 0.0]
            dets = np.concatenate([dets, fake[None]])
            true = np.concatenate([true, [-1]])
        order = rng.permutation(len(dets))
        yield k, dets[order], true[order], dict(zip(ids.tolist(), joints))


def id_merges(true_ids, pred_ids) -> int:
    """Tracker ids given to more than one true person (e.g. a newcomer taking a lost id)."""
    owners: dict[int, set] = {}
    for t_ids, p_ids in zip(true_ids, pred_ids):
        for t, p in zip(np.asarray(t_ids).tolist(), np.asarray(p_ids).tolist()):
            if p >= 0:
                owners.setdefault(p, set()).add(t)
    return sum(len(v) - 1 for v in owners.values())


def run(args: argparse.Namespace) -> dict:
    rig = load_rig(args.rig)
    world = SyntheticWorld(
        rig.cameras,
        num_people=args.people,
        seed=args.seed,
        fps=args.fps,
        volume_center_mm=rig.volume.center_mm,
        volume_size_mm=rig.volume.size_mm,
    )
    rng = np.random.default_rng(args.seed)
    frames = int(args.seconds * args.fps)
    tracker = PoseTracker(reid_bone_tol_mm=args.reid_bone_tol_mm, max_speed_mm_s=args.max_speed_mm_s)
    true_ids, pred_ids = [], []
    raw_traj: dict[int, list] = {}
    smooth_traj: dict[int, list] = {}
    truth_traj: dict[int, list] = {}
    t0 = time.perf_counter()
    for k, dets, true, truth in simulate(world, frames, args.noise_mm, args.miss_rate, args.fp_rate, rng):
        out = tracker.update(dets, np.ones(len(dets)), k / args.fps)
        real = true >= 0
        true_ids.append(true[real])
        pred_ids.append(out.track_ids[real])
        for d, (tid, pid) in enumerate(zip(true, out.track_ids)):
            if tid < 0 or pid < 0:
                continue
            raw_traj.setdefault(tid, []).append((k, dets[d]))
            smooth_traj.setdefault(tid, []).append((k, out.poses_mm[d]))
            truth_traj.setdefault(tid, []).append((k, truth[tid]))
    elapsed = time.perf_counter() - t0

    def contiguous(traj):
        """Longest run of consecutive frames of each person: (F,J,3) arrays."""
        runs = []
        for items in traj.values():
            ks = np.array([k for k, _ in items])
            cuts = np.flatnonzero(np.diff(ks) != 1) + 1
            for seg in np.split(np.arange(len(items)), cuts):
                if len(seg) >= 10:
                    runs.append(np.stack([items[i][1] for i in seg]))
        return runs

    raw_runs, smooth_runs, truth_runs = contiguous(raw_traj), contiguous(smooth_traj), contiguous(truth_traj)
    err_raw = np.mean([np.linalg.norm(r - t, axis=-1).mean() for r, t in zip(raw_runs, truth_runs)])
    err_smooth = np.mean([np.linalg.norm(s - t, axis=-1).mean() for s, t in zip(smooth_runs, truth_runs)])
    lags = []
    for s, t in zip(smooth_runs, truth_runs):  # lag (frames) minimising the error of the smoothed root
        root_s, root_t = s[:, 2], t[:, 2]
        errs = [np.linalg.norm(root_s[d:] - root_t[: len(root_t) - d], axis=-1).mean() for d in range(0, 6)]
        lags.append(int(np.argmin(errs)))
    result = {
        "frames": frames,
        "fps": args.fps,
        "people": args.people,
        "noise_mm": args.noise_mm,
        "miss_rate": args.miss_rate,
        "fp_rate": args.fp_rate,
        "true_people_seen": len(truth_traj),
        "track_ids_used": len({int(p) for ids in pred_ids for p in ids if p >= 0}),
        "id_switches": count_id_switches(true_ids, pred_ids),
        "id_merges": id_merges(true_ids, pred_ids),
        "jitter_raw_mm": round(float(np.mean([jitter_mm(r) for r in raw_runs])), 2),
        "jitter_smoothed_mm": round(float(np.mean([jitter_mm(s) for s in smooth_runs])), 2),
        "jitter_truth_mm": round(float(np.mean([jitter_mm(t) for t in truth_runs])), 2),
        "error_raw_mm": round(float(err_raw), 2),
        "error_smoothed_mm": round(float(err_smooth), 2),
        "lag_frames_median": float(np.median(lags)) if lags else None,
        "ms_per_frame": round(elapsed / frames * 1e3, 3),
    }
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rig", default=str(Path(__file__).resolve().parents[1] / "configs" / "rig.yaml"))
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--fps", type=float, default=15.0)
    parser.add_argument("--people", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--noise-mm", type=float, default=20.0)
    parser.add_argument("--miss-rate", type=float, default=0.05)
    parser.add_argument("--fp-rate", type=float, default=0.05)
    parser.add_argument("--reid-bone-tol-mm", type=float, default=PoseTracker().reid_bone_tol_mm)
    parser.add_argument("--max-speed-mm-s", type=float, default=PoseTracker().max_speed_mm_s)
    parser.add_argument("--json", action="store_true", help="print one JSON object last")
    args = parser.parse_args()
    result = run(args)
    for k, v in result.items():
        print(f"{k:>22}: {v}")
    if args.json:
        print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
