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
        lines = []
        with pytest.raises(
            SupervisorError,
            match=r"start-up timed out: slowpoke did not report ready within 2 s; "
            r"still waiting for .*slowpoke \((starting|process start-up)",
        ):
            sup.wait_ready(on_progress=lines.append, progress_s=0.5)
        assert lines and all(line.startswith("starting (") and "slowpoke (" in line for line in lines)
    finally:
        sup.stop()
    assert all(code is not None for code in sup.exit_codes().values())


def test_crashing_child_fails_the_run(endpoint):
    sup = Supervisor(endpoint)
    # the crash comes 3 s after ready: on a loaded 2-core machine spawning "ok" took longer than 0.3 s,
    # and a crash before everyone is ready is (rightly) reported by wait_ready instead
    sup.start([ChildSpec("ok", dc.healthy), ChildSpec("cam", dc.crashes_after, {"after_s": 3.0})])
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


def _stranger_status(endpoint: str, process: str, state: str, key: bytes | None = None):
    """Another party connects to the status endpoint and keeps sending a status message for
    0.8 s (from a thread, while the supervisor polls); returns the started thread."""
    import threading

    from capture.bus import Publisher
    from capture.messages import Status

    def send() -> None:
        with Publisher(endpoint, bind=False, hwm=16, key=key) as pub:
            for _ in range(40):
                pub.send(Status(process, state, time.time_ns(), error="forged: inference exploded"))
                time.sleep(0.02)

    thread = threading.Thread(target=send, daemon=True)
    thread.start()
    return thread


def test_forged_error_status_does_not_stop_the_run(endpoint):
    """A stranger without the run's token sends `state: error` for a child: dropped, run goes on."""
    sup = Supervisor(endpoint, stop_timeout_s=5.0)
    sup.start([ChildSpec("inference", dc.healthy)])
    sup.wait_ready()
    _stranger_status(endpoint, "inference", "error")
    rc = sup.run(duration_s=1.5)
    assert rc == 0 and sup.failure is None
    assert sup._status.stats.unauthenticated >= 1
    assert sup.exit_codes() == {"inference": 0}


def test_even_an_authenticated_error_status_alone_does_not_stop_the_run(endpoint):
    """With the token (e.g. stolen), an error status is only recorded: the process is alive and
    beating, so the run continues until the grace period says it reported and did not exit."""
    sup = Supervisor(endpoint, stop_timeout_s=5.0, error_grace_s=30.0)
    sup.start([ChildSpec("inference", dc.healthy)])
    sup.wait_ready()
    _stranger_status(endpoint, "inference", "error", key=sup.token)
    assert sup.run(duration_s=1.5) == 0
    assert sup.children["inference"].error.startswith("forged")


def test_squatted_status_endpoint_is_refused(endpoint):
    """A process already bound to the endpoint: the supervisor refuses to start instead of sharing it."""
    from capture.bus import EndpointError
    from capture.bus import Subscriber

    with Subscriber(endpoint, [b""], bind=True, key=None):
        with pytest.raises(EndpointError, match="already bound"):
            Supervisor(endpoint)
    # once the squatter is gone (ZeroMQ closes its listener asynchronously) the endpoint is free again,
    # the leftover socket file included
    deadline = time.monotonic() + 5.0
    while True:
        try:
            Supervisor(endpoint).stop()
            break
        except EndpointError:
            assert time.monotonic() < deadline, "the endpoint stayed bound after its owner closed"
            time.sleep(0.05)


def test_private_run_dir_is_private_and_removed():
    from app.process import PrivateRun

    with PrivateRun() as run:
        assert (run.dir.stat().st_mode & 0o777) == 0o700
        assert run.endpoint("frames").startswith(f"ipc://{run.dir}/") and len(run.token) == 32
        assert PrivateRun().token != run.token
    assert not run.dir.exists()


def test_a_child_busy_in_native_code_still_honours_sigterm_promptly(endpoint):
    sup = Supervisor(endpoint, stop_timeout_s=10.0)
    sup.start([ChildSpec("inference", dc.busy_in_native_code)])
    sup.wait_ready()
    t0 = time.monotonic()
    assert sup.run(duration_s=0.3) == 0
    assert time.monotonic() - t0 < 5.0  # ~1 s grace, far from the 10 s kill
    assert sup.exit_codes()["inference"] == 143  # it exited itself, not SIGKILLed


def test_a_child_that_reports_an_error_and_lives_on_fails_after_the_grace(endpoint):
    sup = Supervisor(endpoint, stop_timeout_s=5.0, error_grace_s=0.5)
    sup.start([ChildSpec("cam", dc.errs_but_lives)])
    sup.wait_ready()
    assert sup.run(duration_s=10.0) == 1
    assert "reported an error and did not exit" in sup.failure and "sensor on fire" in sup.failure


def test_run_dirs_left_by_killed_runs_are_swept_live_ones_kept(tmp_path):
    import os
    import socket

    from app.process import PrivateRun, remove_stale_run_dirs

    stale, live, young, foreign = (PrivateRun(str(tmp_path)) for _ in range(4))
    dead_sock = socket.socket(socket.AF_UNIX)
    dead_sock.bind(str(stale.dir / "status"))
    dead_sock.close()  # the socket file of a killed run: nobody listens
    listening = socket.socket(socket.AF_UNIX)
    listening.bind(str(live.dir / "status"))
    listening.listen(1)
    (foreign.dir / "notes.txt").write_text("not a socket")
    old = time.time() - 3600
    for run in (stale, live, foreign):
        os.utime(run.dir, (old, old))
    try:
        assert remove_stale_run_dirs(str(tmp_path)) == [stale.dir]
        assert live.dir.exists() and young.dir.exists() and foreign.dir.exists()
    finally:
        listening.close()


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
        with pytest.raises(
            SupervisorError,
            match=r"died while starting: \['cam \(exit code 1\): "
            r"RuntimeError: no such camera",
        ):
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
