"""Shared-memory views: handles on the wire, pixels read in place, overwrites detected."""

from __future__ import annotations

import os
import subprocess
import threading
import time

import numpy as np
import pytest

from capture.bus import Publisher, Subscriber
from capture.messages import FrameSet, MessageError, View, decode, encode
from capture.shm import SHM_DIR, ShmError, ShmWriter, read_view

from .conftest import green_level


def test_ring_write_read_and_overwrite_detection(rng):
    w = ShmWriter("selfpose3d-test-ring", views=2, slot_bytes=6 * 8 * 3, ring=2)
    try:
        img = rng.integers(0, 255, (6, 8, 3), dtype=np.uint8)
        slot, offset, gen = w.write(5, 1, img)
        np.testing.assert_array_equal(read_view(w.segment, offset, gen, slot, (6, 8, 3)), img)
        fs = FrameSet("lab", 5, 1, 2, (View("c1", 0, 1, 8, 6, "shm", img.nbytes, shm=(w.segment, slot, offset, gen)),),
                      (None,))
        frames = encode(fs)
        assert len(frames) == 2  # header only: the pixels stay in shared memory
        out = decode(frames)
        np.testing.assert_array_equal(out.image(0), img)
        assert out.still_valid(0)
        w.write(7, 1, img[::-1].copy())  # same slot two sets later (ring = 2)
        assert not out.still_valid(0)
        with pytest.raises(MessageError, match="overwritten"):
            out.image(0)
        with pytest.raises(ShmError, match="outside"):
            read_view(w.segment, 10**9, gen, slot, (6, 8, 3))
        with pytest.raises(ShmError, match="too large|exceeds"):
            w.write(8, 0, np.zeros((7, 8, 3), np.uint8))
    finally:
        w.close()
    assert not (SHM_DIR / w.segment).exists() and w.segment == f"selfpose3d-test-ring.{os.getpid()}"
    with pytest.raises(MessageError, match="does not exist"):
        out.image(0)


def test_segments_of_dead_processes_are_removed():
    from capture.shm import remove_stale_segments

    dead = _dead_pid()
    stale = SHM_DIR / f"selfpose3d-test-stale.{dead}"
    stale.write_bytes(b"x" * 64)
    mine = ShmWriter("selfpose3d-test-live", views=1, slot_bytes=8, ring=1)  # creating one cleans up
    try:
        assert not stale.exists() and (SHM_DIR / mine.segment).exists()
        assert remove_stale_segments() == []  # our own live segment is kept
    finally:
        mine.close()


def _dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


@pytest.mark.parametrize("copy_at", ["publish", "grab"])
def test_capture_process_with_shm_encoding(image_rig, ipc_endpoint, copy_at):
    from calib.rig_config import load_rig
    from capture.process import CaptureProcess, LiveRig
    from capture.sources.factory import build_sources

    rig = load_rig(image_rig)
    stop = threading.Event()
    segment = f"selfpose3d-t{copy_at}-{os.getpid()}"
    live = LiveRig(build_sources(rig, stop=stop, realtime=True), tolerance_ms=40, deadline_ms=100,
                   shm_segment=segment if copy_at == "grab" else None)
    got, segments = [], set()
    with Publisher(ipc_endpoint) as pub, Subscriber(ipc_endpoint, [b"frames/"]) as sub:
        proc = CaptureProcess("toy", live, pub, process="cap", encoding="shm")
        assert pub.wait_for_subscriber(5)
        thread = threading.Thread(target=proc.run, args=(stop,), kwargs={"max_sets": 4}, daemon=True)
        thread.start()
        end = time.monotonic() + 20
        while len(got) < 4 and time.monotonic() < end:
            m = sub.recv(100)
            if isinstance(m, FrameSet):
                got.append((m.views[2].encoding, green_level(m.image(2)), m.still_valid(2)))
                segments.add(m.views[2].shm[0])
        thread.join(10)
    assert got == [("shm", k, True) for k in range(4)]
    [name] = segments
    if copy_at == "grab":  # cam2's own ring, written on its reader thread
        assert name.startswith(f"{segment}-cam2-")
    else:  # the process's set ring, written when the set is published
        assert name.startswith(f"selfpose3d-toy-{os.getpid()}-")
    assert not (SHM_DIR / name).exists()  # removed when capture stopped
