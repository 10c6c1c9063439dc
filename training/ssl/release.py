"""Turn a training run's model file into a small release file (the committed light model).

The release keeps what inference needs: config + weights (stored as float16, loaded back into the
fp32 model), drops the training-only attention net, and records in its meta where it came from
(source file, the reproduce command) and its held-out synthetic metrics, measured on the float16
weights actually written.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Mapping

import torch

from engine.checkpoints import FORMAT, FORMAT_VERSION, load_model_file, read_file
from engine.config import with_refine_radius
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
    model.config = with_refine_radius(model.config, refine_radius_mm)
    state = {k: (v.half() if half and v.is_floating_point() else v) for k, v in model.state_dict().items()}
    old_meta = dict(obj.get("meta") or {})
    meta = {k: old_meta[k] for k in ("stage", "epoch", "step", "train_config", "input") if k in old_meta}
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

