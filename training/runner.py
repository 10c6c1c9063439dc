"""The one stage runner every trainer configures, with its progress line and JSONL step log.

A training stage describes itself as a :class:`Stage` (the modules it trains, its optimiser and
parameter groups, the loss of one batch, its data order, its learning-rate factor, its
evaluation hook and how it writes a model file) and a :class:`Schedule` (epochs, steps per
epoch, when to log, checkpoint and evaluate, a time budget). :class:`StageRunner` owns the rest:

* the loop over epochs and steps: learning rate set from the stage's factor, forward, backward,
  optional gradient clipping, optimiser step;
* checkpoint/resume: ``checkpoint.pt`` (modules, optimiser, random generators, position, best
  metric, the last step's values) every ``checkpoint_every`` steps, at every epoch end and at the
  end; a crash or Ctrl-C loses at most the steps since the last one, and a resumed run continues
  at the same step with the same data order (the stage's ``batches(epoch, first_step)``);
* a progress line with rate and ETA (:class:`Progress`) and one JSON line per step
  (:class:`StepLog`);
* evaluation at epoch ends and/or every n steps, best-model selection by the stage's score.

Used by the SSL stage trainer (:mod:`training.ssl.trainer`), the Shelf root/pose stages
(:mod:`training.shelf.trainer`) and the detection-route trainer
(:mod:`training.detection_route.trainer`). Under ``torchrun`` only rank 0 writes files.
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

import numpy as np
import torch

from calib.common.errors import CheckpointError, ConfigError

RESUME_FILE = "checkpoint.pt"
RESUME_FORMAT = "selfpose3d-stage-resume/1"
_BOOKKEEPING = ("stage", "epoch", "step", "lr", "sec", "s")


class Progress:
    """A one-line progress report with elapsed time, rate and ETA on stderr (no tqdm dependency).

    Args:
        total: the count at completion.
        prefix: text before the count.
        stream: where to write (a terminal gets one rewritten line).
        every: report every this many counts (and the last).
        start: the count this report starts from (a resumed run: the rate counts only new work).
    """

    def __init__(self, total: int, prefix: str, stream=sys.stderr, every: int = 1, start: int = 0):
        self.total, self.prefix, self.stream, self.every = total, prefix, stream, max(1, every)
        self.start = start
        self.t0 = time.perf_counter()
        self.tty = hasattr(stream, "isatty") and stream.isatty()

    def update(self, done: int, text: str, eta_cap_s: float | None = None) -> None:
        """Report ``done`` of ``total``; ``eta_cap_s`` bounds the ETA (a time budget that ends first)."""
        if done % self.every and done != self.total:
            return
        dt = time.perf_counter() - self.t0
        rate = dt / max(done - self.start, 1)
        eta = rate * (self.total - done)
        if eta_cap_s is not None:
            eta = min(eta, max(0.0, eta_cap_s))
        line = f"{self.prefix} {done}/{self.total} [{dt:6.0f}s, {rate:5.2f}s/it, eta {eta:5.0f}s] {text}"
        self.stream.write(("\r" + line) if self.tty else line + "\n")
        if self.tty and done == self.total:
            self.stream.write("\n")
        self.stream.flush()


class StepLog:
    """``log.jsonl`` of a run folder: one JSON record per line (steps and evaluations).

    Args:
        path: the file (its folder is created on the first write).
        enabled: False on the non-main ranks of a distributed run (nothing is written).
    """

    def __init__(self, path: Path, enabled: bool = True):
        self.path, self.enabled = Path(path), enabled

    def reset(self) -> None:
        """Start the log empty (a fresh run)."""
        if self.enabled:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.path.write_text("", encoding="utf-8")

    def keep_until(self, step: int) -> None:
        """Drop the records after ``step`` (steps a killed run did after its last checkpoint) and
        lines cut short by the kill, so a resumed run's log holds each step once."""
        if not (self.enabled and self.path.is_file()):
            return
        kept = []
        for line in self.path.read_text(encoding="utf-8").splitlines():
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(record, dict) and int(record.get("step", 0)) <= step:
                kept.append(line + "\n")
        self.path.write_text("".join(kept), encoding="utf-8")

    def write(self, record: Mapping[str, Any]) -> None:
        if self.enabled:
            with self.path.open("a", encoding="utf-8") as fh:
                fh.write(json.dumps(record) + "\n")


