"""A flood of malformed / forged framesets (about 300/s) while valid framesets flow: the worker's
receive path (Subscriber.recv_latest -> InferenceWorker) keeps producing poses, and the
subscriber's counters stay plausible (no 3e12 'gaps')."""

from __future__ import annotations

import threading
import time

import numpy as np

from app.worker import InferenceWorker
from capture.bus import Publisher, Subscriber
from capture.messages import FrameSet, View, encode, now_ns
from tests.app.test_worker import FakePredictor, _frameset, _people

KEY = b"r" * 32


def _flood(endpoint: str, rig, stop: threading.Event, sent: list) -> None:
    """~300 hostile messages/s: unsigned framesets of the right rig with absurd sequence numbers
    and wrong sizes, garbage headers, oversized headers, a wrong MAC."""
    big = np.zeros((8, 8, 3), np.uint8)
    wrong_size = FrameSet(
        "toy",
        3_000_000_000_000,
        now_ns(),
        now_ns(),
        (View(rig[0].name, 0, now_ns(), 8, 8, "bgr8", big.nbytes),),
        (big,),
    )
    forged = encode(wrong_size, b"x" * 32)
    kinds = [
        encode(wrong_size),
        [b"frames/toy", b"\xc1garbage"],
        [b"frames/toy", b"\x81" + b"\0" * (200 << 10)],
        forged,
    ]
    with Publisher(endpoint, hwm=1000, key=None) as pub:
        pub.wait_for_subscriber(5.0)
        i = 0
        while not stop.is_set():
            pub.send_frames(kinds[i % len(kinds)])
            sent[0] += 1
            i += 1
            time.sleep(1 / 300)


def test_flood_does_not_stop_poses_and_counters_stay_sane(toy_rig, tmp_path):
    frames_ep, attack_ep = f"ipc://{tmp_path}/frames", f"ipc://{tmp_path}/attack"
    worker = InferenceWorker(FakePredictor(_people()), toy_rig, "toy", max_age_ms=2000.0)
    stop = threading.Event()
    flood_sent = [0]
    with (
        Publisher(frames_ep, hwm=2, key=KEY) as capture,
        Subscriber([frames_ep, attack_ep], [b"frames/toy"], hwm=2, key=KEY) as sub,
    ):
        flood = threading.Thread(target=_flood, args=(attack_ep, toy_rig, stop, flood_sent), daemon=True)
        flood.start()
        assert capture.wait_for_subscriber(5.0)
        poses, valid_sent = 0, 0
        t_next = time.monotonic()
        end = time.monotonic() + 4.0
        while time.monotonic() < end:
            if time.monotonic() >= t_next:  # the capture: 10 valid sets/s
                capture.send(_frameset(toy_rig, valid_sent, now_ns()))
                valid_sent += 1
                t_next += 0.1
            msg = sub.recv_latest(timeout_ms=20)
            if isinstance(msg, FrameSet):
                poses += worker.process(msg) is not None
        stop.set()
        flood.join(5.0)
    assert flood_sent[0] > 600  # the flood really ran (~300/s for 4 s)
    assert sub.stats.bad > 0.5 * flood_sent[0]
    assert poses >= 0.7 * valid_sent, (poses, valid_sent, sub.stats)
    assert worker.stats.bad == 0  # nothing forged got past the subscriber
    assert sub.stats.gaps <= valid_sent and sub.stats.resets == 0
