"""The capture process end to end over ZeroMQ: media rig -> framesets + status; a camera that
dies is reported and retried while the others keep streaming; JPEG on the wire."""

from __future__ import annotations

import threading
import time

import numpy as np

from capture.bus import Publisher, Subscriber
from capture.config import CaptureConfig, StreamConfig
from capture.messages import FrameSet, Status
from capture.process import CaptureProcess, LiveRig, build_capture
from capture.source import Frame, Source, SourceError

from .conftest import green_level


def _collect(sub, stop_when, timeout=20.0):
    sets, statuses = [], []
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        m = sub.recv(100)
        if isinstance(m, FrameSet):
            sets.append(m)
        elif isinstance(m, Status):
            statuses.append(m)
        if stop_when(sets, statuses):
            break
    return sets, statuses


def _run_in_thread(proc, stop, **kw):
    result = {}
    t = threading.Thread(target=lambda: result.setdefault("report", proc.run(stop, **kw)), daemon=True)
    t.start()
    return t, result


def _capture_to_the_end(rig_path, cfg: CaptureConfig, endpoint: str):
    """Run a media rig through ``build_capture`` until its final status; (sets, statuses, report)."""
    from calib.rig_config import load_rig

    stop = threading.Event()
    proc, pub = build_capture(load_rig(rig_path), cfg, stop=stop)
    with pub, Subscriber(endpoint) as sub:
        assert pub.wait_for_subscriber(5)
        thread, result = _run_in_thread(proc, stop)
        sets, statuses = _collect(sub, lambda s, st: st and st[-1].state == "stopping")
        thread.join(10)
    return sets, statuses, result["report"]


def test_media_rig_publishes_complete_framesets_and_status(image_rig, ipc_endpoint):
    cfg = CaptureConfig(realtime=True, stream=StreamConfig(endpoint=ipc_endpoint), status_interval_s=0.1)
    sets, statuses, report = _capture_to_the_end(image_rig, cfg, ipc_endpoint)
    assert [s.seq for s in sets] == list(range(6))
    assert all(s.cameras == ["cam0", "cam1", "cam2", "cam3"] and not s.missing for s in sets)
    assert [green_level(s.image(2)) for s in sets] == list(range(6))
    assert all(s.views[0].frame_index == k and s.skew_ms < 25 for k, s in enumerate(sets))
    states = [st.state for st in statuses]
    assert states[0] == "starting" and states[-1] == "stopping"
    assert states.index("ready") < states.index("running") and "running" not in states[: states.index("ready")]
    assert any(st.state == "running" for st in statuses)
    assert report.sets == 6 and report.complete == 6


def test_media_read_as_fast_as_possible_assembles_every_set(image_rig, ipc_endpoint):
    """Media time runs ahead of the wall clock here; the status must still go out (it once failed
    validation with a negative latency and stopped the capture at its first set)."""
    cfg = CaptureConfig(stream=StreamConfig(endpoint=ipc_endpoint), status_interval_s=0.05)  # rig: realtime false
    sets, statuses, report = _capture_to_the_end(image_rig, cfg, ipc_endpoint)
    # every frame assembled; the publisher drops rather than queue (hwm 2)
    assert report.sets == report.complete == 6 and report.overwritten == 0
    assert len(sets) + report.dropped_publish == 6 and set(s.seq for s in sets) <= set(range(6))
    assert [st.state for st in statuses][-1] == "stopping" and all(st.latency_ms >= 0 for st in statuses)


class _Cam(Source):
    """20 fps fake camera; ``die_after`` frames then reads fail and reopening fails."""

    live = True

    def __init__(self, name, start_ns, die_after=None):
        self.camera, self.start_ns, self.die_after = name, start_ns, die_after
        self.k = 0
        self.dead = False
        self.opens = 0

    def open(self):
        self.opens += 1
        if self.dead:
            raise SourceError(f"camera '{self.camera}': unplugged")

    def read(self):
        if self.die_after is not None and self.k >= self.die_after:
            self.dead = True
            raise SourceError(f"camera '{self.camera}': grab failed")
        t = self.start_ns + self.k * 50_000_000
        time.sleep(max(0.0, (t - time.time_ns()) / 1e9))
        self.k += 1
        return Frame(self.camera, np.full((4, 4, 3), self.k, np.uint8), t, self.k - 1)


