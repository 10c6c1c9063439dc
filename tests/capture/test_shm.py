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
from capture.shm import SHM_DIR, ShmError, ShmFrameRing, ShmWriter, read_view
from capture.source import Frame

from .conftest import green_level


def test_ring_write_read_and_overwrite_detection(rng):
    w = ShmWriter("selfpose3d-test-ring", views=2, slot_bytes=6 * 8 * 3, ring=2)
    try:
        img = rng.integers(0, 255, (6, 8, 3), dtype=np.uint8)
        slot, offset, gen = w.write(5, 1, img)
        np.testing.assert_array_equal(read_view(w.segment, offset, gen, slot, (6, 8, 3)), img)
        fs = FrameSet(
            "lab", 5, 1, 2, (View("c1", 0, 1, 8, 6, "shm", img.nbytes, shm=(w.segment, slot, offset, gen)),), (None,)
        )
        frames = encode(fs)
        assert len(frames) == 2  # header only: the pixels stay in shared memory
        out = decode(frames)
        np.testing.assert_array_equal(out.image(0), img)
        assert out.still_valid(0)
        latest = w.write(7, 1, img[::-1].copy())  # same slot two sets later (ring = 2)
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
    # the writer is gone: what we already map stays readable ...
    np.testing.assert_array_equal(read_view(w.segment, latest[1], latest[2], latest[0], (6, 8, 3)), img[::-1])
    other = ShmWriter("selfpose3d-test-other", views=1, slot_bytes=8, ring=1)
    try:
        o_slot, o_offset, o_gen = other.write(0, 0, np.ones((1, 1, 8), np.uint8))
        assert read_view(other.segment, o_offset, o_gen, o_slot, (1, 1, 8)).sum() == 8
    finally:
        other.close()
    with pytest.raises(MessageError, match="does not exist"):  # ... until a new segment is mapped
        out.image(0)


def test_frame_ring_takes_frames_decoded_in_place_copies_others_and_follows_resolution(rng):
    ring = ShmFrameRing("selfpose3d-test-fring", ring=2, shape=(6, 8, 3))
    try:
        buf = ring.next_buffer()
        assert buf.shape == (6, 8, 3) and buf.flags.writeable
        img = rng.integers(0, 255, (6, 8, 3), dtype=np.uint8)
        buf[:] = img  # a source decoding into the slot
        first = ring.commit(Frame("c", buf, 1, 0), buf)
        seg, slot, offset, gen = first.shm
        np.testing.assert_array_equal(read_view(seg, offset, gen, slot, (6, 8, 3)), img)
        assert (ring.in_place, ring.copied) == (1, 0)

        own = img[::-1].copy()  # a source that returns its own image: copied into the slot
        second = ring.commit(Frame("c", own, 2, 1), ring.next_buffer())
        np.testing.assert_array_equal(
            read_view(second.shm[0], second.shm[2], second.shm[3], second.shm[1], (6, 8, 3)), own
        )
        assert (ring.in_place, ring.copied) == (1, 1) and second.shm[1] != slot

        being_written = ring.next_buffer()  # slot 0 again (ring of 2): the first frame is gone
        with pytest.raises(ShmError, match="overwritten"):
            read_view(seg, offset, gen, slot, (6, 8, 3))
        again = ring.next_buffer()  # not committed: the same slot
        assert again.__array_interface__["data"][0] == being_written.__array_interface__["data"][0]

        big = rng.integers(0, 255, (10, 12, 3), dtype=np.uint8)  # the camera changed resolution
        third = ring.commit(Frame("c", big, 3, 2), again)
        assert third.shm[0] != seg and not (SHM_DIR / seg).exists()
        np.testing.assert_array_equal(read_view(third.shm[0], third.shm[2], third.shm[3], third.shm[1], big.shape), big)
        assert ring.next_buffer().shape == (10, 12, 3)
    finally:
        ring.close()
    assert not (SHM_DIR / third.shm[0]).exists()


def test_video_cameras_decode_straight_into_shared_memory(video_rig, ipc_endpoint):
    from calib.rig_config import load_rig
    from capture.config import CaptureConfig, StreamConfig
    from capture.process import build_capture

    rig = load_rig(video_rig)
    stop = threading.Event()
    cfg = CaptureConfig(realtime=True, stream=StreamConfig(endpoint=ipc_endpoint, encoding="shm"))
    proc, pub = build_capture(rig, cfg, stop=stop)
    got = []
    with pub, Subscriber(ipc_endpoint, [b"frames/"]) as sub:
        assert pub.wait_for_subscriber(5)
        thread = threading.Thread(target=proc.run, args=(stop,), daemon=True)
        thread.start()
        end = time.monotonic() + 20
        while len(got) < 6 and time.monotonic() < end:
            m = sub.recv(100)
            if isinstance(m, FrameSet):
                got.append([green_level(m.image(i)) for i in range(4)])
                assert {v.shm[0].split("-")[2] for v in m.views} == {"cam0", "cam1", "cam2", "cam3"}
        thread.join(10)
    assert got == [[k] * 4 for k in range(6)]
    rings = proc.live.rings
    assert [r.in_place for r in rings] == [6] * 4 and [r.copied for r in rings] == [0] * 4  # no pixel copy


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
    live = LiveRig(
        build_sources(rig, stop=stop, realtime=True),
        tolerance_ms=40,
        deadline_ms=100,
        shm_segment=segment if copy_at == "grab" else None,
    )
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
