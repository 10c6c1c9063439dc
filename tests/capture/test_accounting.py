"""Accounting that cannot lie (issue 23 item 3): a source that injects each fault, and the counts
``record`` and the capture status report for it."""

from __future__ import annotations

import threading
import time

import numpy as np

from capture.process import CaptureProcess, LiveRig
from capture.recorder import Recorder, record_live
from capture.source import Frame, Source, SourceError

SHAPE = (48, 64, 3)


class FaultySource(Source):
    """A 20 fps camera (wall-clock timestamps) of ``n`` frames; ``faults`` maps a frame number to
    ``size`` (wrong frame size), ``decode`` (the read raises) or ``late`` (the frame arrives 0.4 s
    after it was grabbed, after its set was emitted without it)."""

    live = True

    def __init__(self, camera: str, n: int, faults: dict[int, str] | None = None, start_ns: int = 0) -> None:
        self.camera, self.n, self.faults = camera, n, faults or {}
        self.start_ns = start_ns or time.time_ns()
        self.k = 0

    def open(self) -> None:
        pass

    def read(self) -> Frame | None:
        if self.k >= self.n:
            return None
        k, self.k = self.k, self.k + 1
        t_ns = self.start_ns + k * 50_000_000  # genlocked: both cameras grab at the same instants
        time.sleep(max(0.0, (t_ns - time.time_ns()) / 1e9))
        fault = self.faults.get(k)
        if fault == "decode":
            raise SourceError(f"camera '{self.camera}': cannot decode frame {k}")
        if fault == "late":
            time.sleep(0.4)
        shape = (SHAPE[0] + 8, SHAPE[1], 3) if fault == "size" else SHAPE
        return Frame(self.camera, np.zeros(shape, np.uint8), t_ns, k)


def _live(faults) -> LiveRig:
    start = time.time_ns() + 100_000_000
    sources = [FaultySource("camA", 16, start_ns=start), FaultySource("camB", 16, faults, start_ns=start)]
    return LiveRig(sources, tolerance_ms=25.0, deadline_ms=100.0, frame_shapes={"camA": SHAPE, "camB": SHAPE})


def test_record_counts_each_injected_fault_by_reason(tmp_path):
    live = _live({3: "size", 6: "decode", 9: "late"})
    with Recorder(tmp_path / "take", None, ["camA", "camB"], rig_name="toy") as rec:
        report = record_live(rec, live, threading.Event(), duration_s=20)
    out = report.summary()
    assert out["dropped"]["size_mismatch"] == 1
    assert out["dropped"]["decode_error"] == 1
    assert out["dropped"]["late"] >= 1  # frame 9, and those queued behind it past their sets' deadline
    assert out["sets"] == out["complete"] + out["incomplete"] == rec.sets_written
    # conservation: each camera's 16 frames are in a written set or counted under one reason
    missing = out["missing"]
    assert out["sets"] - missing.get("camA", 0) == 16
    lost_b = sum(
        out["dropped"][r]
        for r in ("size_mismatch", "decode_error", "late", "duplicate", "sync_overflow", "overwritten")
    )
    assert out["sets"] - missing["camB"] + lost_b == 16
    assert out["complete"] >= 5 and missing["camB"] >= 3
    assert "cam" not in str(out.get("skipped", {}))  # live cameras are not replayed: nothing skipped


def test_capture_status_counts_queue_full_and_a_run_of_wrong_sizes_fails_with_one_line():
    class Pub:
        class stats:
            dropped = 0

        def __init__(self):
            self.sent = []

        def send(self, msg, wait_ms=0.0):
            from capture.messages import FrameSet

            if isinstance(msg, FrameSet) and msg.seq in (2, 3):
                Pub.stats.dropped += 1
                return False
            self.sent.append(msg)
            return True

    pub = Pub()
    proc = CaptureProcess("toy", _live({}), pub, process="capture", status_interval_s=0.1)
    report = proc.run(threading.Event())
    last = [m for m in pub.sent if type(m).__name__ == "Status"][-1]
    assert last.counts["published"] == report.sets == 16 and last.counts["dropped/queue_full"] == 2
    assert last.counts["complete"] + last.counts["incomplete"] == 16 and last.counts["input_ended"] == 1

    every = {k: "size" for k in range(40)}
    start = time.time_ns() + 100_000_000
    proc = CaptureProcess(
        "toy",
        LiveRig(
            [FaultySource("camA", 40, every, start), FaultySource("camB", 40, every, start)],
            tolerance_ms=25.0,
            deadline_ms=100.0,
            frame_shapes={"camA": SHAPE, "camB": SHAPE},
        ),
        Pub(),
        process="capture",
    )
    t0 = time.monotonic()
    try:
        proc.run(threading.Event())
        raise AssertionError("a capture whose every frame has the wrong size must fail")
    except SourceError as exc:
        assert str(exc) in (
            f"{c}: frame 64×56 but calibration says 64×48: fix the calibration's image size or pass --resize"
            for c in ("camA", "camB")
        )
    assert time.monotonic() - t0 < 5.0  # gives up after 10 frames per camera, not at the end