@dataclass(frozen=True)
class Position:
    """Where a run is: the step about to be taken (0-based counts of what is done).

    Attributes:
        epoch: current epoch (0-based).
        step_in_epoch: steps done in this epoch.
        global_step: steps done in the whole stage (across resumed runs).
        total_steps: ``epochs * steps_per_epoch``.
        elapsed_s: training seconds so far (across resumed runs).
    """

    epoch: int
    step_in_epoch: int
    global_step: int
    total_steps: int
    elapsed_s: float


@dataclass(frozen=True)
class Schedule:
    """How long a stage runs and when it logs, checkpoints and evaluates.

    Attributes:
        epochs: epochs (>= 1).
        steps_per_epoch: steps per epoch (>= 0; 0: nothing to do).
        log_every: a progress line every this many steps of an epoch (and its last).
        checkpoint_every: also write the resume file every this many steps (0: epoch ends and the
            end only). Without a resume path nothing is written.
        eval_every_epochs: evaluate after every n-th epoch (0: never at epoch ends).
        eval_every_steps: evaluate every n steps (0: never mid-epoch).
        grad_clip: max gradient norm over the optimiser's parameters (0: off).
        time_budget_s: stop (and save) once this many training seconds have passed (0: no limit).
    """

    epochs: int = 1
    steps_per_epoch: int = 0
    log_every: int = 1
    checkpoint_every: int = 0
    eval_every_epochs: int = 0
    eval_every_steps: int = 0
    grad_clip: float = 0.0
    time_budget_s: float = 0.0

    def __post_init__(self) -> None:
        for name in ("steps_per_epoch", "checkpoint_every", "eval_every_epochs", "eval_every_steps"):
            if getattr(self, name) < 0:
                raise ConfigError(f"must be >= 0, got {getattr(self, name)}", field=name)
        if self.epochs < 1:
            raise ConfigError(f"must be >= 1, got {self.epochs}", field="epochs")
        for name in ("grad_clip", "time_budget_s"):
            if getattr(self, name) < 0:
                raise ConfigError(f"must be >= 0 (0 = off), got {getattr(self, name)}", field=name)

    @property
    def total_steps(self) -> int:
        return self.epochs * self.steps_per_epoch


StepFn = Callable[[Any, Position], "tuple[torch.Tensor, Mapping[str, float | None]]"]


@dataclass
class Stage:
    """What a stage gives the runner (it owns no loop).

    Attributes:
        name: the stage's name in the log, the progress line and the resume file.
        modules: the modules trained, by name (their state is in the resume file).
        optimizer: over the stage's parameter groups; each group's ``lr`` is its base rate.
        step: ``step(batch, position) -> (loss, values)``: the loss to minimise and extra values
            to log (floats, or None for "not measured this step").
        batches: ``batches(epoch, first_step)``: the epoch's batches from step ``first_step`` on
            (the same order on a resumed run); None: the batch is the step's index in its epoch.
        lr_factor: ``lr_factor(position)``: multiplies every group's base rate before each step
            (see :func:`cosine_factor`, :func:`multistep_factor`); None: constant rate.
        generators: random generators the steps draw from (their state is in the resume file).
        train_mode: puts the modules in training mode (before every epoch and after each
            evaluation); None: ``module.train()`` for each.
        evaluate: ``evaluate() -> metrics`` (floats); None: no evaluation.
        score: ``score(metrics)``: the higher the better (the best model); None: no selection.
        save_model: ``save_model(kind, metrics)`` writes a model file; kinds ``"best"`` (a better
            score) and ``"last"`` (every epoch end). None: the stage writes its model after the run.
        report: the metrics named on the evaluation line (all of them are logged); empty: all.
        meta: JSON-able facts kept in the resume file (e.g. the resolved config).
    """

    name: str
    modules: dict[str, torch.nn.Module]
    optimizer: torch.optim.Optimizer
    step: StepFn
    batches: Callable[[int, int], Iterable[Any]] | None = None
    lr_factor: Callable[[Position], float] | None = None
    generators: dict[str, Any] = field(default_factory=dict)
    train_mode: Callable[[], None] | None = None
    evaluate: Callable[[], dict[str, float]] | None = None
    score: Callable[[dict[str, float]], float] | None = None
    save_model: Callable[[str, "dict[str, float] | None"], Path] | None = None
    report: tuple[str, ...] = ()
    meta: dict[str, Any] = field(default_factory=dict)


