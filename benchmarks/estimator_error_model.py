"""Measure the bundled 2D estimator's error model and write it where the synthetic detector reads it.

Part A, real photos against their annotations (``../shared/data/real_2d_samples``): per joint the 2D
error (per axis, robust σ, scaled to a 200 px tall person), the miss rate (labelled joint with a score
below the hard threshold or more than 0.2 x the box from the truth), missed people, false people per
image (predictions matching no annotated person: an upper bound, since not every person in these photos
is annotated), and the score calibration (fraction of joints within 0.1 x the box per score bin).
Part B, real multi-view footage without labels (``Demo_MultiPerson``, cross-view consistency): the
estimator's people are triangulated with the rig's calibration (robust, the engine's triangulator when
present) and the reprojection residual of each view's joint gives the per-joint 2D error in the footage.

Writes ``configs/estimators/movenet_error_model.yaml`` (a :class:`capture.synthetic.detector.DetectorParams`
the synthetic detector loads with :func:`capture.synthetic.detector.load_detector_params`) and the full
figures to ``benchmarks/results/estimator_error_model.json``.

    python benchmarks/estimator_error_model.py [--input-size 256]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from engine.estimators import EstimatorConfig, build_estimator  # noqa: E402
from calib.common.keypoint_maps import COCO17  # noqa: E402
from calib.common.skeleton import PANOPTIC15  # noqa: E402
from training.pck import joint_map_for, load_annotations  # noqa: E402
from training.pseudo_labels.detect import HARD_MIN_SCORE_MOVENET  # noqa: E402

REFERENCE_HEIGHT_PX = 200.0


def _robust_sigma(x: np.ndarray) -> float:
    x = x[np.isfinite(x)]
    return float(1.4826 * np.median(np.abs(x - np.median(x)))) if x.size >= 3 else float("nan")


def photos_part(root: Path, estimator, hard: float) -> dict:
    """Part A (see the module docstring)."""
    err = {j: [] for j in range(17)}  # per COCO joint, (dx, dy) scaled to a 200 px person
    labelled = np.zeros(17)
    missed = np.zeros(17)
    score_ok, score_all = np.zeros(10), np.zeros(10)
    scores_ok, scores_bad = [], []
    people = missed_people = false_people = images = 0
    for ann_file in sorted(root.glob("*/*.json")):
        imgs, by_image = load_annotations(ann_file)
        for info in imgs:
            anns = by_image.get(info["id"], [])
            if not anns:
                continue
            images += 1
            pred = estimator.detect([cv2.imread(str(ann_file.parent / info["file_name"]))])[0].keypoints
            used = set()
            for a in anns:
                kp = np.asarray(a["keypoints"], float).reshape(-1, 3)
                jmap = joint_map_for(ann_file, kp.shape[0])
                box = np.asarray(a["bbox"], float)
                size, height = max(box[2], box[3]), max(box[3], 1.0)
                rows = [i for i, j in enumerate(jmap) if j >= 0 and kp[i, 2] > 0]
                if not rows:
                    continue
                cols = [jmap[i] for i in rows]
                people += 1
                if not len(pred):
                    missed_people += 1
                    continue
                d = np.linalg.norm(pred[:, cols, :2] - kp[rows, :2][None], axis=-1).mean(1)
                best = int(np.argmin(d))
                if d[best] > 0.5 * size:
                    missed_people += 1
                    continue
                used.add(best)
                for i, j in zip(rows, cols):
                    labelled[j] += 1
                    p = pred[best, j]
                    delta = (p[:2] - kp[i, :2]) * REFERENCE_HEIGHT_PX / height
                    dist = np.linalg.norm(p[:2] - kp[i, :2])
                    b = min(int(p[2] * 10), 9)
                    score_all[b] += 1
                    score_ok[b] += dist <= 0.1 * size
                    (scores_ok if dist <= 0.2 * size else scores_bad).append(p[2])
                    if p[2] < hard or dist > 0.2 * size:
                        missed[j] += 1
                    else:
                        err[j].append(delta)
            false_people += len(pred) - len(used)
    sigma = {COCO17[j]: _robust_sigma(np.asarray(err[j]).reshape(-1)) if err[j] else float("nan") for j in range(17)}
    return {
        "images": images,
        "people": people,
        "missed_people": missed_people,
        "false_people": false_people,
        "false_people_per_image": false_people / max(images, 1),
        "sigma_px_at_200px_person": sigma,
        "miss_rate": {COCO17[j]: float(missed[j] / labelled[j]) if labelled[j] else None for j in range(17)},
        "miss_rate_all": float(missed.sum() / labelled.sum()),
        "score_calibration": [
            {
                "score": f"{b / 10:.1f}-{(b + 1) / 10:.1f}",
                "joints": int(score_all[b]),
                "within_0.1": float(score_ok[b] / score_all[b]) if score_all[b] else None,
            }
            for b in range(10)
        ],
        "score_correct_mean_std": [float(np.mean(scores_ok)), float(np.std(scores_ok))],
        "score_wrong_mean_std": [float(np.mean(scores_bad)), float(np.std(scores_bad))] if scores_bad else None,
    }


def footage_part(rig_path: Path, estimator, frames: list[int], hard: float) -> dict | None:
    """Part B: reprojection residuals of triangulated people (needs the engine's triangulator)."""
    try:
        from calib.rig_config import load_rig
        from engine.triangulate import Triangulator
    except ImportError as exc:
        return {"skipped": f"triangulator not available ({exc})"}
    from calib.projection import project_points

    rig = load_rig(rig_path)
    tri = Triangulator.from_rig(rig.cameras)
    caps = [cv2.VideoCapture(str(rig.source(n).uri)) for n in rig.names]
    resid = {j: [] for j in range(15)}
    per_view_people = []
    found = []
    for f in frames:
        images = []
        for cap in caps:
            cap.set(cv2.CAP_PROP_POS_FRAMES, f)
            ok, img = cap.read()
            images.append(img)
        people = [p.to_panoptic15() for p in estimator.detect(images)]
        per_view_people.append([len(p) for p in people])
        pred = tri.predict_people(people)
        found.append(pred.num_people)
        for pose in pred.poses_mm:
            for v, cam in enumerate(rig.cameras):
                uv = project_points(pose, cam)
                height = np.ptp(uv[:, 1])
                for det in people[v]:
                    ok = det[:, 2] >= hard
                    if ok.sum() < 5 or np.median(np.linalg.norm(det[ok, :2] - uv[ok], axis=1)) > 0.15 * height:
                        continue  # another person
                    for j in np.nonzero(ok)[0]:
                        resid[j].append((det[j, :2] - uv[j]) * REFERENCE_HEIGHT_PX / max(height, 1.0))
    return {
        "frames": frames,
        "people_per_view": per_view_people,
        "people_triangulated": found,
        "sigma_px_at_200px_person": {
            PANOPTIC15.joints[j]: _robust_sigma(np.asarray(resid[j]).reshape(-1)) for j in range(15)
        },
        "note": "residuals against the triangulated (estimator-derived) joints: they understate the error",
    }


def to_params(photos: dict, hard: float) -> dict:
    """DetectorParams fields from the measured figures (Panoptic-15 order for per-joint factors)."""
    sig = photos["sigma_px_at_200px_person"]
    per15 = []
    for name in PANOPTIC15.joints:
        if name == "neck":
            s = np.nanmean([sig["l_shoulder"], sig["r_shoulder"]]) / np.sqrt(2)
        elif name == "mid_hip":
            s = np.nanmean([sig["l_hip"], sig["r_hip"]]) / np.sqrt(2)
        else:
            s = sig[name]
        per15.append(float(s))
    per15 = np.asarray(per15)
    noise = float(np.nanmedian(per15))
    scale = np.where(np.isfinite(per15), per15 / noise, 1.0)
    ok_mean, ok_std = photos["score_correct_mean_std"]
    bad = photos["score_wrong_mean_std"] or [0.2, 0.1]
    return {
        "noise_px": round(noise, 2),
        "reference_height_px": REFERENCE_HEIGHT_PX,
        "miss_rate": round(photos["miss_rate_all"], 3),
        "person_miss_rate": round(photos["missed_people"] / max(photos["people"], 1), 3),
        "false_positives_per_view": round(min(photos["false_people_per_image"], 1.0), 3),
        "score_visible": [round(ok_mean, 3), round(ok_std, 3)],
        "score_occluded": [round(bad[0], 3), round(bad[1], 3)],
        "hard_threshold": hard,
        "joint_noise_scale": [round(float(s), 2) for s in scale],
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--shared", default=str(REPO.parent / "shared" / "data"))
    ap.add_argument("--input-size", type=int, default=256, help="the estimator's input (the live default)")
    ap.add_argument("--rig", default=str(REPO / "configs" / "rigs" / "pose2sim_multiperson.yaml"))
    ap.add_argument("--out", default=str(REPO / "configs" / "estimators" / "movenet_error_model.yaml"))
    ap.add_argument("--json", default=str(REPO / "benchmarks" / "results" / "estimator_error_model.json"))
    args = ap.parse_args(argv)
    est = build_estimator(EstimatorConfig(input_long_side_px=args.input_size, threads=2))
    hard = HARD_MIN_SCORE_MOVENET
    photos = photos_part(Path(args.shared) / "real_2d_samples", est, hard)
    footage = footage_part(Path(args.rig), est, list(range(0, 100, 10)), hard) if Path(args.rig).is_file() else None
    params = to_params(photos, hard)
    result = {
        "benchmark": "estimator_error_model",
        "date": time.strftime("%Y-%m-%d"),
        "estimator": f"movenet@{args.input_size}",
        "photos": photos,
        "footage": footage,
        "detector_params": params,
    }
    Path(args.json).write_text(json.dumps(result, indent=1, default=float))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    import yaml

    header = (
        f"# MoveNet MultiPose (bundled, input {args.input_size} px) error model, measured by\n"
        f"# benchmarks/estimator_error_model.py on {time.strftime('%Y-%m-%d')} against the annotations of\n"
        "# ../shared/data/real_2d_samples (30 people); figures in benchmarks/results/estimator_error_model.json.\n"
        "# Loaded by capture.synthetic.detector.load_detector_params (DetectorParams fields).\n"
    )
    out.write_text(header + yaml.safe_dump(params, sort_keys=False))
    print(
        json.dumps(
            {
                "detector_params": params,
                "photos_summary": {
                    k: photos[k] for k in ("people", "missed_people", "false_people_per_image", "miss_rate_all")
                },
                "footage": footage
                and {k: footage.get(k) for k in ("people_triangulated", "sigma_px_at_200px_person", "skipped")},
            },
            indent=1,
            default=float,
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
