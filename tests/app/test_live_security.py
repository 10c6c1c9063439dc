"""selfpose3d-live and strangers on the same host: private per-run endpoints, a squatted endpoint
refused with one clear line, forged messages on the old well-known paths change nothing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from app.cli import live_main
from app.config import LiveConfig
from app.process import PrivateRun, with_private_endpoints
from capture.bus import Publisher, Subscriber
from capture.messages import Status

REPO = Path(__file__).resolve().parents[2]


def test_default_endpoints_move_into_the_private_run_dir_explicit_ones_stay():
    with PrivateRun() as run:
        cfg = with_private_endpoints(LiveConfig(), run)
        for ep in (cfg.poses_endpoint, cfg.status_endpoint, cfg.capture.stream.endpoint):
            assert ep.startswith(f"ipc://{run.dir}/")
        explicit = with_private_endpoints(LiveConfig(poses_endpoint="tcp://127.0.0.1:5999"), run)
        assert explicit.poses_endpoint == "tcp://127.0.0.1:5999"


def test_squatted_status_endpoint_is_one_clear_line(tmp_path, capsys):
    ep = f"ipc://{tmp_path}/status"
    with Subscriber(ep, [b""], bind=True, key=None):
        rc = live_main(["--no-viewer", "--model", "light", "--duration", "1", "--set", f"status_endpoint={ep}"])
    err = capsys.readouterr().err
    assert rc == 2 and "already bound by another process" in err and "Traceback" not in err


def _stranger(stop: threading.Event) -> dict:
    """Squats the old well-known paths: binds the frames path and floods forged error statuses
    at the old status path."""
    seen = {"subscriptions": 0}

    def run() -> None:
        frames = Publisher("ipc:///tmp/selfpose3d-frames", key=None)
        try:
            with Publisher("ipc:///tmp/selfpose3d-status", bind=False, key=None) as status:
                while not stop.is_set():
                    status.send(Status("inference", "error", time.time_ns(), error="forged"))
                    seen["subscriptions"] += frames.subscribers_seen()
                    time.sleep(0.05)
        finally:
            frames.close()

    threading.Thread(target=run, daemon=True).start()
    return seen


@pytest.mark.slow
def test_live_app_ignores_squatters_on_the_old_fixed_paths(tmp_path):
    stop = threading.Event()
    seen = _stranger(stop)
    try:
        out = subprocess.run(
            [
                sys.executable,
                "-m",
                "app.cli_live",
                "--no-viewer",
                "--model",
                "light",
                "--duration",
                "8",
                "--out",
                str(tmp_path),
                "--set",
                "worker.max_age_ms=5000",
            ],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=400,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
    finally:
        stop.set()
    assert out.returncode == 0, out.stderr[-3000:]
    summary = json.loads(out.stdout.strip().splitlines()[-1])
    assert summary["frames"] >= 1 and "failure" not in summary
    assert seen["subscriptions"] == 0  # the worker never subscribed to the squatter
    resolved = (tmp_path / "live.resolved.yaml").read_text()
    assert "/tmp/selfpose3d-frames" not in resolved and "selfpose3d-run-" in resolved
