"""FrameSynchronizer under jitter, drift, dropped and duplicated timestamps (pure, simulated time)."""

from __future__ import annotations

import numpy as np
import pytest

from capture.sync import FrameSynchronizer

PERIOD_NS = 33_333_333  # 30 fps
CAMS = ["a", "b", "c", "d"]


def _simulate(sync, events, step_ns=PERIOD_NS // 4):
    """Feed (arrival_ns, camera, t_ns, payload) events in arrival order; poll as time passes."""
    events = sorted(events, key=lambda e: e[0])
    out, i = [], 0
    now = events[0][0]
    end = events[-1][0] + 10 * PERIOD_NS
    while now <= end:
        while i < len(events) and events[i][0] <= now:
            _, cam, t, payload = events[i]
            sync.push(cam, t, payload)
            i += 1
        out += sync.poll(now)
        now += step_ns
    return out


def _camera_events(rng, n, *, jitter_ms=0.0, drift_ppm=None, offset_ms=None, latency_ms=5.0):
    events = []
    for ci, cam in enumerate(CAMS):
        ppm = 0.0 if drift_ppm is None else drift_ppm[ci]
        off = 0.0 if offset_ms is None else offset_ms[ci]
        for k in range(n):
            t = int(1e12 + k * PERIOD_NS * (1 + ppm * 1e-6) + off * 1e6 + rng.normal(0, jitter_ms * 1e6))
            arrival = t + int(latency_ms * 1e6 + abs(rng.normal(0, 2e6)))
            events.append((arrival, cam, t, (cam, k)))
    return events


def _check_sets(sets, tol_ms):
    used = set()
    for s in sets:
        assert s.skew_ms <= tol_ms + 1e-9
        assert [f.camera for f in s.frames] == [c for c in CAMS if c not in s.missing]
        assert all(abs(f.t_ns - s.t_ref_ns) <= tol_ms * 1e6 for f in s.frames)
        for f in s.frames:
            assert f.payload not in used  # every frame used at most once
            used.add(f.payload)
    assert all(a.t_ref_ns < b.t_ref_ns for a, b in zip(sets, sets[1:]))


def test_jittered_cameras_give_complete_sets_in_order(rng):
    sync = FrameSynchronizer(CAMS, tolerance_ms=16, deadline_ms=60)
    sets = _simulate(sync, _camera_events(rng, 200, jitter_ms=1.5, offset_ms=[0, 2, -2, 3]))
    _check_sets(sets, 16)
    assert len(sets) == 200 and all(s.complete for s in sets)
    # frame k of every camera lands in set k
    assert all({f.payload[1] for f in s.frames} == {k} for k, s in enumerate(sets))
    assert max(s.skew_ms for s in sets) < 16 and sync.stats.dropped_frames == 0


def test_drifting_camera_is_paired_while_in_tolerance_then_reported(rng):
    # camera d runs 2 % fast: it gains a frame every 50 frames and leaves orphans as incomplete sets
    sync = FrameSynchronizer(CAMS, tolerance_ms=16, deadline_ms=60)
    sets = _simulate(sync, _camera_events(rng, 300, drift_ppm=[0, 0, 0, -20_000]))
    _check_sets(sets, 16)
    used_d = sum(1 for s in sets for f in s.frames if f.camera == "d")
    assert used_d == 300  # no frame of the fast camera is lost ...
    incomplete = [s for s in sets if not s.complete]
    assert 4 <= len(incomplete) <= 16  # ... its surplus comes out as sets missing a, b, c
    assert sync.stats.complete + sync.stats.incomplete == len(sets)


def test_dropped_frames_give_incomplete_sets_after_deadline_without_stalling(rng):
    events = [
        e
        for e in _camera_events(rng, 120, jitter_ms=1.0)
        if not (e[1] == "b" and e[3][1] % 10 == 3) and not (e[1] == "c" and e[3][1] >= 60)
    ]
    sync = FrameSynchronizer(CAMS, tolerance_ms=16, deadline_ms=50)
    sets = _simulate(sync, events)
    _check_sets(sets, 16)
    assert len(sets) == 120
    assert sum("b" in s.missing for s in sets) == 12
    assert sum("c" in s.missing for s in sets) == 60 and sync.stats.missing_per_camera["c"] == 60
    # camera c is dead: each later set is emitted within the deadline of its oldest frame
    latencies = []
    sync2 = FrameSynchronizer(CAMS, tolerance_ms=16, deadline_ms=50)
    for arrival, cam, t, payload in sorted(events, key=lambda e: e[0]):
        sync2.push(cam, t, payload)
        for now in range(arrival, arrival + 200_000_000, 1_000_000):
            ready = sync2.poll(now)
            latencies += [now - s.t_ref_ns for s in ready if "c" in s.missing and "b" not in s.missing]
            if ready or sync2.pending == 0:
                break
    assert latencies and max(latencies) <= 60e6


def test_duplicates_and_late_frames_are_dropped_and_counted():
    sync = FrameSynchronizer(["a", "b"], tolerance_ms=10, deadline_ms=30)
    assert sync.push("a", 100_000_000, 1)
    assert not sync.push("a", 100_000_000, 2)  # duplicate timestamp
    assert not sync.push("a", 90_000_000, 3)  # goes back in time
    assert sync.poll(120_000_000) == []  # b may still come
    [s] = sync.poll(131_000_000)  # deadline passed
    assert s.missing == ("b",) and [f.payload for f in s.frames] == [1]
    assert not sync.push("b", 99_000_000, 4)  # its window is gone
    assert sync.stats.duplicates == 2 and sync.stats.late == 1 and sync.stats.dropped_frames == 3


def test_missing_camera_that_already_moved_on_does_not_delay():
    sync = FrameSynchronizer(["a", "b"], tolerance_ms=10, deadline_ms=1000)
    sync.push("a", 0, "a0")
    sync.push("b", 33_000_000, "b1")  # b skipped frame 0
    [s] = sync.poll(34_000_000)  # no need to wait for the deadline: b cannot deliver t~0 any more
    assert s.missing == ("b",)
    sync.push("a", 33_500_000, "a1")
    [s] = sync.poll(34_000_000)
    assert s.complete and s.skew_ms == pytest.approx(0.5)


def test_min_views_and_overflow():
    sync = FrameSynchronizer(["a", "b", "c"], tolerance_ms=5, deadline_ms=10, min_views=2, max_pending=3)
    for k in range(5):
        sync.push("a", k * 33_000_000, k)
    assert sync.stats.overflow == 2
    assert sync.flush() == []  # only one view per instant: dropped
    assert sync.stats.too_few_views == 3
    with pytest.raises(KeyError, match="unknown camera 'z'"):
        sync.push("z", 0)
    with pytest.raises(ValueError, match="min_views"):
        FrameSynchronizer(["a"], tolerance_ms=5, deadline_ms=5, min_views=2)


def test_randomised_streams_never_violate_invariants():
    rng = np.random.default_rng(7)
    for _trial in range(20):
        events = _camera_events(
            rng, 60, jitter_ms=rng.uniform(0, 6), offset_ms=rng.uniform(-8, 8, 4), drift_ppm=rng.uniform(-3000, 3000, 4)
        )
        events = [e for e in events if rng.random() > 0.1]
        events += [(e[0] + 1000, *e[1:]) for e in events if rng.random() < 0.05]  # duplicates
        sync = FrameSynchronizer(CAMS, tolerance_ms=16, deadline_ms=40)
        sets = _simulate(sync, events) + sync.flush()
        _check_sets(sets, 16)
        delivered = sum(len(s.frames) for s in sets)
        assert delivered + sync.stats.dropped_frames == len(events)


def test_deadline_counts_from_arrival_when_camera_clocks_differ_from_host():
    # camera timestamps from a device clock (epoch ~0) while the host clock is ~1e18: the
    # deadline must run from when the frame arrived, not from its capture stamp
    sync = FrameSynchronizer(["a", "b"], tolerance_ms=10, deadline_ms=50)
    host = 10**18
    sync.push("a", 1_000_000, "a0", arrival_ns=host)
    assert sync.poll(host + 20_000_000) == []  # still waiting for b
    sync.push("b", 2_000_000, "b0", arrival_ns=host + 30_000_000)
    [s] = sync.poll(host + 31_000_000)
    assert s.complete and s.skew_ms == pytest.approx(1.0)
    sync.push("a", 34_000_000, "a1", arrival_ns=host + 40_000_000)
    assert sync.poll(host + 80_000_000) == []
    [s] = sync.poll(host + 91_000_000)  # 51 ms after a1 arrived
    assert s.missing == ("b",)
