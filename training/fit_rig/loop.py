"""fit-rig's training stages (``rig`` and ``ssl``) on the one stage runner, and the stage records.

``STAGE/checkpoint.pt`` (the runner's resume file: weights, optimiser, step, elapsed time, random
states) is written every ``checkpoint_every`` steps, atomically, so Ctrl-C or a crash loses at most
that many steps; ``STAGE/model.pt`` (our checkpoint format, meta ``input = detections``) is written when the
stage ends, and ``STAGE/done.json`` last: its presence marks the stage done.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from engine.checkpoints import load_model_file, save_checkpoint
from engine.model import SelfPose3dModel
from training.detection_route.trainer import build_optimizer
from training.runner import Position, Schedule, Stage, StageRunner, cosine_factor

StepFn = Callable[[int], "tuple[torch.Tensor, dict[str, float]]"]


def atomic_json(path: Path, data: dict) -> None:
    """Write JSON to ``path`` through a temporary file (a reader never sees half of it)."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=1))
    tmp.replace(path)


def stage_done(folder: Path) -> dict | None:
    """The ``done.json`` record of a finished stage, or None."""
    path = folder / "done.json"
    return json.loads(path.read_text()) if path.is_file() else None


def start_model(init: str | Path) -> SelfPose3dModel:
    """The model a stage starts from (float16 releases load into the fp32 model)."""
    model, _ = load_model_file(init)
    return model


def train_stage(
    name: str,
    folder: Path,
    model: SelfPose3dModel,
    lrs: tuple[float, float],
    steps: int,
    step_fn: StepFn,
    *,
    checkpoint_every: int,
    rng: np.random.Generator,
    gen: torch.Generator,
    meta: dict,
    on_step: Callable[[int], None] | None = None,
) -> dict:
    """Adam on the root net and the pose net (learning rates ``lrs``), cosine decay over ``steps``,
    run by the one stage runner (:class:`training.runner.StageRunner`: resume file
    ``folder/checkpoint.pt`` every ``checkpoint_every`` steps, log, progress with ETA).

    ``on_step(step)`` runs after every step but the last (tests interrupt a stage with it).
    Returns the ``done.json`` record.
    """
    folder.mkdir(parents=True, exist_ok=True)
    optimizer = build_optimizer(model, *lrs)

    def step(batch: int, position: Position):
        if on_step is not None and position.global_step > 0:
            on_step(position.global_step)  # the previous step is done (and checkpointed when due)
        return step_fn(position.global_step + 1)

    stage = Stage(
        name=name,
        modules={"model": model},
        optimizer=optimizer,
        step=step,
        lr_factor=cosine_factor(steps),
        generators={"rng": rng, "gen": gen},
        meta={"steps": steps},
    )
    schedule = Schedule(
        epochs=1, steps_per_epoch=steps, log_every=max(1, steps // 40), checkpoint_every=checkpoint_every
    )
    result = StageRunner(stage, schedule, folder, resume_file="checkpoint.pt", stream=sys.stdout).run()
    model.eval()
    save_checkpoint(folder / "model.pt", model, {**meta, "input": "detections", "steps": steps})
    recent = _last_records(folder / "log.jsonl", 20)
    done = {
        "stage": name,
        "steps": steps,
        "train_s": round(result.seconds, 1),
        "threads": torch.get_num_threads(),
        "last_20_steps": {
            k: round(_mean(recent, k), 5)
            for k in (recent[-1] if recent else {})
            if k not in ("stage", "epoch", "step", "s", "sec", "lr")
        },
    }
    atomic_json(folder / "done.json", done)
    return done


def _last_records(log: Path, n: int) -> list[dict]:
    lines = log.read_text(encoding="utf-8").splitlines() if log.is_file() else []
    return [json.loads(line) for line in lines[-n:] if line.strip()]


def _mean(records: list[dict], key: str) -> float:
    vals = [r[key] for r in records if isinstance(r.get(key), (int, float)) and np.isfinite(r[key])]
    return float(np.mean(vals)) if vals else float("nan")
