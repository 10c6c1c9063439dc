"""Score a model on held-out synthetic scenes (Panoptic metrics, SPEC.md §5.1) with 3D truth.

The model runs through the engine's own :class:`engine.runtime.InferenceRuntime` (the path the
live app uses) on rendered images; predictions with a valid root (score > threshold) are matched
to the people present in the frame. Pose metrics (AP@25..150, recall@500, MPJPE) and root
metrics (``root_*``: proposals against true mid-hips) are returned.

``selfpose3d eval synthetic`` with no other argument calls :func:`evaluate_default`.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Sequence


from calib.common.paths import DEFAULT_MODEL, REPO_ROOT
from training.metrics import AP_THRESHOLDS_MM, match_to_ground_truth, panoptic_metrics

log = logging.getLogger(__name__)

DEFAULT_CONFIG = "light_posenet"


def evaluate_model(
    model,
    scenes,
    frames: Sequence[tuple[str, int]] | None = None,
    *,
    device: str = "cpu",
    precision: str = "auto",
    progress: bool = False,
    refine_radius_mm: float | None = None,
) -> dict[str, float]:
    """Run ``model`` on held-out frames and score it against the 3D truth.

    Args:
        model: :class:`engine.model.SelfPose3dModel`.
        scenes: :class:`training.ssl.data.SyntheticScenes` of held-out seeds.
        frames: (sequence, frame) pairs (default: all of ``scenes.frames``).
        device, precision: runtime settings (eager backend).
        refine_radius_mm: local joint refinement (None: the model config's; 0: off).
    Returns:
        metrics dict (``ap25``..``ap150``, ``mean_ap``, ``mpjpe_mm``, ``recall500``, ``root_*``,
        ``frames``, ``seconds_per_frame``).
    """
    from engine.runtime import InferenceRuntime

    was_training = model.training
    runtime = InferenceRuntime(
        model.eval(),
        scenes.rig,
        backend="eager",
        device=device,
        precision=precision,
        space_size_mm=scenes.key["size"],
        space_center_mm=scenes.key["center"],
        refine_radius_mm=refine_radius_mm,
    )
    frames = list(frames if frames is not None else scenes.frames)
    preds, scores, gts, roots, root_scores = [], [], [], [], []
    t0 = time.perf_counter()
    import torch

    with torch.inference_mode():
        for i, (seq, frame) in enumerate(frames):
            out = runtime.from_images(scenes.images_bgr(seq, frame))
            cand = out.candidates.numpy()  # (K,J,5)
            ok = cand[:, 0, 3] >= 0
            preds.append(cand[ok, :, :3])
            scores.append(cand[ok, 0, 4])
            prop = out.proposals.numpy()
            okr = prop[:, 3] >= 0
            roots.append(prop[okr, :3])
            root_scores.append(prop[okr, 4])
            gts.append(scenes.ground_truth(seq, frame))
            if progress and (i + 1) % 10 == 0:
                log.info("eval %d/%d frames", i + 1, len(frames))
    seconds = time.perf_counter() - t0
    model.train(was_training)
    root_joint = model.config.root_joint
    metrics = panoptic_metrics(match_to_ground_truth(preds, scores, gts))
    root = panoptic_metrics(match_to_ground_truth(roots, root_scores, [g[:, root_joint] for g in gts]))
    metrics.update({f"root_{k}": v for k, v in root.items()})
    metrics["frames"] = float(len(frames))
    metrics["seconds_per_frame"] = seconds / max(1, len(frames))
    return metrics


def format_metrics(metrics: dict[str, float]) -> str:
    """A small text table: pose and root AP / recall per threshold, MPJPE, recall@500."""
    head = "        " + " ".join(f"{t:>7d}" for t in AP_THRESHOLDS_MM)
    lines = [head]
    for prefix, name in (("", "pose"), ("root_", "root")):
        if f"{prefix}ap25" not in metrics:
            continue
        lines.append(f"{name} AP " + " ".join(f"{100 * metrics[f'{prefix}ap{t}']:7.2f}" for t in AP_THRESHOLDS_MM))
        lines.append(f"{name} R@ " + " ".join(f"{100 * metrics[f'{prefix}recall{t}']:7.2f}" for t in AP_THRESHOLDS_MM))
    lines.append(
        f"MPJPE {metrics['mpjpe_mm']:.1f} mm   recall@500 {100 * metrics['recall500']:.2f}   "
        f"mean AP {100 * metrics['mean_ap']:.2f}   frames {int(metrics.get('frames', 0))}"
    )
    return "\n".join(lines)


def held_out_scenes(config_name: str = DEFAULT_CONFIG, overrides: Sequence[str] = ()):
    """The held-out synthetic scenes of a training config (its ``data.val_seeds``)."""
    from calib.rig_config import load_rig
    from training.ssl.config import load_train_config
    from training.ssl.data import SyntheticScenes

    cfg = load_train_config(config_name, tuple(overrides))
    d = cfg.data
    rig = load_rig(REPO_ROOT / d.rig if not Path(d.rig).is_absolute() else d.rig)
    return SyntheticScenes(
        rig.cameras,
        d.val_seeds,
        d.val_frames_per_scene,
        d.frame_interval,
        d.people,
        d.fps,
        rig.volume.center_mm,
        rig.volume.size_mm,
    )


def evaluate_default(
    checkpoint: str | Path | None = None,
    config_name: str = DEFAULT_CONFIG,
    max_frames: int | None = None,
    precision: str = "auto",
    refine_radius_mm: float | None = None,
) -> dict[str, float]:
    """``selfpose3d eval synthetic``: the committed light model on the held-out scenes, printed.

    Args:
        checkpoint: model file (default ``models/light_synthetic.pt``).
        config_name: training config whose ``data.val_seeds`` are the held-out scenes.
        max_frames: evaluate only the first frames.
        refine_radius_mm: local joint refinement (None: the checkpoint config's; 0: off).
    """
    from engine.checkpoints import load_model_file

    from engine.errors import CheckpointError

    path = Path(checkpoint) if checkpoint else DEFAULT_MODEL
    if checkpoint is None and not path.is_file():
        raise CheckpointError(
            f"{path}: no committed light model yet; train one with `selfpose3d train --stage all --recipe light` "
            "and score it with --checkpoint runs/light/finetune/model_final.pt"
        )
    model, _ = load_model_file(path)
    scenes = held_out_scenes(config_name)
    frames = scenes.frames[:max_frames] if max_frames else scenes.frames
    metrics = evaluate_model(model, scenes, frames, precision=precision, refine_radius_mm=refine_radius_mm)
    print(f"{path} on held-out synthetic scenes {list(scenes.seeds)} ({len(frames)} frames):")
    print(format_metrics(metrics))
    return metrics