def cosine_factor(total_steps: int, time_budget_s: float = 0.0) -> Callable[[Position], float]:
    """Cosine decay from 1 to 0 over ``total_steps`` (or the time budget, whichever ends first)."""

    def factor(p: Position) -> float:
        frac = p.global_step / max(1, total_steps)
        if time_budget_s:
            frac = max(frac, p.elapsed_s / time_budget_s)
        return 0.5 * (1.0 + math.cos(math.pi * min(frac, 1.0)))

    return factor


def multistep_factor(milestones: Iterable[int], gamma: float) -> Callable[[Position], float]:
    """``gamma`` to the power of the number of ``milestones`` (epochs) reached (as MultiStepLR)."""
    steps = sorted(int(m) for m in milestones)

    def factor(p: Position) -> float:
        return gamma ** sum(p.epoch >= m for m in steps)

    return factor


@dataclass(frozen=True)
class RunResult:
    """What a run did: steps done (in total), epochs done, training seconds (across resumed runs),
    the last step's record, the best score (None without one), whether the time budget ended it."""

    steps: int
    epochs: int
    seconds: float
    last: dict[str, Any]
    best: float | None
    stopped_early: bool


class StageRunner:
    """Runs a :class:`Stage` on a :class:`Schedule`.

    Args:
        stage: what the stage trains and how.
        schedule: how long and when to log, checkpoint and evaluate.
        out_dir: run folder: ``log.jsonl``, ``metrics.json`` (latest evaluation), the resume file.
        resume_file: the resume file's name in ``out_dir``; None: no checkpoints at all.
        resume: continue from an existing resume file (False: start afresh, overwrite it).
        keep_log: append to ``log.jsonl`` even when starting afresh (stages sharing one log).
        rank: this process's rank; only rank 0 writes files and reports.
        stream: where the progress and evaluation lines go.
    """

    def __init__(
        self,
        stage: Stage,
        schedule: Schedule,
        out_dir: str | Path,
        resume_file: str | None = RESUME_FILE,
        resume: bool = True,
        keep_log: bool = False,
        rank: int = 0,
        stream=sys.stderr,
    ):
        self.stage, self.schedule = stage, schedule
        self.out_dir = Path(out_dir)
        self.resume_path = self.out_dir / resume_file if resume_file else None
        self.resume, self.keep_log, self.rank, self.stream = resume, keep_log, rank, stream
        self.log = StepLog(self.out_dir / "log.jsonl", enabled=self.is_main)
        for group in stage.optimizer.param_groups:
            group.setdefault("initial_lr", group["lr"])
        self.epoch = 0
        self.step_in_epoch = 0
        self.global_step = 0
        self.best = -math.inf
        self.last: dict[str, Any] = {}
        self.saved_step: int | None = None  # the step of the last resume file written
        self._evaluated: tuple[int, dict[str, float]] | None = None  # (step, metrics) of the last evaluation
        self._seconds_before = 0.0
        self._t_start = time.perf_counter()

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def seconds(self) -> float:
        """Training seconds of this stage so far, across resumed runs."""
        return self._seconds_before + time.perf_counter() - self._t_start

    def position(self) -> Position:
        return Position(self.epoch, self.step_in_epoch, self.global_step, self.schedule.total_steps, self.seconds())

    # ------------------------------------------------------------------ resume file

    def save_resume(self, seconds: float | None = None) -> Path | None:
        """Write the resume file (atomically): everything needed to continue exactly here.

        Args:
            seconds: the training seconds to record (default: now).
        """
        if self.resume_path is None or not self.is_main:
            return None
        st = self.stage
        state = {
            "format": RESUME_FORMAT,
            "stage": st.name,
            "epoch": self.epoch,
            "step_in_epoch": self.step_in_epoch,
            "global_step": self.global_step,
            "steps_per_epoch": self.schedule.steps_per_epoch,
            "best": self.best,
            "seconds": self.seconds() if seconds is None else seconds,
            "last": json.dumps(self.last),
            "meta": json.dumps(st.meta),
            "modules": {name: m.state_dict() for name, m in st.modules.items()},
            "optimizer": st.optimizer.state_dict(),
            "generators": {name: _generator_state(g) for name, g in st.generators.items()},
            "torch_rng": torch.get_rng_state(),
        }
        self.out_dir.mkdir(parents=True, exist_ok=True)
        tmp = self.resume_path.with_suffix(".tmp")
        torch.save(state, tmp)
        os.replace(tmp, self.resume_path)
        self.saved_step = self.global_step
        return self.resume_path

    def load_resume(self) -> bool:
        """Continue from the resume file if there is one (and ``resume``); True if it did."""
        path = self.resume_path
        if not (self.resume and path is not None and path.is_file()):
            return False
        st = self.stage
        state = read_resume_file(path, st.name)
        try:
            for name, module in st.modules.items():
                module.load_state_dict(state["modules"][name])
            st.optimizer.load_state_dict(state["optimizer"])
            for name, gen in st.generators.items():
                _set_generator_state(gen, state["generators"][name])
        except (KeyError, RuntimeError, ValueError) as exc:
            raise CheckpointError(
                f"does not fit this stage's modules/optimiser ({type(exc).__name__}: {str(exc).splitlines()[0]})",
                file=path,
                fix="it is from another configuration: use another output folder (or start afresh)",
            ) from None
        if self.is_main:  # the other ranks keep their own seeds (as in a fresh run)
            torch.set_rng_state(state["torch_rng"])
        self.global_step = int(state["global_step"])
        if int(state["steps_per_epoch"]) == self.schedule.steps_per_epoch:
            self.epoch, self.step_in_epoch = int(state["epoch"]), int(state["step_in_epoch"])
        else:  # the step count changed (a step-based stage run on for more steps)
            self.epoch, self.step_in_epoch = divmod(self.global_step, max(1, self.schedule.steps_per_epoch))
        self.best = float(state["best"])
        self.last = json.loads(state["last"])
        self._seconds_before = float(state["seconds"])
        self.saved_step = self.global_step
        if self.is_main:
            self.stream.write(f"[{st.name}] resumed from {path} at step {self.global_step}\n")
        return True

    # ------------------------------------------------------------------ loop

    def run(self) -> RunResult:
        """Train every remaining step (resuming first when a resume file exists)."""
        sc = self.schedule
        if self.is_main:
            self.out_dir.mkdir(parents=True, exist_ok=True)
        if self.load_resume():
            self.log.keep_until(self.global_step)
        elif not self.keep_log:
            self.log.reset()
        self._t_start = time.perf_counter()
        stopped = False
        try:
            while self.epoch < sc.epochs and sc.steps_per_epoch and not stopped:
                stopped = self._run_epoch()
                if not stopped:
                    self._end_epoch()
        except KeyboardInterrupt:
            if self.is_main:
                where = f"{self.resume_path} (step {self.saved_step})" if self.saved_step is not None else "nothing"
                self.stream.write(
                    f"\n[{self.stage.name}] interrupted at step {self.global_step}; resumes from {where}\n"
                )
            raise
        seconds = self.seconds()
        self.save_resume(seconds)  # its seconds are the result's, so a re-run adds to them
        best = self.best if self.best > -math.inf else None
        return RunResult(self.global_step, self.epoch, seconds, dict(self.last), best, stopped)

    def _run_epoch(self) -> bool:
        """The rest of the current epoch; True when the time budget stopped it."""
        st, sc = self.stage, self.schedule
        steps = sc.steps_per_epoch
        self._train_mode()
        prefix = f"[{st.name}]" + (f" epoch {self.epoch + 1}/{sc.epochs}" if sc.epochs > 1 else "")
        progress = Progress(steps, prefix, self.stream, start=self.step_in_epoch)
        batches = st.batches(self.epoch, self.step_in_epoch) if st.batches else range(self.step_in_epoch, steps)
        window: list[Mapping[str, Any]] = []
        for batch in batches:
            if self.step_in_epoch >= steps:
                break
            record = self._step(batch)
            window.append(record)
            over = bool(sc.time_budget_s) and self.seconds() >= sc.time_budget_s
            if self.is_main and (self.step_in_epoch % sc.log_every == 0 or self.step_in_epoch == steps or over):
                cap = sc.time_budget_s - self.seconds() if sc.time_budget_s else None
                progress.update(self.step_in_epoch, _window_text(window), eta_cap_s=cap)
                window = []
            if sc.checkpoint_every and self.global_step % sc.checkpoint_every == 0:
                self.save_resume()
            if sc.eval_every_steps and self.global_step % sc.eval_every_steps == 0:
                self._evaluate()
                self._train_mode()
            if over:
                if self.is_main:
                    self.stream.write(
                        f"[{st.name}] time budget {sc.time_budget_s:.0f} s reached at step {self.global_step}\n"
                    )
                return True
        return False

    def _step(self, batch: Any) -> dict[str, Any]:
        st, sc = self.stage, self.schedule
        t0 = time.perf_counter()
        position = self.position()
        if st.lr_factor is not None:
            factor = st.lr_factor(position)
            for group in st.optimizer.param_groups:
                group["lr"] = group["initial_lr"] * factor
        loss, values = st.step(batch, position)
        st.optimizer.zero_grad(set_to_none=True)
        if loss.requires_grad:  # a step with nothing to learn from (e.g. nobody in the frame) only counts
            loss.backward()
            if sc.grad_clip > 0:
                params = [p for g in st.optimizer.param_groups for p in g["params"]]
                torch.nn.utils.clip_grad_norm_(params, sc.grad_clip)
            st.optimizer.step()
        self.step_in_epoch += 1
        self.global_step += 1
        record = {"stage": st.name, "epoch": self.epoch, "step": self.global_step, "loss": float(loss.detach())}
        record.update({k: (None if v is None else float(v)) for k, v in values.items()})
        record.update(
            lr=st.optimizer.param_groups[0]["lr"],
            sec=round(time.perf_counter() - t0, 3),
            s=round(self.seconds(), 1),
        )
        self.log.write(record)
        self.last = record
        return record

    def _end_epoch(self) -> None:
        st, sc = self.stage, self.schedule
        self.epoch += 1
        self.step_in_epoch = 0
        if not self.is_main:
            return
        metrics = None
        if sc.eval_every_epochs and self.epoch % sc.eval_every_epochs == 0:
            done_now = self._evaluated is not None and self._evaluated[0] == self.global_step
            metrics = self._evaluated[1] if done_now else self._evaluate()  # not twice for one step
        if st.save_model is not None:
            st.save_model("last", metrics)  # a usable model even if the run is cut short
        self.save_resume()

    def _evaluate(self) -> dict[str, float] | None:
        """Run the stage's evaluation (rank 0), log it, keep the best model."""
        st = self.stage
        if st.evaluate is None or not self.is_main:
            return None
        metrics = {k: float(v) for k, v in st.evaluate().items()}
        self.log.write({"stage": st.name, "epoch": self.epoch, "step": self.global_step, "val": metrics})
        text = " ".join(f"{k}={v:.4g}" for k, v in metrics.items() if k in st.report or not st.report)
        self.stream.write(f"[{st.name}] epoch {self.epoch} step {self.global_step} val: {text}\n")
        self.stream.flush()
        (self.out_dir / "metrics.json").write_text(json.dumps(metrics, indent=2), encoding="utf-8")
        self._evaluated = (self.global_step, metrics)
        if st.score is not None:
            score = float(st.score(metrics))
            if score > self.best:
                self.best = score
                if st.save_model is not None:
                    st.save_model("best", metrics)
        return metrics

    def _train_mode(self) -> None:
        if self.stage.train_mode is not None:
            self.stage.train_mode()
        else:
            for module in self.stage.modules.values():
                module.train()


