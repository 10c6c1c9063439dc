"""Turn a training run's model file into a small release file (the committed light model).

The release keeps what inference needs: config + weights (stored as float16, loaded back into the
fp32 model), drops the training-only attention net, and records in its meta where it came from
(source file, the reproduce command), its held-out synthetic metrics, measured on the float16
weights actually written, and its bf16 deviation check (``bf16_check``: mixed bf16 against fp32 on
the same held-out framesets; ``--precision auto`` picks bf16 only where it passed).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Mapping

import torch

from engine.checkpoints import FORMAT, FORMAT_VERSION, load_model_file, read_file
from engine.config import with_refine_radius
from engine.errors import CheckpointError

REPRODUCE = (
    "selfpose3d train --stage all --recipe light --out runs/light && "
    "selfpose3d release-model runs/light/posenet/model_best.pt --out models/light_synthetic.pt"
)


def bf16_deviation_check(checkpoint: str | Path, frames: int = 20) -> dict:
    """Mixed bf16 against fp32 (joint deviation, mm) of a model file on held-out synthetic framesets.

    Returns the ``meta['bf16_check']`` record (:meth:`engine.precision.DeviationSummary.to_meta`).
    """
    from engine.checkpoints import load_model_file
    from engine.precision import compare_runs
    from engine.runtime import InferenceRuntime
    from training.ssl.synthetic_eval import held_out_scenes

    model, _ = load_model_file(checkpoint)
    scenes = held_out_scenes()
    chosen = scenes.frames[:frames]
    runs = {}
    for precision in ("fp32", "bf16"):
        rt = InferenceRuntime(
            model,
            scenes.rig,
            backend="eager",
            device="cpu",
            precision=precision,
            space_size_mm=scenes.key["size"],
            space_center_mm=scenes.key["center"],
        )
        with torch.inference_mode():
            runs[precision] = [rt.from_images(scenes.images_bgr(s, f)).candidates.numpy() for s, f in chosen]
    desc = f"held-out synthetic framesets (seeds {list(scenes.seeds)}, first {len(chosen)})"
    return compare_runs(runs["fp32"], runs["bf16"]).to_meta(desc)


def release_model(
    source: str | Path,
    out: str | Path,
    half: bool = True,
    evaluate: bool = True,
    reproduce: str = REPRODUCE,
    refine_radius_mm: float | None = None,
) -> dict:
    """Write ``out`` from the model file ``source``; returns the held-out metrics (or {}).

    ``refine_radius_mm``: set the release's local joint refinement (``pose_net.refine``, 0 = off;
    None: as the source's config says).

    Raises:
        CheckpointError: ``source`` is not one of our model files.
    """
    source, out = Path(source), Path(out)
    obj = read_file(source)
    if not (isinstance(obj, Mapping) and obj.get("format") == FORMAT):
        raise CheckpointError(f"{source}: not a selfpose3d model file (train one with `selfpose3d train`)")
    model, _ = load_model_file(source)
    model.config = with_refine_radius(model.config, refine_radius_mm)
    state = {k: (v.half() if half and v.is_floating_point() else v) for k, v in model.state_dict().items()}
    old_meta = dict(obj.get("meta") or {})
    meta = {k: old_meta[k] for k in ("stage", "epoch", "step", "train_config", "input") if k in old_meta}
    meta.update(source=str(source), reproduce=reproduce, weights_dtype="float16" if half else "float32")
    out.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "config": model.config.to_dict(),
        "state_dict": state,
        "meta": meta,
    }
    torch.save(payload, out)
    metrics: dict = {}
    if evaluate:
        from training.ssl.synthetic_eval import evaluate_default

        metrics = evaluate_default(checkpoint=out)
        payload["meta"]["heldout_metrics"] = json.dumps(metrics)
        payload["meta"]["bf16_check"] = json.dumps(bf16_deviation_check(out))
        torch.save(payload, out)
    return metrics
