"""Lockstep replay of media rigs (issue 23 item 1): native rate, the same frame index from every
camera, skipped frames counted per camera, every published set complete.

The videos are short synthetic mp4v clips at 60 fps shaped like the Pose2Sim demo (portrait,
smaller); each frame carries its own number as a stripe barcode, so a test can check that the
pixels of every view are the frame its ``frame_index`` says.
"""

from __future__ import annotations

import threading
import time

import cv2
import numpy as np
import pytest

from capture.process import LiveRig, lockstep
from capture.sources.factory import build_sources

W, H, BITS = 96, 160, 8  # portrait like 1088x1920, small enough for a 2-core test machine


def barcode_image(k: int) -> np.ndarray:
    """Frame ``k``: BITS vertical stripes, white where bit i of k is set."""
    img = np.zeros((H, W, 3), np.uint8)
    stripe = W // BITS
    for i in range(BITS):
        if k >> i & 1:
            img[:, i * stripe : (i + 1) * stripe] = 255
    return img


def read_barcode(img: np.ndarray) -> int:
    stripe = img.shape[1] // BITS
    gray = img.mean(axis=2)
    return sum(1 << i for i in range(BITS) if gray[:, i * stripe + 2 : (i + 1) * stripe - 2].mean() > 128)


def write_video(path, frames: int, fps: float = 60.0, size=(W, H)) -> None:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, size)
    assert writer.isOpened()
    for k in range(frames):
        img = barcode_image(k)
        writer.write(img if size == (W, H) else cv2.resize(img, size, interpolation=cv2.INTER_NEAREST))
    writer.release()


def media_rig(
    tmp_path, toy_rig, *, frames=(90, 90, 90, 90), realtime=True, loop=False, fps=None, sizes=None, calib_size=(W, H)
):
    """A 4-camera rig of 60 fps mp4v files (camera i has ``frames[i]`` frames of size ``sizes[i]``)
    under a calibration of ``calib_size``; returns the rig file."""
    from calib.camera import CameraRig
    from calib.io import scale_intrinsics
    from calib.rig_config import SourceConfig, VolumeConfig, save_rig

    sources = []
    for i, cam in enumerate(toy_rig.names):
        path = tmp_path / f"{cam}.mp4"
        write_video(path, frames[i], size=(sizes or {}).get(cam, (W, H)))
        sources.append(SourceConfig(kind="file", uri=str(path), fps=fps, realtime=realtime, loop=loop))
    small = CameraRig(tuple(scale_intrinsics(c, *calib_size) for c in toy_rig))
    # the toy room (4 m); without a volume the rig would size one from the cameras' field of view
    return save_rig(
        small,
        tmp_path / "rig.yaml",
        name="toy",
        sources=sources,
        volume=VolumeConfig(center_mm=(0.0, 0.0, 900.0), size_mm=(4000.0, 4000.0, 2000.0)),
    )


def _drain(live: LiveRig, *, consumer_s: float = 0.0, timeout_s: float = 30.0, max_sets: int | None = None):
    """Poll ``live`` until it ends, spending ``consumer_s`` per set (a slow consumer)."""
    sets = []
    end = time.monotonic() + timeout_s
    live.start()
    try:
        while time.monotonic() < end and not live.ended:
            for s in live.poll(0.01):
                sets.append(s)
                time.sleep(consumer_s)
            if max_sets is not None and len(sets) >= max_sets:
                break
    finally:
        live.stop()
    return sets


def _live(rig_path, **kw) -> LiveRig:
    from calib.rig_config import load_rig

    rig = load_rig(rig_path)
    sources = build_sources(rig, stop=threading.Event(), **kw)
    assert lockstep(sources)
    return LiveRig(
        sources,
        tolerance_ms=8.0,
        deadline_ms=50.0,
        lossless=True,
        lockstep=True,
        frame_shapes={c.name: (c.height, c.width, 3) for c in rig.cameras},
    )


def _check_exact(sets) -> list[int]:
    """Every set complete, one frame index for all views, and the pixels are that frame."""
    indices = []
    for s in sets:
        assert s.complete, s.missing
        ks = {f.payload.frame_index for f in s.frames}
        assert len(ks) == 1, ks
        k = ks.pop()
        assert [read_barcode(f.payload.image) for f in s.frames] == [k % 256] * 4
        assert len({f.t_ns for f in s.frames}) == 1
        indices.append(k)
    assert indices == sorted(set(indices))
    return indices


def test_slow_consumer_skips_the_same_frames_on_every_camera(tmp_path, toy_rig):
    """A consumer at ~15 sets/s on a 60 fps rig: the cameras skip the same indices (counted per
    camera), every set is complete and exact, the replay keeps the media's pace."""
    live = _live(media_rig(tmp_path, toy_rig, frames=(90,) * 4))
    t0 = time.monotonic()
    sets = _drain(live, consumer_s=0.06)
    seconds = time.monotonic() - t0
    indices = _check_exact(sets)
    skipped = live.schedule.skipped
    assert len(set(skipped.values())) == 1 and skipped["cam0"] > 30, skipped
    assert indices[-1] >= 80 and len(indices) < 60  # reached the end at the media's pace, skipping
    assert seconds < 1.5 + 90 / 60  # not slowed down to the consumer's rate (90 sets * 60 ms)
    counts = live.counts()
    assert counts["complete"] == len(sets) and counts["incomplete"] == 0
    assert counts["skipped/cam3"] == skipped["cam3"] and counts["dropped/late"] == 0


