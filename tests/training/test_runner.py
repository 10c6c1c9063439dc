"""The shared stage runner on a tiny model (CPU, well under a second each): resume after an
interruption equals an uninterrupted run, evaluation hooks and best-model selection, the
progress line with ETA, typed errors for bad resume files and schedules, the lr factors."""

from __future__ import annotations

import io
import json
import re

import pytest
import torch

from calib.common.errors import CheckpointError, ConfigError
from training.runner import (
    RESUME_FILE,
    Position,
    Schedule,
    Stage,
    StageRunner,
    cosine_factor,
    multistep_factor,
)

X = torch.linspace(-1, 1, 24 * 3).reshape(24, 3)  # a fixed toy dataset: 24 samples of 3 features
Y = X @ torch.tensor([[0.5], [-1.0], [2.0]]) + 0.3


class Toy:
    """A toy stage: a linear net, a shuffled epoch order, a noise generator drawn in each step."""

    def __init__(self, name: str = "toy", interrupt_at: int | None = None, width: int = 3):
        torch.manual_seed(0)
        self.net = torch.nn.Linear(width, 1)
        self.gen = torch.Generator().manual_seed(5)
        self.interrupt_at, self.calls = interrupt_at, 0
        self.stage = Stage(
            name,
            {"net": self.net},
            torch.optim.Adam(self.net.parameters(), lr=0.05),
            step=self.step,
            batches=self.batches,
            lr_factor=cosine_factor(12),
            generators={"noise": self.gen},
        )

    def batches(self, epoch: int, first_step: int):
        order = torch.randperm(len(X), generator=torch.Generator().manual_seed(100 + epoch)).tolist()
        return [order[s * 6 : s * 6 + 6] for s in range(first_step, 4)]

    def step(self, batch: list[int] | int, position: Position):
        self.calls += 1
        if self.interrupt_at is not None and position.global_step + 1 == self.interrupt_at:
            raise KeyboardInterrupt
        batch = batch if isinstance(batch, list) else [batch]
        noise = 0.01 * torch.randn((len(batch), 1), generator=self.gen)
        loss = torch.mean((self.net(X[batch]) - Y[batch] - noise) ** 2)
        return loss, {"half": float(loss.detach()) / 2}


SCHEDULE = Schedule(epochs=3, steps_per_epoch=4, log_every=2, checkpoint_every=3)


def _run(toy: Toy, out, schedule: Schedule = SCHEDULE, **kw):
    return StageRunner(toy.stage, schedule, out, stream=io.StringIO(), **kw).run()


