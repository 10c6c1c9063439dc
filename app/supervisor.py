"""Process supervisor of the live app (DESIGN.md §6).

Starts child processes (spawn), waits until each reports ``ready`` on the status stream (naming
any that does not, or that died), watches heartbeats and exit codes while running, turns
Ctrl-C/SIGTERM into an orderly stop (SIGTERM to children, bounded join, then kill), and returns
a non-zero exit status when a child failed.

Status messages are authenticated with the run's token (app.process): a message without the
right MAC is dropped. Even an authenticated ``error`` status does not stop the run by itself:
a child fails when its process exits with a non-zero code (the failure line quotes the error it
reported), stops sending heartbeats, or reports an error and is still alive
``error_grace_s`` later.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import signal
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from app.process import new_token, run_child
from capture.bus import Subscriber
from capture.messages import Status

log = logging.getLogger(__name__)


class SupervisorError(RuntimeError):
    """A child failed to start, died, or stopped answering; the message names it."""


@dataclass(frozen=True)
class ChildSpec:
    """One child process.

    Attributes:
        name: process name; must equal the name it reports status under.
        target: module-level function ``target(name, status_endpoint, **kwargs)`` (picklable).
        kwargs: keyword arguments for ``target`` (picklable).
        ready_timeout_s: how long it may take to report ``ready``.
    """

    name: str
    target: Callable[..., Any]
    kwargs: dict = field(default_factory=dict)
    ready_timeout_s: float = 60.0


@dataclass
class ChildState:
    spec: ChildSpec
    process: Any
    last_status: Status | None = None
    last_seen: float = 0.0
    ready: bool = False
    error: str = ""  # the error it reported (authenticated), quoted when it exits
    error_since: float | None = None
    counts: dict = field(default_factory=dict)  # the latest non-empty Status.counts
    input_ended: bool = False  # it said every finite source ended (a normal end, not a crash)


class Supervisor:
    """Runs and watches a set of child processes.

    Args:
        status_endpoint: endpoint the supervisor binds for the children's status messages.
        heartbeat_timeout_s: a running child silent this long is declared hung.
        stop_timeout_s: how long children get to stop after SIGTERM before being killed.
        token: the run's secret (default: a fresh one); children get it in their spawn
            arguments and sign every message with it.
        error_grace_s: how long a child that reported an error may stay alive before it counts
            as failed (it normally exits at once, and its exit code decides).
    """

    def __init__(
        self,
        status_endpoint: str,
        heartbeat_timeout_s: float = 15.0,
        stop_timeout_s: float = 10.0,
        token: bytes | None = None,
        error_grace_s: float = 5.0,
    ) -> None:
        self.status_endpoint = status_endpoint
        self.heartbeat_timeout_s = heartbeat_timeout_s
        self.stop_timeout_s = stop_timeout_s
        self.error_grace_s = error_grace_s
        self.token = token if token is not None else new_token()
        self.children: dict[str, ChildState] = {}
        self._status = Subscriber(status_endpoint, [b"status/"], bind=True, hwm=1000, key=self.token)
        self._ctx = mp.get_context("spawn")
        self._stop_requested = False
        self.failure: str | None = None

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self, specs: list[ChildSpec]) -> None:
        """Spawn every child (they connect to the status endpoint and report)."""
        for spec in specs:
            proc = self._ctx.Process(
                target=run_child,
                args=(spec.target, spec.name, self.status_endpoint, self.token, spec.kwargs),
                name=spec.name,
                daemon=False,
            )
            proc.start()
            self.children[spec.name] = ChildState(spec, proc, last_seen=time.monotonic())
            log.info("started %s (pid %d)", spec.name, proc.pid)

    def waiting_for(self) -> str:
        """What start-up still waits for, e.g. ``capture (starting; cam01 ok, cam02 starting;
        0 framesets), inference (starting: model load / compile)``."""
        parts = []
        for n, c in self.children.items():
            if c.ready:
                continue
            st = c.last_status
            if st is None:
                parts.append(f"{n} (process start-up, no status yet)")
            elif st.cameras:
                cams = ", ".join(f"{k} {v}" for k, v in st.cameras.items())
                parts.append(
                    f"{n} ({st.state}; first frame of each camera: {cams}; {c.counts.get('published', 0)} framesets)"
                )
            else:
                parts.append(f"{n} ({st.state}{': model load / compile' if n == 'inference' else ''})")
        return ", ".join(parts) or "nothing"

    def wait_ready(
        self, *, until: float | None = None, on_progress: Callable[[str], None] | None = None, progress_s: float = 5.0
    ) -> str:
        """Block until every child reported ready.

        Args:
            until: ``time.monotonic()`` at which to give up quietly (``--duration`` elapsed).
            on_progress: called every ``progress_s`` with a line saying what is awaited.
        Returns:
            ``"ready"``, ``"ended"`` (a child's input ended and it exited cleanly: a short replay)
            or ``"duration"`` (``until`` passed first).
        Raises:
            SupervisorError: a child died or reported an error, or one did not report ready within
                its timeout; the message names it and the stage it was in.
        """
        start = last_progress = time.monotonic()
        while not all(c.ready for c in self.children.values()):
            self.poll(timeout_ms=100)
            if self._stop_requested:
                raise SupervisorError("stopped before all processes were ready")
            if self.input_ended():
                return "ended"
            dead = self._dead_children()
            if dead:
                raise SupervisorError(f"process(es) died while starting: {dead}")
            if self.failure:
                raise SupervisorError(self.failure)
            now = time.monotonic()
            if until is not None and now >= until:
                return "duration"
            late = [c.spec.name for c in self.children.values() if not c.ready and now - start > c.spec.ready_timeout_s]
            if late:
                raise SupervisorError(
                    f"start-up timed out: {', '.join(late)} did not report ready within "
                    f"{', '.join(f'{self.children[n].spec.ready_timeout_s:.0f} s' for n in late)}; "
                    f"still waiting for {self.waiting_for()}; run with -v to see their logs"
                )
            if on_progress is not None and now - last_progress >= progress_s:
                last_progress = now
                on_progress(f"starting ({now - start:.0f} s): waiting for {self.waiting_for()}")
        return "ready"

    def input_ended(self) -> bool:
        """A child reported the end of its finite input and exited with code 0."""
        return any(c.input_ended and c.process.exitcode == 0 for c in self.children.values())

    def poll(self, timeout_ms: int = 100) -> list[Status]:
        """Receive pending status messages and update the children's state."""
        got = []
        msg = self._status.recv(timeout_ms)
        while msg is not None:
            if isinstance(msg, Status):
                got.append(msg)
                child = self.children.get(msg.process)
                if child is not None:
                    child.last_status = msg
                    child.last_seen = time.monotonic()
                    child.ready = child.ready or msg.state in ("ready", "running")
                    if msg.counts:
                        child.counts = dict(msg.counts)
                        child.input_ended = child.input_ended or bool(msg.counts.get("input_ended"))
                    if msg.state == "error" and child.error_since is None:
                        # not a failure by itself: the exit code (or silence) decides, see check()
                        child.error, child.error_since = msg.error, time.monotonic()
            msg = self._status.recv(0)
        return got

    def _dead_children(self) -> list[str]:
        """Children that exited, other than a clean exit after the end of their input; each with
        its exit code and the error it reported."""
        return [
            f"{n} (exit code {c.process.exitcode})" + (f": {c.error}" if c.error else "")
            for n, c in self.children.items()
            if c.process.exitcode is not None and not (c.input_ended and c.process.exitcode == 0)
        ]

    def check(self) -> None:
        """Raise SupervisorError if a child died, stopped sending heartbeats, or reported an
        error and did not exit within ``error_grace_s``."""
        self.poll(timeout_ms=0)  # the last words of a child that just exited
        dead = self._dead_children()
        if dead:
            raise SupervisorError(f"process(es) exited unexpectedly: {dead}")
        if self.failure:
            raise SupervisorError(self.failure)
        now = time.monotonic()
        erred = [
            f"{n}: {c.error}"
            for n, c in self.children.items()
            if c.error_since is not None and now - c.error_since > self.error_grace_s
        ]
        if erred:
            raise SupervisorError(f"process(es) reported an error and did not exit: {erred}")
        silent = [
            n
            for n, c in self.children.items()
            if c.ready and not c.input_ended and now - c.last_seen > self.heartbeat_timeout_s
        ]
        if silent:
            raise SupervisorError(f"process(es) {silent} sent no heartbeat for {self.heartbeat_timeout_s:.0f} s")

    def request_stop(self, *_args) -> None:
        self._stop_requested = True

    @property
    def stop_requested(self) -> bool:
        return self._stop_requested

    def install_signal_handlers(self) -> None:
        """Ctrl-C and SIGTERM request an orderly stop."""
        signal.signal(signal.SIGINT, self.request_stop)
        signal.signal(signal.SIGTERM, self.request_stop)

    def run(
        self,
        duration_s: float | None = None,
        on_tick: Callable[[dict[str, Status]], None] | None = None,
        tick_s: float = 1.0,
    ) -> int:
        """Watch the children until ``duration_s``, a stop request, or a failure.

        Returns:
            0 on an orderly stop, 1 if a child failed.
        """
        end = None if duration_s is None else time.monotonic() + duration_s
        last_tick = time.monotonic()
        try:
            while not self._stop_requested and (end is None or time.monotonic() < end):
                self.poll(timeout_ms=100)
                self.check()
                if self.input_ended():
                    self.drain(1.0)  # the last framesets of the input still reach the consumers
                    self.check()
                    break
                if on_tick and time.monotonic() - last_tick >= tick_s:
                    last_tick = time.monotonic()
                    on_tick({n: c.last_status for n, c in self.children.items() if c.last_status})
        except SupervisorError as exc:
            log.error("%s", exc)
            self.failure = str(exc)
            return 1
        finally:
            self.stop()
        return 1 if self.failure else 0

    def drain(self, seconds: float) -> None:
        """Keep receiving status for ``seconds`` (no checks)."""
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            self.poll(timeout_ms=50)

    def stop(self) -> None:
        """SIGTERM every live child, join with a bound, kill stragglers, read their last status,
        close the socket."""
        for c in self.children.values():
            if c.process.is_alive():
                c.process.terminate()
        deadline = time.monotonic() + self.stop_timeout_s
        for c in self.children.values():
            c.process.join(max(0.0, deadline - time.monotonic()))
        for name, c in self.children.items():
            if c.process.is_alive():
                log.warning("%s did not stop within %.1f s: killing it", name, self.stop_timeout_s)
                c.process.kill()
                c.process.join(2.0)
        self.poll(timeout_ms=50)  # final status (the capture's last counts) sent while stopping
        self._status.close()

    def exit_codes(self) -> dict[str, int | None]:
        return {n: c.process.exitcode for n, c in self.children.items()}
