"""Where a synthetic-scene model's 3D error comes from (the 3D truth is used only to measure).

On held-out frames of the light recipe's validation scenes, the model's pose stage is run with
(a) its own backbone heatmaps or heatmaps rendered from the true 2D joints (σ = 2 heatmap px),
and (b) the true mid-hips as cube centres, each with local refinement off and on; plus the
backbone's 2D error: distance from each isolated true joint's heatmap position to the heatmap
maximum within ±3 heatmap px. Prints a table and, with ``--json``, one JSON object last.

    python benchmarks/diag_synthetic_errors.py --json
    python benchmarks/diag_synthetic_errors.py --checkpoint runs/exact2d/finetune/model_final.pt --frames 30
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from calib.common.heatmaps import subpixel_offset  # noqa: E402
from calib.projection import project_points  # noqa: E402
from engine.checkpoints import load_model_file  # noqa: E402
from engine.detections import render_input_heatmaps  # noqa: E402
from engine.runtime import InferenceRuntime, RootStageOutput  # noqa: E402
from training.ssl.synthetic_eval import held_out_scenes  # noqa: E402


def true_2d(rig, joints_mm: np.ndarray) -> list[np.ndarray]:
    """Per view (N,J,3) projected true joints with score 1."""
    out = []
    for cam in rig:
        uv = project_points(joints_mm.reshape(-1, 3), cam).reshape(*joints_mm.shape[:2], 2)
        out.append(np.concatenate([uv, np.ones((*joints_mm.shape[:2], 1))], -1).astype(np.float32))
    return out


def to_heatmap_px(p2d: list[np.ndarray], affine_hm: np.ndarray) -> np.ndarray:
    """Per-view (N,J,2+) original-image px -> (V,N,J,2) heatmap px through the (V,2,3) affines."""
    return np.stack([p[..., :2] @ affine_hm[v, :, :2].T + affine_hm[v, :, 2] for v, p in enumerate(p2d)])


def pose_at(
    runtime: InferenceRuntime, heatmaps: torch.Tensor, centers_mm: np.ndarray, root: RootStageOutput
) -> np.ndarray:
    """(N,J,3) poses of the pose stage run on ``heatmaps`` with cubes at ``centers_mm``."""
    K = runtime.max_people
    props = torch.zeros((K, 5))
    props[:, 3] = -1
    n = len(centers_mm)
    props[:n, :3] = torch.as_tensor(centers_mm, dtype=torch.float32)
    props[:n, 3:5] = torch.tensor([0.0, 1.0])
    stage = RootStageOutput(heatmaps, None, props, root.root_cube, root.timer)
    return runtime.pose_stage(stage).candidates.numpy()[:n, :, :3]


def heatmap_errors_px(
    heatmaps: np.ndarray,
    pos_hm: np.ndarray,
    window: int = 3,
    min_sep: float = 6.0,
    subpixel: bool = False,
    joints_out: list[int] | None = None,
) -> list[float]:
    """Per isolated true joint: |maximum within ±window - true position| in heatmap px.

    Args:
        heatmaps: (V,J,H,W) heatmaps.
        pos_hm: (V,P,J,2) true joint positions in heatmap px.
        window: search half-width around the true position.
        min_sep: joints closer than this to another person's same joint are skipped (ambiguous).
        subpixel: refine the maximum by a parabola through its neighbours (else the integer argmax).
        joints_out: if given, receives the joint index of every returned error.
    """
    V, J, H, W = heatmaps.shape
    errs = []
    for v in range(V):
        for p in range(pos_hm.shape[1]):
            for j in range(J):
                x, y = pos_hm[v, p, j]
                if not (window <= x < W - window and window <= y < H - window):
                    continue
                others = np.delete(pos_hm[v, :, j], p, axis=0)
                if len(others) and np.min(np.linalg.norm(others - pos_hm[v, p, j], axis=1)) < min_sep:
                    continue
                x0, y0 = int(round(x)), int(round(y))
                win = heatmaps[v, j, y0 - window : y0 + window + 1, x0 - window : x0 + window + 1]
                iy, ix = np.unravel_index(win.argmax(), win.shape)
                px, py = float(x0 - window + ix), float(y0 - window + iy)
                if subpixel:
                    hm, cx, cy = heatmaps[v, j], int(px), int(py)
                    if 0 < cx < W - 1:
                        px += subpixel_offset(hm[cy, cx - 1], hm[cy, cx], hm[cy, cx + 1], "parabola")[0]
                    if 0 < cy < H - 1:
                        py += subpixel_offset(hm[cy - 1, cx], hm[cy, cx], hm[cy + 1, cx], "parabola")[0]
                errs.append(float(np.hypot(px - x, py - y)))
                if joints_out is not None:
                    joints_out.append(j)
    return errs


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--checkpoint", default=str(REPO / "models" / "light_synthetic.pt"))
    ap.add_argument("--frames", type=int, default=30, help="first N held-out frames")
    ap.add_argument("--refine-mm", type=float, default=80.0, help="refinement radius of the 'on' rows")
    ap.add_argument("--json", action="store_true", help="print one JSON object last")
    args = ap.parse_args(argv)
    torch.set_num_threads(2)
    model, _ = load_model_file(args.checkpoint)
    scenes = held_out_scenes()
    rj = model.config.root_joint
    rows: dict[str, float] = {}
    hm_err: list[float] = []
    for refine in (0.0, args.refine_mm):
        rt = InferenceRuntime(
            model.eval(),
            scenes.rig,
            backend="eager",
            device="cpu",
            refine_radius_mm=refine,
            space_size_mm=scenes.key["size"],
            space_center_mm=scenes.key["center"],
        )
        geo = rt.projector.geometry
        affine = geo.affine_hm.numpy()
        own, exact = [], []
        for seq, frame in scenes.frames[: args.frames]:
            gt = scenes.ground_truth(seq, frame)
            gt = gt[np.isfinite(gt).all(axis=(1, 2))]
            with torch.inference_mode():
                root = rt.images_root_stage(scenes.images_bgr(seq, frame))
                p2d = true_2d(scenes.rig, gt)
                exact_hm = torch.as_tensor(render_input_heatmaps(p2d, affine, geo.heatmap_wh, 2.0))
                own += list(np.linalg.norm(pose_at(rt, root.heatmaps, gt[:, rj], root) - gt, axis=-1).mean(-1))
                exact += list(np.linalg.norm(pose_at(rt, exact_hm, gt[:, rj], root) - gt, axis=-1).mean(-1))
            if refine == 0.0:
                hm_err += heatmap_errors_px(root.heatmaps.numpy(), to_heatmap_px(p2d, affine))
        tag = "refined" if refine else "plain"
        rows[f"true_roots_backbone_heatmaps_{tag}_mm"] = float(np.mean(own))
        rows[f"true_roots_true_2d_heatmaps_{tag}_mm"] = float(np.mean(exact))
    W = scenes.rig[0].width / geo.heatmap_wh[0]
    rows.update(
        backbone_2d_error_median_hm_px=float(np.median(hm_err)),
        backbone_2d_error_p90_hm_px=float(np.percentile(hm_err, 90)),
        image_px_per_heatmap_px=float(W),
        joints_measured=len(hm_err),
    )
    for k, v in rows.items():
        print(f"{k:45s} {v:8.2f}")
    if args.json:
        print(
            json.dumps(
                {"benchmark": "diag_synthetic_errors", "checkpoint": args.checkpoint, "frames": args.frames, **rows}
            )
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
