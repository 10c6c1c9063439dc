"""What every supervised child process shares: stop signals, status reporting, the run's secret.

A child runs ``with ChildContext(name, status_endpoint) as ctx:`` and reports
``ctx.report("ready")`` once it can work, then ``ctx.heartbeat(...)`` from its loop (a status
message at most every ``interval_s``) until ``ctx.stopping`` turns true (SIGTERM or SIGINT).
Processes share nothing but ZeroMQ (DESIGN.md §6).

Each run has a :class:`PrivateRun`: a fresh private directory (mode 0700, unpredictable name)
holding its ipc endpoints, and a random token. The supervisor hands the token to every child in
its spawn arguments (:func:`run_child`, never on a command line or in the environment); each
child makes it the MAC key of all its sockets (``capture.bus.use_run_key``), so the run's
processes accept only each other's messages.
"""

from __future__ import annotations

import logging
import secrets
import shutil
import signal
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from capture.bus import Publisher, use_run_key
from capture.messages import Status, now_ns

log = logging.getLogger(__name__)
TOKEN_BYTES = 32


def new_token() -> bytes:
    """A fresh per-run secret (32 random bytes)."""
    return secrets.token_bytes(TOKEN_BYTES)


RUN_DIR_PREFIX = "selfpose3d-run-"
STALE_AFTER_S = 60.0


def remove_stale_run_dirs(base: str | None = None, stale_after_s: float = STALE_AFTER_S) -> list[Path]:
    """Remove private run folders of this user left by killed runs (SIGKILL skips the cleanup):
    older than ``stale_after_s`` and holding nothing but ipc socket files that nobody listens on.
    Returns the removed folders."""
    import os
    import socket
    import stat

    removed = []
    for d in Path(base or tempfile.gettempdir()).glob(RUN_DIR_PREFIX + "*"):
        try:
            st = d.lstat()
            if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.getuid() or time.time() - st.st_mtime < stale_after_s:
                continue
            for entry in d.iterdir():
                if not stat.S_ISSOCK(entry.lstat().st_mode):
                    raise FileExistsError(entry)  # not ours to judge: keep the folder
                probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                try:
                    probe.settimeout(0.5)
                    probe.connect(str(entry))
                    raise FileExistsError(entry)  # a live run listens here
                except (ConnectionRefusedError, FileNotFoundError):
                    pass
                finally:
                    probe.close()
        except OSError:  # FileExistsError included: keep it
            continue
        shutil.rmtree(d, ignore_errors=True)
        removed.append(d)
    return removed


