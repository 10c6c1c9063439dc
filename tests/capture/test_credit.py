"""A lockstep replay paced by its consumer's answers (capture/credit.py) and re-stamped on the
slipped timeline (CaptureProcess._restamp)."""

from __future__ import annotations

import threading
import time
from types import SimpleNamespace

import numpy as np

from calib.common.skeleton import PANOPTIC15
from capture.bus import Publisher
from capture.credit import ConsumerCredit
from capture.messages import Poses, now_ns
from capture.process import CaptureProcess
from capture.schedule import ReplaySchedule
from capture.source import Frame
from capture.sync import SyncedFrame, SyncedSet


def _answer(frameset_seq: int) -> Poses:
    return Poses(
        rig="toy",
        seq=frameset_seq,
        frameset_seq=frameset_seq,
        t_capture_ns=now_ns(),
        t_publish_ns=now_ns(),
        skeleton_name="panoptic15",
        joints=PANOPTIC15.joints,
        edges=PANOPTIC15.edges,
        poses=np.zeros((0, 15, 4), np.float32),
        track_ids=np.zeros(0, np.int64),
        timings_ms={},
    )


def _connected(pub: Publisher) -> None:
    end = time.monotonic() + 5
    while not pub.subscribers_seen() and time.monotonic() < end:
        time.sleep(0.01)
    assert pub.subscribers_seen()


def test_credit_holds_a_set_until_the_consumer_answered_the_one_in_flight_before_it(ipc_endpoint):
    with Publisher(ipc_endpoint, hwm=16) as pub:
        credit = ConsumerCredit(ipc_endpoint, "toy", in_flight=2, timeout_s=3.0)
        try:
            _connected(pub)
            assert credit.wait(0) < 0.1 and credit.wait(1) < 0.1  # two may be in flight unanswered
            timer = threading.Timer(0.4, lambda: pub.send(_answer(0)))
            timer.start()
            waited = credit.wait(2)  # needs the answer to set 0
            timer.join()
            assert 0.3 < waited < 2.0 and credit.answered_seq == 0 and credit.timeouts == 0
            pub.send(_answer(5))  # a consumer that skipped sets answers a newer one: 6 and 7 may go
            time.sleep(0.1)
            assert credit.wait(7) < 0.1 and credit.answered_seq == 5
        finally:
            credit.close()


def test_credit_gives_up_after_its_timeout_and_counts_it(ipc_endpoint):
    with Publisher(ipc_endpoint, hwm=16):
        credit = ConsumerCredit(ipc_endpoint, "toy", in_flight=1, timeout_s=0.3)
        try:
            waited = credit.wait(4)  # nobody answers
            assert 0.25 < waited < 1.0 and credit.timeouts == 1
        finally:
            credit.close()


def test_a_set_held_for_the_consumer_is_stamped_when_the_slipped_timeline_presents_it():
    sched = ReplaySchedule(["a", "b"], fps=60.0, realtime=True)
    k = sched.next_index("a", 0)
    sched.next_index("b", 0)
    t_k = sched.pacer.t_ns(k)
    live = SimpleNamespace(cameras=("a", "b"), schedule=sched, lockstep=True)
    publisher = SimpleNamespace(send=lambda msg, wait_ms=0.0: True, stats=SimpleNamespace(dropped=0))
    proc = CaptureProcess("toy", live, publisher, process="capture")
    img = np.zeros((4, 4, 3), np.uint8)
    synced = SyncedSet(
        t_ref_ns=t_k,
        frames=tuple(SyncedFrame(c, t_k, Frame(c, img, t_k, k)) for c in ("a", "b")),
        missing=(),
        skew_ms=0.0,
    )
    time.sleep(0.25)
    sched.consumer_held(0.2)  # the consumer kept the replay waiting after this set was stamped
    moved = proc._restamp(synced)
    assert moved.t_ref_ns - t_k == 200_000_000  # by exactly the slip
    assert all(f.t_ns == moved.t_ref_ns for f in moved.frames)
    sched.consumer_held(10.0)  # never stamped in the future
    assert proc._restamp(synced).t_ref_ns <= now_ns()
