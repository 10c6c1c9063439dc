"""Supervisor: ready handshake naming laggards, failure detection, orderly and forced stops."""

from __future__ import annotations

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
        with pytest.raises(SupervisorError, match=r"\['slowpoke'\] did not report ready"):
            sup.wait_ready()
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
