"""Supervisor: ready handshake naming laggards, failure detection, orderly and forced stops."""

from __future__ import annotations

import os
import time
import uuid

import pytest

from app.supervisor import ChildSpec, Supervisor, SupervisorError
from tests.app import dummy_children as dc


@pytest.fixture
def endpoint(tmp_path):
    return f"ipc://{tmp_path}/status-{uuid.uuid4().hex[:8]}"


def test_all_ready_then_orderly_stop(endpoint):
    sup = Supervisor(endpoint, stop_timeout_s=5.0)
    sup.start([ChildSpec("a", dc.healthy), ChildSpec("b", dc.healthy, {"ready_after_s": 0.3})])
    sup.wait_ready()
    ticks = []
    rc = sup.run(duration_s=1.0, on_tick=ticks.append, tick_s=0.3)
    assert rc == 0
    assert sup.exit_codes() == {"a": 0, "b": 0}
    assert ticks and ticks[-1]["a"].state == "running" and ticks[-1]["a"].fps == 10.0


def test_laggard_is_named(endpoint):
    sup = Supervisor(endpoint)
    sup.start([ChildSpec("fine", dc.healthy), ChildSpec("slowpoke", dc.never_ready, ready_timeout_s=1.5)])
    try:
        lines = []
        with pytest.raises(SupervisorError, match=r"start-up timed out: slowpoke did not report ready within 2 s; "
                                                  r"still waiting for .*slowpoke \((starting|process start-up)"):
            sup.wait_ready(on_progress=lines.append, progress_s=0.5)
        assert lines and all(line.startswith("starting (") and "slowpoke (" in line for line in lines)
    finally:
        sup.stop()
    assert all(code is not None for code in sup.exit_codes().values())


def test_crashing_child_fails_the_run(endpoint):
    sup = Supervisor(endpoint)
    sup.start([ChildSpec("ok", dc.healthy), ChildSpec("cam", dc.crashes_after, {"after_s": 0.3})])
    sup.wait_ready()
    rc = sup.run(duration_s=10.0)
    assert rc == 1
    assert "cam" in sup.failure and ("camera exploded" in sup.failure or "exit code" in sup.failure)
    assert sup.exit_codes()["cam"] not in (0, None)


def test_stubborn_child_is_killed(endpoint):
    sup = Supervisor(endpoint, stop_timeout_s=0.5)
    sup.start([ChildSpec("stubborn", dc.ignores_sigterm)])
    sup.wait_ready()
    t0 = time.monotonic()
    assert sup.run(duration_s=0.2) == 0
    assert time.monotonic() - t0 < 5.0
    assert sup.exit_codes()["stubborn"] == -9


def test_stop_request_ends_run(endpoint):
    sup = Supervisor(endpoint)
    sup.start([ChildSpec("a", dc.healthy)])
    sup.wait_ready()
    sup.request_stop()
    assert sup.run(duration_s=30.0) == 0
    assert sup.exit_codes()["a"] == 0


def test_end_of_input_is_a_normal_end_even_during_start_up(endpoint):
    """Issue 23 item 2: a short replay that ends while another process still starts was reported
    as 'process(es) died while starting: capture (exit code 0)'."""
    sup = Supervisor(endpoint, stop_timeout_s=5.0)
    sup.start([ChildSpec("capture", dc.input_ends, {"sets": 7}), ChildSpec("slow", dc.never_ready)])
    try:
        assert sup.wait_ready() == "ended"
    finally:
        sup.stop()
    assert sup.input_ended() and sup.children["capture"].counts["published"] == 7
    assert sup.exit_codes()["capture"] == 0

    sup = Supervisor(endpoint.replace("status-", "status2-"), stop_timeout_s=5.0)
    sup.start([ChildSpec("ok", dc.healthy)])
    assert sup.wait_ready() == "ready"
    sup.start([ChildSpec("capture", dc.input_ends, {"sets": 3, "after_s": 1.0})])
    assert sup.wait_ready() == "ready"
    t0 = time.monotonic()
    assert sup.run(duration_s=30.0) == 0 and sup.failure is None
    assert time.monotonic() - t0 < 10.0 and sup.input_ended()


def test_crash_during_start_up_is_still_a_crash_with_its_last_error(endpoint):
    sup = Supervisor(endpoint)
    sup.start([ChildSpec("cam", dc.crashes_before_ready), ChildSpec("ok", dc.healthy)])
    try:
        with pytest.raises(SupervisorError, match=r"cam (reported an error|\(exit code 1; last error): "
                                                  r"RuntimeError: no such camera"):
            sup.wait_ready()
    finally:
        sup.stop()


def test_duration_elapsing_during_start_up_returns_promptly(endpoint):
    sup = Supervisor(endpoint)
    sup.start([ChildSpec("slow", dc.never_ready)])
    t0 = time.monotonic()
    try:
        assert sup.wait_ready(until=t0 + 1.0) == "duration"
    finally:
        sup.stop()
    assert time.monotonic() - t0 < 8.0