class PrivateRun:
    """A run's private directory for ipc endpoints (0700, removed on :meth:`close`) and its token.

    Creating one first removes the folders that killed runs left behind
    (:func:`remove_stale_run_dirs`).

    Args:
        base: parent folder (default: the system temp folder; ipc paths must stay short).
    """

    def __init__(self, base: str | None = None) -> None:
        remove_stale_run_dirs(base)
        self.dir = Path(tempfile.mkdtemp(prefix=RUN_DIR_PREFIX, dir=base))  # mkdtemp: mode 0700
        self.token = new_token()

    def endpoint(self, name: str) -> str:
        """``ipc://<private dir>/<name>``."""
        return f"ipc://{self.dir / name}"

    def close(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> "PrivateRun":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def with_private_endpoints(cfg, run: PrivateRun):
    """``cfg`` (an ``app.config.LiveConfig``) with its default endpoints moved into ``run``'s
    private directory: an empty poses/status endpoint, and the capture stream left at
    ``capture.config.DEFAULT_ENDPOINT``. Endpoints set explicitly are kept."""
    import dataclasses

    from capture.config import DEFAULT_ENDPOINT

    stream = cfg.capture.stream
    if stream.endpoint == DEFAULT_ENDPOINT:
        stream = dataclasses.replace(stream, endpoint=run.endpoint("frames"))
    return dataclasses.replace(
        cfg,
        poses_endpoint=cfg.poses_endpoint or run.endpoint("poses"),
        status_endpoint=cfg.status_endpoint or run.endpoint("status"),
        capture=dataclasses.replace(cfg.capture, stream=stream),
    )


def run_child(
    target: Callable[..., Any], name: str, status_endpoint: str, token: bytes | None, kwargs: Mapping[str, Any]
) -> None:
    """Entry point of every supervised child: adopt the run's token, then run ``target``."""
    use_run_key(token)
    target(name, status_endpoint, **kwargs)


class ChildContext:
    """Status publisher + stop flag of one child process.

    Args:
        name: process name (status topic ``status/<name>``).
        status_endpoint: the supervisor's status endpoint (children connect to it).
        interval_s: heartbeat period.
        exit_grace_s: after SIGTERM/SIGINT the process exits (code 143) if it has not left its
            ``with ChildContext`` block within this long, even when its main thread is busy in
            native code (model loading, compilation): a stop request is honoured in bounded time.
    """

    def __init__(self, name: str, status_endpoint: str, interval_s: float = 0.5, exit_grace_s: float = 3.0) -> None:
        self.name = name
        self.interval_s = interval_s
        self.exit_grace_s = exit_grace_s
        self.note = ""  # sent with every status from now on (e.g. a recorder's MB/s)
        self._pub = Publisher(status_endpoint, bind=False, hwm=16)
        self._lock = threading.Lock()  # the socket is shared with the heartbeat thread
        self.stop_event = threading.Event()  # set by SIGTERM/SIGINT; hand it to blocking loops
        self._last = 0.0
        self._beat: threading.Thread | None = None
        self.state = "starting"
        self._closed = False
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._on_signal)
        self._watch_signals()

    def _on_signal(self, signum, _frame) -> None:
        self.stop_event.set()

    def _watch_signals(self) -> None:
        """A thread that sees a signal even while the main thread is inside native code (Python
        runs handlers only between bytecodes of the main thread): it reads the wakeup fd, sets
        the stop event and, if the process is still alive ``exit_grace_s`` later, exits it."""
        import os
        import socket

        try:
            rsock, wsock = socket.socketpair()
            wsock.setblocking(False)
            signal.set_wakeup_fd(wsock.fileno(), warn_on_full_buffer=False)
        except (ValueError, OSError):  # not the main thread: the Python handler alone must do
            return
        self._wakeup = (rsock, wsock)

        def watch() -> None:
            while rsock.recv(1) not in (bytes([signal.SIGTERM]), bytes([signal.SIGINT])):
                pass
            self.stop_event.set()
            time.sleep(self.exit_grace_s)
            if self._closed:
                return  # the child finished its work in time; the interpreter is exiting
            log.warning("%s: still running %.0f s after the stop request; exiting now", self.name, self.exit_grace_s)
            os._exit(128 + signal.SIGTERM)

        threading.Thread(target=watch, name=f"{self.name}-stop-watch", daemon=True).start()

    @property
    def stopping(self) -> bool:
        return self.stop_event.is_set()

    def request_stop(self) -> None:
        self.stop_event.set()

    def forward(self, status: Status) -> None:
        """Publish a status message built elsewhere (e.g. by the capture loop)."""
        with self._lock:
            self.state = status.state
            self._last = time.monotonic()
            self._pub.send(status)

    def start_heartbeat_thread(self) -> None:
        """Send ``running`` heartbeats from a thread, for children whose main loop blocks elsewhere."""

        def beat() -> None:
            while not self.stop_event.wait(self.interval_s):
                self.report("running")

        self._beat = threading.Thread(target=beat, name=f"{self.name}-heartbeat", daemon=True)
        self._beat.start()

    def report(
        self,
        state: str,
        *,
        fps: float = 0.0,
        latency_ms: float = 0.0,
        dropped: int = 0,
        missing: Sequence[str] = (),
        error: str = "",
        cameras: Mapping[str, str] | None = None,
    ) -> None:
        """Publish a status message now."""
        self.forward(
            Status(
                process=self.name,
                state=state,
                t_ns=now_ns(),
                fps=float(fps),
                latency_ms=float(latency_ms),
                dropped=int(dropped),
                missing=tuple(missing),
                error=error[:2000],
                cameras=dict(cameras or {}),
                note=self.note[:256],
            )
        )

    def heartbeat(self, **fields) -> None:
        """Publish a ``running`` status if ``interval_s`` has passed since the last one."""
        if time.monotonic() - self._last >= self.interval_s:
            self.report("running", **fields)

    def close(self) -> None:
        self._closed = True
        self.stop_event.set()
        if self._beat is not None:
            self._beat.join(2 * self.interval_s)
        with self._lock:
            self._pub.close()

    def __enter__(self) -> "ChildContext":
        self.report("starting")

        def starting_beat() -> None:  # start-up (model load, compile) may take minutes: say so
            while not self.stop_event.wait(1.0):
                with self._lock:  # checked and sent atomically: never "starting" after "ready"
                    if self.state != "starting":
                        return
                    self._pub.send(Status(process=self.name, state="starting", t_ns=now_ns()))

        threading.Thread(target=starting_beat, name=f"{self.name}-starting", daemon=True).start()
        return self

    def __exit__(self, exc_type, exc, _tb) -> None:
        try:
            if exc is not None and not isinstance(exc, KeyboardInterrupt):
                self.report("error", error=f"{type(exc).__name__}: {exc}")
            else:
                self.report("stopping")
            time.sleep(0.05)  # let the last status leave before the socket closes
        finally:
            self.close()