def test_resume_after_an_interruption_equals_an_uninterrupted_run(tmp_path):
    straight = Toy()
    result = _run(straight, tmp_path / "a")
    assert result.steps == 12 and result.epochs == 3

    cut = Toy(interrupt_at=8)  # Ctrl-C in step 8: steps 1-7 done, the last checkpoint is at step 6
    stream = io.StringIO()
    with pytest.raises(KeyboardInterrupt):
        StageRunner(cut.stage, SCHEDULE, tmp_path / "b", stream=stream).run()
    assert "interrupted at step 7" in stream.getvalue() and "(step 6)" in stream.getvalue()
    resumed = Toy()  # a fresh process: new objects, state from the resume file only
    again = _run(resumed, tmp_path / "b")
    assert again.steps == 12 and resumed.calls == 6  # steps 7..12: only step 7 is redone

    for k, v in straight.net.state_dict().items():
        assert torch.equal(v, resumed.net.state_dict()[k]), k
    assert torch.equal(straight.gen.get_state(), resumed.gen.get_state())
    log = [json.loads(line) for line in (tmp_path / "b" / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == list(range(1, 13))  # step 7 once: the lost one was dropped
    ref = [json.loads(line) for line in (tmp_path / "a" / "log.jsonl").read_text().splitlines()]
    assert [r["loss"] for r in log] == [r["loss"] for r in ref]
    assert [r["lr"] for r in log] == [r["lr"] for r in ref]


def test_a_longer_step_count_resumes_where_the_shorter_run_ended(tmp_path):
    def step_based() -> Toy:
        toy = Toy()
        toy.stage.batches = None  # the batch is the step's index: a step-based stage (Shelf, detection route)
        return toy

    _run(step_based(), tmp_path, Schedule(epochs=1, steps_per_epoch=2))
    longer = step_based()
    result = _run(longer, tmp_path, Schedule(epochs=1, steps_per_epoch=5))
    assert result.steps == 5 and longer.calls == 3
    log = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == [1, 2, 3, 4, 5]


def test_eval_hook_runs_at_the_configured_points_and_keeps_the_best(tmp_path):
    toy = Toy()
    scores = iter([0.2, 0.5, 0.4, 0.7, 0.1, 0.3])
    evaluated, saved = [], []
    runner = None

    def evaluate():
        evaluated.append(runner.global_step)
        return {"score": next(scores), "other": 1.0}

    toy.stage.evaluate = evaluate
    toy.stage.score = lambda m: m["score"]
    toy.stage.save_model = lambda kind, metrics: saved.append((kind, runner.global_step, metrics and metrics["score"]))
    schedule = Schedule(epochs=3, steps_per_epoch=4, eval_every_steps=3, eval_every_epochs=1)
    stream = io.StringIO()
    runner = StageRunner(toy.stage, schedule, tmp_path, stream=stream)
    result = runner.run()
    assert evaluated == [3, 4, 6, 8, 9, 12]  # every 3 steps and at the epoch ends (step 12: once for both)
    assert result.best == 0.7
    assert [s for s in saved if s[0] == "best"] == [("best", 3, 0.2), ("best", 4, 0.5), ("best", 8, 0.7)]
    assert [s for s in saved if s[0] == "last"] == [("last", 4, 0.5), ("last", 8, 0.7), ("last", 12, 0.3)]
    assert json.loads((tmp_path / "metrics.json").read_text())["score"] == 0.3  # the latest evaluation
    vals = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines() if "val" in line]
    assert [v["step"] for v in vals] == [3, 4, 6, 8, 9, 12]
    assert "step 8 val: score=0.7 other=1" in stream.getvalue()
    # the best score survives a resume: a worse evaluation later does not replace the best model
    more = Toy()
    more.stage.evaluate = lambda: {"score": 0.6}
    more.stage.score = lambda m: m["score"]
    best_saves = []
    more.stage.save_model = lambda kind, metrics: kind == "best" and best_saves.append(metrics)
    result = _run(more, tmp_path, Schedule(epochs=4, steps_per_epoch=4, eval_every_epochs=1))
    assert result.steps == 16 and result.best == 0.7 and best_saves == []


def test_progress_line_shows_rate_and_eta(tmp_path):
    stream = io.StringIO()
    StageRunner(Toy().stage, SCHEDULE, tmp_path, stream=stream).run()
    lines = [line for line in stream.getvalue().splitlines() if "/4 [" in line]
    pattern = r"\[toy\] epoch (\d)/3 (\d)/4 \[\s*\d+s,\s*[\d.]+s/it, eta\s+\d+s\] loss=[\d.e-]+ half=[\d.e-]+$"
    assert [re.match(pattern, line).groups() for line in lines] == [(e, s) for e in "123" for s in "24"], (
        lines
    )  # every log_every=2 steps of each epoch


def test_corrupt_or_foreign_resume_files_raise_checkpoint_error_naming_the_file(tmp_path):
    path = tmp_path / RESUME_FILE
    path.write_bytes(b"not a torch file")
    with pytest.raises(CheckpointError, match=re.escape(str(path))):
        _run(Toy(), tmp_path)
    torch.save({"model": {}}, path)  # a model file, not a resume file
    with pytest.raises(CheckpointError, match=re.escape(str(path)) + ".*not a resume file"):
        _run(Toy(), tmp_path)
    path.unlink()
    _run(Toy(), tmp_path)
    with pytest.raises(CheckpointError, match="stage 'toy', not 'other'"):
        _run(Toy("other"), tmp_path)
    with pytest.raises(CheckpointError, match=re.escape(str(path)) + ".*does not fit"):
        _run(Toy(width=4), tmp_path)  # another configuration's weights
    assert _run(Toy("other"), tmp_path, resume=False).steps == 12  # --no-resume starts afresh


def test_time_budget_stops_and_saves(tmp_path):
    result = _run(Toy(), tmp_path, Schedule(epochs=3, steps_per_epoch=4, time_budget_s=1e-9))
    assert result.stopped_early and result.steps == 1
    assert torch.load(tmp_path / RESUME_FILE, weights_only=True)["global_step"] == 1


def test_non_main_ranks_write_nothing(tmp_path):
    result = _run(Toy(), tmp_path, rank=1)
    assert result.steps == 12 and not any(tmp_path.iterdir())


def test_bad_schedules_are_config_errors():
    with pytest.raises(ConfigError, match="epochs"):
        Schedule(epochs=0)
    with pytest.raises(ConfigError, match="checkpoint_every"):
        Schedule(checkpoint_every=-1)
    with pytest.raises(ConfigError, match="time_budget_s"):
        Schedule(time_budget_s=-5)


def test_lr_factors_match_the_torch_schedulers():
    def torch_lrs(make, n, per_epoch=1):
        opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
        sched, out = make(opt), []
        for _ in range(n):
            out.append(opt.param_groups[0]["lr"])
            opt.step()
            sched.step()
        return out

    cos = cosine_factor(10)
    expected = torch_lrs(lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, 10), 10)
    assert [cos(Position(0, i, i, 10, 0.0)) for i in range(10)] == pytest.approx(expected, abs=1e-12)
    multi = multistep_factor([2, 4], 0.1)
    expected = torch_lrs(lambda o: torch.optim.lr_scheduler.MultiStepLR(o, [2, 4], 0.1), 6)
    assert [multi(Position(e, 0, 0, 0, 0.0)) for e in range(6)] == pytest.approx(expected, rel=1e-12)
    budget = cosine_factor(100, time_budget_s=10.0)  # the time budget ends first
    assert budget(Position(0, 1, 1, 100, 5.0)) == pytest.approx(0.5)
