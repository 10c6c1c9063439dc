"""The resumable optimisation loop of fit-rig's training stages (``rig`` and ``ssl``).

``STAGE/checkpoint.pt`` holds the weights, optimiser states, step, elapsed time and random states
every ``checkpoint_every`` steps (written atomically), so Ctrl-C or a crash loses at most that many
steps; ``STAGE/model.pt`` (our checkpoint format, meta ``input = detections``) is written when the
stage ends, and ``STAGE/done.json`` last: its presence marks the stage done.
"""

from __future__ import annotations

import json
import math
import pickle
import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from engine.checkpoints import load_model_file, save_checkpoint
from engine.model import SelfPose3dModel
from training.runner import Progress

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
    """Adam on the root net and the pose net (learning rates ``lrs``), cosine decay over ``steps``.

    Resumes from ``folder/checkpoint.pt`` when present. ``on_step(step)`` runs after every step
    (tests interrupt a stage with it). Returns the ``done.json`` record.
    """
    folder.mkdir(parents=True, exist_ok=True)
    opts = [
        (torch.optim.Adam(model.root_net.parameters(), lr=lrs[0]), lrs[0]),
        (torch.optim.Adam(model.pose_net.parameters(), lr=lrs[1]), lrs[1]),
    ]
    ckpt, log_path = folder / "checkpoint.pt", folder / "log.jsonl"
    start, elapsed = 0, 0.0
    if ckpt.is_file():
        state = torch.load(ckpt, map_location="cpu", weights_only=False)
        model.load_state_dict(state["model"])
        for (opt, _), sd in zip(opts, state["opts"]):
            opt.load_state_dict(sd)
        rng.bit_generator.state = pickle.loads(state["rng"])
        gen.set_state(state["gen"])
        start, elapsed = int(state["step"]), float(state["elapsed_s"])
        print(f"[{name}] resumed from {ckpt} at step {start}/{steps}", flush=True)
    else:
        log_path.write_text("")

    def save(step: int) -> None:
        state = {
            "model": model.state_dict(),
            "opts": [opt.state_dict() for opt, _ in opts],
            "rng": pickle.dumps(rng.bit_generator.state),
            "gen": gen.get_state(),
            "step": step,
            "elapsed_s": elapsed,
        }
        torch.save(state, ckpt.with_suffix(".tmp"))
        ckpt.with_suffix(".tmp").replace(ckpt)

    bar = Progress(steps, f"[{name}]", every=max(1, steps // 40))
    model.train()
    recent: list[dict] = []
    t0 = time.time() - elapsed
    t_run = time.perf_counter()
    with log_path.open("a") as logf:
        for step in range(start + 1, steps + 1):
            for opt, lr in opts:
                for group in opt.param_groups:
                    group["lr"] = lr * 0.5 * (1 + math.cos(math.pi * (step - 1) / max(1, steps)))
            loss, values = step_fn(step)
            for opt, _ in opts:
                opt.zero_grad(set_to_none=True)
            if loss.requires_grad:
                loss.backward()
                for opt, _ in opts:
                    opt.step()
            elapsed = time.time() - t0
            rec = {"step": step, "s": round(elapsed, 1), "loss": float(loss.item()), **values}
            recent = (recent + [rec])[-20:]
            logf.write(json.dumps(rec) + "\n")
            logf.flush()
            # the bar's ETA is this run's rate; after a resume it counts from the resumed step
            bar.t0 = t_run - (time.perf_counter() - t_run) * start / max(1, step - start)
            bar.update(step, " ".join(f"{k}={_mean(recent, k):.4g}" for k in rec if k not in ("step", "s")))
            if step % checkpoint_every == 0:
                save(step)
            if on_step is not None:
                on_step(step)
    save(steps)
    model.eval()
    save_checkpoint(folder / "model.pt", model, {**meta, "input": "detections", "steps": steps})
    done = {
        "stage": name,
        "steps": steps,
        "train_s": round(elapsed, 1),
        "threads": torch.get_num_threads(),
        "last_20_steps": {
            k: round(_mean(recent, k), 5) for k in (recent[-1] if recent else {}) if k not in ("step", "s")
        },
    }
    atomic_json(folder / "done.json", done)
    return done


def _mean(records: list[dict], key: str) -> float:
    vals = [r[key] for r in records if r.get(key) is not None and np.isfinite(r[key])]
    return float(np.mean(vals)) if vals else float("nan")
