"""A rig spread over two capture processes: partial framesets merged back into full-rig sets."""

from __future__ import annotations

import threading
import time

import numpy as np

from capture.bus import Publisher, Subscriber
from capture.merge import FramesetMerger
from capture.messages import FrameSet, View, decode, encode
from capture.process import CaptureProcess, LiveRig
from capture.source import Frame, Source

PERIOD = 50_000_000


def _partial(source, cams, k, rng, seq=None):
    views, bufs = [], []
    for c in cams:
        t = 10**12 + k * PERIOD + int(rng.normal(0, 2e6))
        img = np.full((4, 6, 3), k % 256, np.uint8)
        views.append(View(c, k, t, 6, 4, "bgr8", img.nbytes))
        bufs.append(img)
    return decode(
        encode(
            FrameSet(
                "lab",
                k if seq is None else seq,
                min(v.t_ns for v in views),
                0,
                tuple(views),
                tuple(bufs),
                source=source,
            )
        )
    )


def test_merger_regroups_views_from_two_processes(rng):
    merger = FramesetMerger("lab", ["a", "b", "c"], tolerance_ms=20, deadline_ms=80)
    out = []
    for k in range(20):
        now = 10**12 + k * PERIOD + 10_000_000
        if k != 7:  # process 2 lost its set 7
            merger.push(_partial("p2", ["c"], k, rng), now)
        merger.push(_partial("p1", ["a", "b"], k, rng), now + 1_000_000)
        out += merger.poll(now + 2_000_000)
    out += merger.poll(10**13)
    assert [m.seq for m in out] == list(range(20)) and all(m.source == "merged" for m in out)
    assert all(m.cameras == ["a", "b", "c"] for i, m in enumerate(out) if i != 7)
    assert out[7].cameras == ["a", "b"] and out[7].missing == ("c",)
    assert all(int(m.image(j)[0, 0, 0]) == m.views[0].frame_index for m in out for j in range(len(m.views)))
    assert all(m.skew_ms <= 20 for m in out)
    assert merger.stats.complete == 19 and merger.stats.incomplete == 1


class _Cam(Source):
    live = True

    def __init__(self, name, start_ns, n):
        self.camera, self.start_ns, self.n, self.k = name, start_ns, n, 0

    def open(self):
        pass

    def read(self):
        if self.k >= self.n:
            return None
        t = self.start_ns + self.k * PERIOD
        time.sleep(max(0.0, (t - time.time_ns()) / 1e9))
        self.k += 1
        return Frame(self.camera, np.full((4, 6, 3), self.k - 1, np.uint8), t, self.k - 1)


def test_two_capture_processes_one_subscriber(ipc_endpoint):
    ep1, ep2 = ipc_endpoint, ipc_endpoint + "2"
    start = time.time_ns() + 300_000_000
    procs, pubs = [], []
    for name, cams, ep in (("cap-host1", ["a", "b"], ep1), ("cap-host2", ["c"], ep2)):
        live = LiveRig([_Cam(c, start, 10) for c in cams], tolerance_ms=20, deadline_ms=60)
        pub = Publisher(ep)
        pubs.append(pub)
        procs.append(CaptureProcess("lab", live, pub, process=name))
    merger = FramesetMerger("lab", ["a", "b", "c"], tolerance_ms=20, deadline_ms=100)
    merged, sources = [], set()
    with Subscriber([ep1, ep2], [b"frames/lab"]) as sub:
        assert all(p.wait_for_subscriber(5) for p in pubs)
        stop = threading.Event()
        threads = [threading.Thread(target=p.run, args=(stop,), daemon=True) for p in procs]
        for t in threads:
            t.start()
        end = time.monotonic() + 20
        while len(merged) < 10 and time.monotonic() < end:
            m = sub.recv(50)
            if isinstance(m, FrameSet):
                sources.add(m.source)
                merger.push(m, time.time_ns())
            merged += merger.poll(time.time_ns())
        for t in threads:
            t.join(10)
        assert sub.stats.gaps == 0  # one sequence per source: no false gaps
    for p in pubs:
        p.close()
    assert sources == {"cap-host1", "cap-host2"}
    assert len(merged) == 10 and all(m.cameras == ["a", "b", "c"] for m in merged)
    assert [m.views[2].frame_index for m in merged] == list(range(10))
