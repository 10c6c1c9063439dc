"""Supervised process targets of the live app other than the inference worker.

Each target has the signature ``target(name, status_endpoint, **kwargs)`` with picklable
kwargs (configs travel as plain dicts and are rebuilt strictly in the child).
"""

from __future__ import annotations

import logging

from capture.messages import Status

log = logging.getLogger(__name__)


class _StatusTee:
    """Publisher wrapper: framesets go to the stream; status also goes to the supervisor."""

    def __init__(self, publisher, ctx) -> None:
        self._pub = publisher
        self._ctx = ctx
        self.stats = publisher.stats

    def send(self, msg, wait_ms: float = 0.0) -> bool:
        if isinstance(msg, Status):
            self._ctx.forward(msg)
        return self._pub.send(msg, wait_ms)


def capture_child(
    name: str,
    status_endpoint: str,
    *,
    rig_path: str,
    rig_overrides: tuple = (),
    capture: dict,
    consumer_endpoint: str | None = None,
) -> None:
    """Capture process: the rig's sources -> synchroniser -> ``frames/<rig>``; a media replay is
    paced by the answers on ``consumer_endpoint`` (the worker's poses) when given."""
    import dataclasses

    from app.process import ChildContext
    from calib.configkit import from_dict
    from calib.rig_config import load_rig
    from capture.config import CaptureConfig
    from capture.process import build_capture

    with ChildContext(name, status_endpoint) as ctx:
        rig = load_rig(rig_path, rig_overrides)
        cfg = dataclasses.replace(from_dict(CaptureConfig, capture), process=name)
        proc, pub = build_capture(rig, cfg, stop=ctx.stop_event, consumer_endpoint=consumer_endpoint)
        proc.publisher = _StatusTee(pub, ctx)
        try:
            proc.run(ctx.stop_event)
        finally:
            pub.close()


def viewer_child(
    name: str,
    status_endpoint: str,
    *,
    rig_path: str,
    rig_overrides: tuple = (),
    poses_endpoint: str,
    render_path: str | None,
    status_endpoints: tuple = (),
) -> None:
    """Viewer process: the Open3D window, or a headless render to ``render_path``."""
    import os
    import tempfile

    from app.process import ChildContext
    from calib.rig_config import load_rig
    from viz.live import run_viewer

    # Open3D's EGL/GLFW path complains on stderr without a runtime dir (headless servers, CI).
    os.environ.setdefault("XDG_RUNTIME_DIR", tempfile.mkdtemp(prefix="selfpose3d-xdg-"))
    with ChildContext(name, status_endpoint) as ctx:
        rig = load_rig(rig_path, rig_overrides)
        ctx.report("ready")
        ctx.start_heartbeat_thread()
        run_viewer(
            poses_endpoint,
            rig.cameras,
            rig.volume.center_mm,
            rig.volume.size_mm,
            render_path=render_path,
            status_endpoints=tuple(status_endpoints),
            rig_name=rig.name,
            fps=rig.config.synthetic.fps,
            should_stop=lambda: ctx.stopping,
        )


def recorder_child(
    name: str,
    status_endpoint: str,
    *,
    rig_path: str,
    rig_overrides: tuple = (),
    frames_endpoint: str,
    session_dir: str,
    max_gb: float | None = None,
) -> None:
    """Recorder process: every frameset of the stream into a session folder (crash-safe index).

    Its status carries ``recorded N sets, X MB, Y MB/s``. At the disk budget (``max_gb``, by
    default 5 % of the disk kept free) or on a failed write (disk full) it stops recording, keeps
    the session readable, says why in one log line and in its status, and stays up idle: the live
    app goes on without recording.
    """
    from app.process import ChildContext
    from calib.rig_config import load_rig
    from capture.bus import Subscriber
    from capture.recorder import DiskBudget, DiskMeter, Recorder, record_stream

    with ChildContext(name, status_endpoint) as ctx:
        rig = load_rig(rig_path, rig_overrides)
        budget = DiskBudget.for_path(session_dir, max_gb)

        def progress(sets: int, nbytes: int, mb_per_s: float) -> None:
            ctx.note = DiskMeter.line(sets, nbytes, mb_per_s)

        with Recorder(session_dir, rig, rig.names, rig_name=rig.name) as recorder:
            with Subscriber(frames_endpoint, [f"frames/{rig.name}".encode()], hwm=64) as sub:
                ctx.report("ready")
                ctx.start_heartbeat_thread()
                report = record_stream(
                    recorder, sub, ctx.stop_event, budget=budget, on_progress=progress, progress_every_s=1.0
                )
            # the subscriber is closed here: a stopped recorder holds no queue the capture waits on
        if report.stopped:
            ctx.note = (
                f"recording stopped, {report.stopped}: {report.sets} sets, {report.bytes / 1e6:.0f} MB "
                f"kept in {session_dir}"
            )
            log.error("%s (the session is readable; the live app goes on)", ctx.note)
            ctx.report("running")
            ctx.stop_event.wait()
