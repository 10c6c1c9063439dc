"""Lossless replay paced by its consumer's answers (credit-based flow control).

A media replay in lockstep should decode only what its consumer will use. Waiting on a full
ZeroMQ queue does not achieve that: the kernel buffers of an ipc socket hold many small
messages (with shared-memory frames a frameset message is a few KB), so the publisher rarely
sees the queue full, the consumer keeps draining to the newest set, and the sets in between were
decoded for nothing (a third of them on the Pose2Sim footage, docs/real_route.md). The stamps of
the queued sets also age while they wait, which is latency a live camera never has.

:class:`ConsumerCredit` closes the loop on the consumer's own output: the live app's inference
worker answers every frameset it processes with a ``Poses`` message carrying its
``frameset_seq``. Frameset ``s`` is published only once the answers reached ``s - in_flight``
(one set being processed, one queued), or after ``timeout_s`` (a consumer that skipped or lost
a set never blocks the replay for longer than that).
"""

from __future__ import annotations

import threading
import time

from capture.bus import Subscriber
from capture.messages import Poses


class ConsumerCredit:
    """Credit for a capture's lockstep replay from the answers on ``poses/<rig>``.

    Args:
        endpoint: the consumer's poses endpoint (the live worker's ``poses_endpoint``).
        rig: rig name (the topic ``poses/<rig>``).
        in_flight: framesets published but not yet answered that the consumer may hold.
        timeout_s: longest wait for one answer before publishing anyway.
    """

    def __init__(self, endpoint: str, rig: str, *, in_flight: int = 2, timeout_s: float = 1.0) -> None:
        if in_flight < 1:
            raise ValueError(f"ConsumerCredit: in_flight must be >= 1, got {in_flight}")
        self.in_flight = int(in_flight)
        self.timeout_s = float(timeout_s)
        self.answered_seq = -1  # highest frameset seq the consumer answered
        self.timeouts = 0  # waits that ended without an answer
        self._sub = Subscriber(endpoint, [f"poses/{rig}".encode()], hwm=64)

    def _drain(self, timeout_ms: int) -> None:
        msg = self._sub.recv(timeout_ms)
        while msg is not None:
            if isinstance(msg, Poses):
                self.answered_seq = max(self.answered_seq, int(msg.frameset_seq))
            msg = self._sub.recv(0)

    def wait(self, seq: int, stop: threading.Event | None = None) -> float:
        """Block until frameset ``seq`` may be published; returns the seconds waited."""
        t0 = time.monotonic()
        end = t0 + self.timeout_s
        self._drain(0)
        if seq - self.answered_seq <= self.in_flight:
            return 0.0  # no wait: the timeline does not move
        while seq - self.answered_seq > self.in_flight:
            left = end - time.monotonic()
            if left <= 0 or (stop is not None and stop.is_set()):
                self.timeouts += left <= 0
                break
            self._drain(max(1, min(20, int(left * 1e3))))
        return time.monotonic() - t0

    def close(self) -> None:
        self._sub.close()
