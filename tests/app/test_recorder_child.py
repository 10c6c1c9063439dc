"""The live app's recorder process on a disk that fills up: it stops recording with one clear
line and a readable session, and the rest of the app goes on (the supervisor sees no failure)."""

from __future__ import annotations

import subprocess
import time
import uuid

import numpy as np
import pytest

from app.children import recorder_child
from app.supervisor import ChildSpec, Supervisor
from capture.bus import Publisher
from capture.messages import FrameSet, View, now_ns
from capture.session import SessionReader
from tests.capture.conftest import image_rig, pattern_image  # noqa: F401 - image_rig is a fixture


@pytest.fixture
def tiny_disk(tmp_path):
    """A 2 MB tmpfs (needs root); skipped where it cannot be mounted."""
    mnt = tmp_path / "disk"
    mnt.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mnt)], capture_output=True).returncode:
        pytest.skip("cannot mount a tmpfs here (not root?)")
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)], check=False)


def _frameset(seq: int, cameras) -> FrameSet:
    rng = np.random.default_rng(seq)  # noise: JPEGs of ~8 KB, so the disk fills in a few hundred sets
    imgs = [
        np.clip(pattern_image(seq % 6).astype(int) + rng.integers(0, 60, (48, 64, 3)), 0, 255).astype(np.uint8)
        for _ in cameras
    ]
    views = tuple(View(c, seq, now_ns(), 64, 48, "bgr8", img.nbytes) for c, img in zip(cameras, imgs))
    return FrameSet("toy", seq, now_ns(), now_ns(), views, tuple(imgs))


@pytest.mark.parametrize("max_gb", [1.0, 0.0004])  # disk full (write fails) / the --record-max-gb limit
def test_recorder_stops_alone_and_the_app_goes_on(tmp_path, tiny_disk, image_rig, max_gb):  # noqa: F811
    tag = uuid.uuid4().hex[:6]
    frames_ep = f"ipc://{tmp_path}/frames-{tag}"
    session = tiny_disk / "take"
    sup = Supervisor(f"ipc://{tmp_path}/status-{tag}", stop_timeout_s=5.0)
    cameras = ["cam0", "cam1", "cam2", "cam3"]
    with Publisher(frames_ep, hwm=64, key=sup.token) as capture:
        sup.start(
            [
                ChildSpec(
                    "recorder",
                    recorder_child,
                    {
                        "rig_path": str(image_rig),
                        "frames_endpoint": frames_ep,
                        "session_dir": str(session),
                        "max_gb": max_gb,
                    },
                )
            ]
        )
        sup.wait_ready()
        assert capture.wait_for_subscriber(10.0)
        seq, deadline, note = 0, time.monotonic() + 60, ""
        while time.monotonic() < deadline and "stopped" not in note:
            capture.send(_frameset(seq, cameras), wait_ms=200)
            seq += 1
            sup.poll(timeout_ms=0)
            sup.check()  # the recorder never counts as failed
            st = sup.children["recorder"].last_status
            note = st.note if st is not None else ""
        assert "recording stopped" in note, note
        for _ in range(20):  # the app keeps running: frames still flow, the recorder stays up
            capture.send(_frameset(seq, cameras))
            seq += 1
            time.sleep(0.02)
        assert sup.run(duration_s=1.0) == 0 and sup.failure is None
    assert sup.exit_codes() == {"recorder": 0}
    expected = "disk full" if max_gb == 1.0 else "size limit reached"
    assert expected in note
    r = SessionReader(session)
    assert len(r.sets) > 10 and r.sets[-1].seq < seq - 20
    last = r.sets[-1]
    assert [v.camera for v in last.views] == cameras and all(r.image(v).shape == (48, 64, 3) for v in last.views)


def test_live_record_refuses_a_disk_without_room_for_a_minute(tiny_disk, capsys):
    """The embedded rig (5 x 1080p at 30 fps) needs GBs per minute: a 2 MB disk is refused
    before any process starts, in one line."""
    from app.cli import live_main

    rc = live_main(["--no-viewer", "--model", "light", "--duration", "1", "--record", str(tiny_disk / "take")])
    err = capsys.readouterr().err
    assert rc == 2 and "--record" in err and "MB per minute" in err and "Traceback" not in err
    assert "started" not in err and not (tiny_disk / "take").exists()