def test_camera_that_disappears_is_reported_and_others_keep_streaming(ipc_endpoint):
    start = time.time_ns() + 100_000_000
    cams = [_Cam("a", start), _Cam("b", start, die_after=5), _Cam("c", start)]
    live = LiveRig(cams, tolerance_ms=20, deadline_ms=60, failure_budget=1, backoff_s=(0.05, 0.1))
    stop = threading.Event()
    with Publisher(ipc_endpoint) as pub, Subscriber(ipc_endpoint) as sub:
        assert pub.wait_for_subscriber(5)
        proc = CaptureProcess("lab", live, pub, process="capture-lab", status_interval_s=0.1)
        thread, result = _run_in_thread(proc, stop, max_sets=25)
        sets, statuses = _collect(sub, lambda s, st: len(s) >= 25)
        stop.set()
        thread.join(10)
    assert len(sets) == 25
    assert all(s.cameras == ["a", "b", "c"] for s in sets[:5])
    after = sets[7:]
    assert after and all("b" in s.missing and s.views for s in after)
    paired = [s for s in after if s.cameras == ["a", "c"]]
    assert len(paired) >= 0.8 * len(after)  # a and c keep streaming together (load may split a few)
    assert all(s.views[0].frame_index == s.views[1].frame_index for s in paired)
    reporting = [st for st in statuses if "b" in st.missing]
    assert reporting and "retrying" in reporting[-1].cameras["b"] and "unplugged" in reporting[-1].cameras["b"]
    assert reporting[-1].cameras["a"] == "ok"
    assert cams[1].opens >= 3  # retried with backoff


def test_jpeg_frames_on_the_wire(image_rig, ipc_endpoint):
    from calib.rig_config import load_rig

    rig = load_rig(image_rig)
    cfg = CaptureConfig(
        realtime=True,
        cameras=("cam1", "cam3"),
        stream=StreamConfig(endpoint=ipc_endpoint, encoding="jpeg", jpeg_quality=80),
    )
    stop = threading.Event()
    proc, pub = build_capture(rig, cfg, stop=stop)
    with pub, Subscriber(ipc_endpoint) as sub:
        assert pub.wait_for_subscriber(5)
        thread, _ = _run_in_thread(proc, stop, max_sets=3)
        sets, _ = _collect(sub, lambda s, st: len(s) >= 3)
        thread.join(10)
    assert len(sets) == 3 and sets[0].cameras == ["cam1", "cam3"]
    assert sets[1].views[0].encoding == "jpeg" and sets[1].views[0].nbytes < 64 * 48 * 3
    assert green_level(sets[1].image(1)) == 1


def test_capture_fails_clearly_when_no_camera_can_open(ipc_endpoint):
    import pytest

    class _Missing(Source):
        def __init__(self, name):
            self.camera = name

        def open(self):
            raise SourceError(f"camera '{self.camera}': video file /nope.mp4 not found")

        def read(self):
            return None

    live = LiveRig([_Missing("a"), _Missing("b")], tolerance_ms=20, deadline_ms=50)
    with Publisher(ipc_endpoint) as pub, Subscriber(ipc_endpoint, [b"status/"]) as sub:
        assert pub.wait_for_subscriber(5)
        proc = CaptureProcess("lab", live, pub, process="cap")
        with pytest.raises(SourceError, match="no frameset published; a: error: .*not found"):
            proc.run(threading.Event())
        _, statuses = _collect(sub, lambda s, st: st and st[-1].state == "error", timeout=5)
    assert statuses[-1].state == "error" and "/nope.mp4" in statuses[-1].error
