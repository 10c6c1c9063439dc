"""Child process targets for the supervisor tests (module-level so 'spawn' can import them)."""

from __future__ import annotations

import time

from app.process import ChildContext


def healthy(name: str, status_endpoint: str, ready_after_s: float = 0.1) -> None:
    with ChildContext(name, status_endpoint, interval_s=0.1) as ctx:
        time.sleep(ready_after_s)
        ctx.report("ready")
        while not ctx.stopping:
            ctx.heartbeat(fps=10.0)
            time.sleep(0.02)


def never_ready(name: str, status_endpoint: str) -> None:
    with ChildContext(name, status_endpoint) as ctx:
        while not ctx.stopping:
            time.sleep(0.02)


def crashes_after(name: str, status_endpoint: str, after_s: float = 0.3) -> None:
    with ChildContext(name, status_endpoint, interval_s=0.1) as ctx:
        ctx.report("ready")
        t0 = time.monotonic()
        while time.monotonic() - t0 < after_s:
            ctx.heartbeat()
            time.sleep(0.02)
        raise RuntimeError("camera exploded")


def ignores_sigterm(name: str, status_endpoint: str) -> None:
    import signal

    with ChildContext(name, status_endpoint, interval_s=0.1) as ctx:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        ctx.report("ready")
        while True:
            ctx.heartbeat()
            time.sleep(0.02)


def busy_in_native_code(name: str, status_endpoint: str) -> None:
    """Ready, then stuck in one long call that does not look at the stop flag (as a model load
    or compilation is)."""
    with ChildContext(name, status_endpoint, interval_s=0.1, exit_grace_s=1.0) as ctx:
        ctx.report("ready")
        ctx.start_heartbeat_thread()
        time.sleep(60)


def errs_but_lives(name: str, status_endpoint: str) -> None:
    """Reports an error but keeps running and beating."""
    with ChildContext(name, status_endpoint, interval_s=0.1) as ctx:
        ctx.report("ready")
        time.sleep(0.2)
        ctx.report("error", error="sensor on fire")
        ctx.start_heartbeat_thread()
        while not ctx.stopping:
            time.sleep(0.02)


def input_ends(name: str, status_endpoint: str, sets: int = 5, after_s: float = 0.2) -> None:
    """A capture whose finite input ends: ready, then its last status says ``input_ended``; exit 0."""
    from capture.messages import Status, now_ns

    with ChildContext(name, status_endpoint, interval_s=0.1) as ctx:
        ctx.report("ready")
        t0 = time.monotonic()
        while time.monotonic() - t0 < after_s:
            ctx.heartbeat()
            time.sleep(0.02)
        ctx.forward(
            Status(
                process=name,
                state="stopping",
                t_ns=now_ns(),
                counts={"published": sets, "complete": sets, "input_ended": 1},
            )
        )


def crashes_before_ready(name: str, status_endpoint: str) -> None:
    with ChildContext(name, status_endpoint, interval_s=0.1):
        time.sleep(0.2)
        raise RuntimeError("no such camera")