def test_unpaced_replay_delivers_every_frame_and_fps_caps_the_rate(tmp_path, toy_rig):
    live = _live(media_rig(tmp_path, toy_rig, frames=(40,) * 4, realtime=False))
    assert _check_exact(_drain(live)) == list(range(40))
    assert set(live.schedule.skipped.values()) == {0}
    capped = _live(
        media_rig(tmp_path / "cap", toy_rig, frames=(40,) * 4, realtime=False, fps=30.0)
        if (tmp_path / "cap").mkdir() is None
        else None
    )
    assert _check_exact(_drain(capped)) == list(range(0, 40, 2))  # rig fps 30 on 60 fps files


def test_paced_replay_is_not_faster_than_the_media(tmp_path, toy_rig):
    live = _live(media_rig(tmp_path, toy_rig, frames=(30,) * 4))
    t0 = time.monotonic()
    indices = _check_exact(_drain(live))
    assert time.monotonic() - t0 >= 29 / 60 - 0.02
    assert indices[-1] == 29


def test_looping_cameras_of_different_lengths_wrap_together(tmp_path, toy_rig):
    """The shortest camera sets the lap: frame indices keep increasing, pixels are index % lap."""
    live = _live(media_rig(tmp_path, toy_rig, frames=(25, 30, 30, 28), realtime=False, loop=True))
    sets = _drain(live, max_sets=60)
    assert len(sets) >= 60
    for s in sets:
        k = s.frames[0].payload.frame_index
        assert s.complete and [read_barcode(f.payload.image) for f in s.frames] == [k % 25] * 4
        assert {f.payload.frame_index for f in s.frames} == {k}
    assert [s.frames[0].payload.frame_index for s in sets] == list(range(len(sets)))


def test_a_camera_that_ends_early_does_not_stall_the_others(tmp_path, toy_rig):
    live = _live(media_rig(tmp_path, toy_rig, frames=(20, 40, 40, 40), realtime=False))
    sets = _drain(live)
    assert _check_exact(sets[:20]) == list(range(20))
    assert [s.frames[0].payload.frame_index for s in sets[20:]] == list(range(20, 40))
    assert all(s.missing == ("cam0",) for s in sets[20:])
    assert live.counts()["missing/cam0"] == 20


def test_rig_check_names_a_missing_file_and_a_size_mismatch(tmp_path, toy_rig):
    """Issue 23 items 4 and 12a: checked when the sources are built, before any frame."""
    from calib.rig_config import load_rig
    from capture.source import SourceError

    path = media_rig(tmp_path, toy_rig, frames=(5,) * 4, sizes={"cam1": (W, H - 2)}, calib_size=(W, H))
    with pytest.raises(
        SourceError,
        match=f"cam1: frame {W}×{H - 2} but calibration says {W}×{H}: "
        "fix the calibration's image size or pass --resize",
    ):
        build_sources(load_rig(path), stop=threading.Event())
    resized = build_sources(load_rig(path), stop=threading.Event(), resize=True, realtime=False)
    live = LiveRig(
        resized,
        tolerance_ms=8.0,
        deadline_ms=50.0,
        lossless=True,
        lockstep=True,
        frame_shapes={c: (H, W, 3) for c in toy_rig.names},
    )
    sets = _drain(live)
    assert len(sets) == 5 and all(s.complete for s in sets)
    assert all(f.payload.image.shape == (H, W, 3) for s in sets for f in s.frames)
    (tmp_path / "cam2.mp4").unlink()
    with pytest.raises(SourceError, match="camera 'cam2': video file .*cam2.mp4 not found"):
        build_sources(load_rig(path), stop=threading.Event(), resize=True)


def test_decode_bound_cameras_slip_the_timeline_instead_of_skipping():
    """Skipping a video frame still decodes it: when a camera needs more than a frame period per
    frame (four 1088x1920 H.264 views on 2 cores), the schedule publishes every frame it decodes
    and lets the timeline slip; when the cameras are fast it skips to the due frame."""
    from capture.schedule import ReplaySchedule

    def rounds(frame_s: float) -> tuple[list[int], ReplaySchedule]:
        sch = ReplaySchedule(["a", "b"], 60.0, realtime=True)
        got, current = [], 0
        for _ in range(4):
            for cam in ("a", "b"):
                sch.note_frame_s(cam, frame_s)
            ka, kb = sch.next_index("a", current), sch.next_index("b", current)
            assert ka == kb and sch.wait("a") == sch.wait("b")  # one index, one timestamp per round
            got.append(ka)
            current = ka + 1
            time.sleep(0.1)  # a slow consumer: 6 frame periods per round
        return got, sch

    slow, sch = rounds(0.05)
    assert slow == [0, 1, 2, 3] and sch.slipped_s > 0.2 and sch.skipped == {"a": 0, "b": 0}
    fast, sch = rounds(0.001)
    assert fast[-1] >= 15 and sch.slipped_s == 0.0 and sch.skipped["a"] == sch.skipped["b"] > 10


def test_a_consumer_holding_the_replay_slips_the_timeline_instead_of_skipping():
    from capture.schedule import ReplaySchedule

    sched = ReplaySchedule(["a", "b"], fps=60.0, realtime=True)
    for cam in ("a", "b"):
        sched.next_index(cam, 0)
    start = sched.pacer.start_ns
    sched.consumer_held(0.5)  # the subscriber's queue was full for half a second
    assert sched.pacer.start_ns == start + 500_000_000 and sched.slipped_s == 0.5
    assert sched.next_index("a", 1) == 1 and sched.skipped["a"] == 0  # nothing skipped for it
