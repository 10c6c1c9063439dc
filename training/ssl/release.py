"""Turn a training run's model file into a small release file (the committed light model).

The release keeps what inference needs: config + weights (stored as float16, loaded back into the
fp32 model), drops the training-only attention net, and records in its meta where it came from
(source file, the reproduce command) and its held-out synthetic metrics, measured on the float16
weights actually written.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Mapping

import torch

from engine.checkpoints import FORMAT, FORMAT_VERSION, load_model_file, read_file
from engine.config import ModelConfig
from engine.errors import CheckpointError

REPRODUCE = "selfpose3d train --stage all --recipe light --out runs/light && " \
            "selfpose3d release-model runs/light/posenet/model_best.pt --out models/light_synthetic.pt"


def release_model(source: str | Path, out: str | Path, half: bool = True, evaluate: bool = True,
                  reproduce: str = REPRODUCE, refine_radius_mm: float | None = None) -> dict:
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
    if refine_radius_mm is not None:
        model.config = with_refinement(model.config, refine_radius_mm)
    state = {k: (v.half() if half and v.is_floating_point() else v) for k, v in model.state_dict().items()}
    old_meta = dict(obj.get("meta") or {})
    meta = {k: old_meta[k] for k in ("stage", "epoch", "step", "train_config") if k in old_meta}
    meta.update(source=str(source), reproduce=reproduce, weights_dtype="float16" if half else "float32")
    out.parent.mkdir(parents=True, exist_ok=True)
    payload = {"format": FORMAT, "version": FORMAT_VERSION, "config": model.config.to_dict(),
               "state_dict": state, "meta": meta}
    torch.save(payload, out)
    metrics: dict = {}
    if evaluate:
        from training.ssl.synthetic_eval import evaluate_default

        metrics = evaluate_default(checkpoint=out)
        payload["meta"]["heldout_metrics"] = json.dumps(metrics)
        torch.save(payload, out)
    return metrics


def with_refinement(config: ModelConfig, radius_mm: float) -> ModelConfig:
    """``config`` with ``pose_net.refine.radius_mm`` set (validated; 0 = off)."""
    refine = dataclasses.replace(config.pose_net.refine, radius_mm=float(radius_mm))
    return dataclasses.replace(config, pose_net=dataclasses.replace(config.pose_net, refine=refine))


def set_refinement(path: str | Path, radius_mm: float, meta_updates: Mapping[str, str] | None = None) -> None:
    """Rewrite a model file's refinement setting in place (weights and meta kept; ``meta_updates`` merged)."""
    path = Path(path)
    obj = read_file(path)
    if not (isinstance(obj, Mapping) and obj.get("format") == FORMAT):
        raise CheckpointError(f"{path}: not a selfpose3d model file")
    config = with_refinement(ModelConfig.from_dict(obj["config"]), radius_mm)
    payload = dict(obj, config=config.to_dict(), meta={**dict(obj.get("meta") or {}), **dict(meta_updates or {})})
    torch.save(payload, path)