def read_resume_file(path: Path, stage: str | None = None) -> dict[str, Any]:
    """The state of a runner's resume file; a corrupt or foreign file raises CheckpointError."""
    fix = "delete it (or start afresh: --no-resume / --restart) to train the stage from its start"
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unpickling failure is a bad resume file
        raise CheckpointError(
            f"cannot be read as a resume file ({type(exc).__name__}: corrupt, cut short or not a torch file)",
            file=path,
            fix=fix,
        ) from None
    if not isinstance(state, dict) or state.get("format") != RESUME_FORMAT:
        raise CheckpointError(f"is not a resume file of the stage runner (format {RESUME_FORMAT})", file=path, fix=fix)
    if stage is not None and state.get("stage") != stage:
        raise CheckpointError(
            f"is the resume file of stage '{state.get('stage')}', not '{stage}'",
            file=path,
            fix="use another output folder for this stage, or " + fix,
        )
    return state


def _generator_state(gen: Any) -> Any:
    if isinstance(gen, torch.Generator):
        return gen.get_state()
    if isinstance(gen, np.random.Generator):
        return json.dumps(gen.bit_generator.state)
    raise TypeError(f"not a random generator: {type(gen).__name__}")


def _set_generator_state(gen: Any, state: Any) -> None:
    if isinstance(gen, torch.Generator):
        gen.set_state(state)
    else:
        gen.bit_generator.state = json.loads(state)


def _window_text(window: list[Mapping[str, Any]]) -> str:
    """Mean of each logged value over the steps since the last progress line."""
    keys = [k for k in window[-1] if k not in _BOOKKEEPING]
    means = {}
    for k in keys:
        vals = [w[k] for w in window if w.get(k) is not None]
        if vals:
            means[k] = float(np.mean(vals))
    return " ".join(f"{k}={v:.4g}" for k, v in means.items())
