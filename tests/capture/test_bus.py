"""Publisher/Subscriber over real ZeroMQ sockets (in one process): round trip, drop-not-queue,
drain-to-newest, gap counting, bad messages survived, endpoint policy."""

from __future__ import annotations

import time

import numpy as np
import pytest
import zmq

from capture.bus import EndpointError, Publisher, Subscriber, check_endpoint, context
from capture.messages import FrameSet, Status, View, encode


def _fs(seq: int, side: int = 8) -> FrameSet:
    img = np.full((side, side, 3), seq % 256, dtype=np.uint8)
    return FrameSet(
        "lab", seq, seq * 10, seq * 10 + 1, (View("c0", seq, seq * 10, side, side, "bgr8", img.nbytes),), (img,)
    )


def _connected(endpoint, topics=(b"frames/",), hwm=4):
    pub = Publisher(endpoint, hwm=2)
    sub = Subscriber(endpoint, topics, hwm=hwm)
    assert pub.wait_for_subscriber(5.0)
    return pub, sub


def test_round_trip_and_topic_filter(ipc_endpoint):
    pub, sub = _connected(ipc_endpoint)
    with pub, sub:
        assert pub.send(Status("other", "ready", 1))  # filtered out by the subscription
        assert pub.send(_fs(3))
        msg = sub.recv(2000)
        assert isinstance(msg, FrameSet) and msg.seq == 3
        np.testing.assert_array_equal(msg.image(0), np.full((8, 8, 3), 3, np.uint8))
        assert sub.recv(50) is None


def test_slow_subscriber_makes_publisher_drop_not_block(ipc_endpoint):
    pub, sub = _connected(ipc_endpoint, hwm=2)
    with pub, sub:
        t0 = time.perf_counter()
        accepted = [seq for seq in range(60) if pub.send(_fs(seq, side=600))]  # ~1 MB each; nobody reads
        elapsed = time.perf_counter() - t0
        assert elapsed < 2.0  # never waited on the subscriber
        assert pub.stats.dropped > 0 and len(accepted) == pub.stats.sent < 60
        got = []
        while (msg := sub.recv_latest(500)) is not None:
            got.append(msg.seq)
        assert got and got[-1] == accepted[-1]  # the newest accepted message arrives
        assert len(got) + sub.stats.skipped == len(accepted)  # the rest were drained as stale
        assert sub.stats.gaps == accepted[-1] + 1 - len(accepted)  # publisher drops show up as gaps


def test_sequence_gaps_are_counted(ipc_endpoint):
    pub, sub = _connected(ipc_endpoint)
    with pub, sub:
        for seq in (0, 1, 2, 5, 6, 10):
            assert pub.send(_fs(seq))
            assert sub.recv(2000).seq == seq
        assert sub.stats.gaps == 2 + 3 and sub.stats.received == 6


def test_bad_messages_are_counted_and_dropped(ipc_endpoint):
    raw = context().socket(zmq.PUB)
    raw.bind(ipc_endpoint)
    sub = Subscriber(ipc_endpoint, (b"",))
    try:
        probe = encode(Status("probe", "ready", 1))
        for _ in range(100):  # wait until the subscription has reached the publisher
            raw.send_multipart(probe)
            if sub.recv(50) is not None:
                break
        while sub.recv(50) is not None:
            pass
        good = encode(_fs(1))
        raw.send_multipart([b"frames/lab", b"\xc1garbage"])
        raw.send_multipart([b"frames/lab", good[1]])  # header promises a buffer that is absent
        raw.send_multipart([b"frames/lab"])
        raw.send_multipart(good)
        msg = sub.recv(3000)
        assert isinstance(msg, FrameSet) and msg.seq == 1
        assert sub.stats.bad == 3
    finally:
        raw.close(0)
        sub.close()


def test_endpoint_policy():
    assert check_endpoint("tcp://127.0.0.1:5555") == "tcp://127.0.0.1:5555"
    assert check_endpoint("ipc:///tmp/x")
    for bad in ("tcp://0.0.0.0:5555", "tcp://*:5555", "tcp://192.168.1.4:5555"):
        with pytest.raises(EndpointError, match="allow_remote"):
            check_endpoint(bad)
        assert check_endpoint(bad, allow_remote=True) == bad
    for bad in ("udp://x:1", "tcp://127.0.0.1", "tcp://127.0.0.1:99999", "ipc://"):
        with pytest.raises(EndpointError):
            check_endpoint(bad)


def test_drain_to_newest_keeps_status_messages(ipc_endpoint):
    pub, sub = _connected(ipc_endpoint, topics=(b"",), hwm=64)
    with pub, sub:
        for seq in range(5):
            assert pub.send(_fs(seq), wait_ms=1000)
            if seq == 2:
                assert pub.send(Status("cap", "running", seq), wait_ms=1000)
        time.sleep(0.3)
        first = sub.recv_latest(2000)
        assert isinstance(first, FrameSet)
        rest = [first]
        while (m := sub.recv_latest(300)) is not None:
            rest.append(m)
        framesets = [m for m in rest if isinstance(m, FrameSet)]
        statuses = [m for m in rest if isinstance(m, Status)]
        assert framesets[-1].seq == 4 and len(statuses) == 1  # status not lost to the drain
        assert sub.stats.skipped == 5 - len(framesets)
