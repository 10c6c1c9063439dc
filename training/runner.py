"""What every trainer shares: a progress line with ETA, a JSONL step log, and the optimisation loop.

The Shelf trainers (:mod:`training.shelf.trainer`) configure :func:`run_steps` with their
per-step loss; the SSL stage trainer (:mod:`training.ssl.trainer`) reports through
:class:`Progress`.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Callable, Iterable

import torch


class Progress:
    """A one-line progress report with elapsed time, rate and ETA on stderr (no tqdm dependency)."""

    def __init__(self, total: int, prefix: str, stream=sys.stderr, every: int = 1):
        self.total, self.prefix, self.stream, self.every = total, prefix, stream, max(1, every)
        self.t0 = time.perf_counter()
        self.tty = hasattr(stream, "isatty") and stream.isatty()

    def update(self, done: int, text: str) -> None:
        if done % self.every and done != self.total:
            return
        dt = time.perf_counter() - self.t0
        rate = dt / max(done, 1)
        eta = rate * (self.total - done)
        line = f"{self.prefix} {done}/{self.total} [{dt:6.0f}s, {rate:5.2f}s/it, eta {eta:5.0f}s] {text}"
        self.stream.write(("\r" + line) if self.tty else line + "\n")
        if self.tty and done == self.total:
            self.stream.write("\n")
        self.stream.flush()


class StepLog:
    """Appends one JSON record per step to ``out/log.jsonl`` and prints every ``every``-th step.

    Args:
        out: run folder (``log.jsonl`` is started empty).
        every: print every this many steps (and the last).
    """

    def __init__(self, out: Path, every: int):
        self.path = out / "log.jsonl"
        self.path.write_text("")
        self.every = max(1, every)
        self.t0 = time.time()

    def __call__(self, stage: str, step: int, total: int, **values: float) -> None:
        rec = {
            "stage": stage,
            "step": step,
            "s": round(time.time() - self.t0, 1),
            **{k: float(v) for k, v in values.items()},
        }
        with self.path.open("a") as fh:
            fh.write(json.dumps(rec) + "\n")
        if step % self.every == 0 or step == total:
            print(
                f"[{stage}] {step}/{total} " + " ".join(f"{k}={v:.5g}" for k, v in values.items()) + f" ({rec['s']} s)",
                flush=True,
            )


StepFn = Callable[[int], "tuple[torch.Tensor, dict[str, float]]"]


def run_steps(
    stage: str,
    net: torch.nn.Module,
    params: Iterable[torch.nn.Parameter],
    lr: float,
    steps: int,
    step_fn: StepFn,
    log: StepLog,
) -> None:
    """The optimisation loop of a stage: Adam with a cosine schedule over ``steps``.

    Args:
        stage: name in the log.
        net: the module trained (in train mode during the loop, eval mode after).
        params: its parameters to optimise.
        lr: initial learning rate.
        steps: number of steps (0: nothing happens).
        step_fn: ``step_fn(step) -> (loss, values)``: the stage's loss for step 1..steps and the
            extra values to log (plain floats).
        log: the run's :class:`StepLog`.
    """
    if steps == 0:
        return
    net.train()
    opt = torch.optim.Adam(params, lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, max(1, steps))
    for step in range(1, steps + 1):
        loss, values = step_fn(step)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        log(stage, step, steps, loss=loss.item(), **values)
    net.eval()
