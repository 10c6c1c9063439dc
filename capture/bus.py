"""ZeroMQ publisher/subscriber for the live stream (DESIGN.md §4).

* :class:`Publisher` binds an XPUB socket with a small high-water mark and ``XPUB_NODROP``, and
  sends with ``NOBLOCK``: when a subscriber is behind, the message is *dropped and counted*
  instead of queued, so nothing ever waits on a slow consumer. Buffers go out zero-copy.
* :class:`Subscriber` connects a SUB socket; :meth:`Subscriber.recv_latest` drains whatever
  is queued and returns only the newest message (stale ones are counted as ``skipped``);
  sequence gaps per topic are counted; undecodable messages are counted, logged (rate-limited)
  and dropped, never raised.
* Endpoints: ``ipc://PATH`` or ``tcp://HOST:PORT``. A publisher binds to loopback unless
  ``allow_remote=True`` (then ``tcp://*:PORT`` or a LAN address is accepted).
"""

from __future__ import annotations

import logging
import time
from collections import deque
from dataclasses import dataclass
from typing import Any, Sequence

import zmq

from calib.common.errors import EndpointError
from capture.messages import FrameSet, Message, MessageError, Poses, Status, decode, encode

log = logging.getLogger(__name__)

LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "[::1]", "::1")
_ctx: zmq.Context | None = None


def context() -> zmq.Context:
    """The process-wide ZeroMQ context (created on first use)."""
    global _ctx
    if _ctx is None or _ctx.closed:
        _ctx = zmq.Context.instance()
    return _ctx


def check_endpoint(endpoint: str, *, allow_remote: bool = False) -> str:
    """Validate ``ipc://...`` / ``tcp://host:port`` and refuse non-loopback binds by default.

    Raises:
        EndpointError: naming the endpoint and the fix.
    """
    if endpoint.startswith("ipc://"):
        if len(endpoint) <= len("ipc://"):
            raise EndpointError(f"endpoint '{endpoint}': ipc needs a path, e.g. ipc:///tmp/selfpose3d-frames")
        return endpoint
    if endpoint.startswith("tcp://"):
        host, sep, port = endpoint[len("tcp://"):].rpartition(":")
        if not sep or not port.isdigit() or not 0 < int(port) < 65536:
            raise EndpointError(f"endpoint '{endpoint}': expected tcp://HOST:PORT, e.g. tcp://127.0.0.1:5555")
        if host not in LOOPBACK_HOSTS and not allow_remote:
            raise EndpointError(
                f"endpoint '{endpoint}' is reachable from other hosts; bind to tcp://127.0.0.1:{port} "
                "or set allow_remote: true in the stream config if you mean to stream across machines"
            )
        return endpoint
    raise EndpointError(f"endpoint '{endpoint}': must start with ipc:// or tcp://")


@dataclass
class PublisherStats:
    sent: int = 0
    dropped: int = 0


class Publisher:
    """Drop-not-queue publisher of encoded messages.

    Args:
        endpoint: where to bind (see :func:`check_endpoint`).
        hwm: send high-water mark in messages per subscriber (small: 2-4).
        allow_remote: permit a non-loopback tcp bind.
        bind: bind (default) or connect (for a many-publishers-one-subscriber layout where the
            subscriber binds).
        linger_ms: on close, how long queued messages (at most ``hwm`` per subscriber) may
            still be delivered, so a final status/frameset is not lost.
    """

    def __init__(self, endpoint: str, *, hwm: int = 2, allow_remote: bool = False, bind: bool = True,
                 linger_ms: int = 500) -> None:
        self.endpoint = check_endpoint(endpoint, allow_remote=allow_remote or not bind)
        self.stats = PublisherStats()
        self._seen = False
        self._sock = context().socket(zmq.XPUB)
        self._sock.setsockopt(zmq.SNDHWM, hwm)
        self._sock.setsockopt(zmq.XPUB_NODROP, 1)  # full pipe -> EAGAIN, so drops are visible
        self._linger_ms = linger_ms
        self._sock.setsockopt(zmq.LINGER, linger_ms)
        try:
            (self._sock.bind if bind else self._sock.connect)(endpoint)
        except zmq.ZMQError as exc:
            self._sock.close()
            raise EndpointError(f"endpoint '{endpoint}': cannot {'bind' if bind else 'connect'}: {exc} "
                                "(is another process using it?)") from None

    def send_frames(self, frames: Sequence[Any], wait_ms: float = 0.0) -> bool:
        """Send pre-encoded frames; returns False (and counts a drop) if a subscriber's queue is
        full. ``wait_ms`` > 0 retries that long first (lossless replay); 0 never waits."""
        end = time.monotonic() + wait_ms / 1e3
        while True:
            try:
                self._sock.send_multipart(frames, flags=zmq.NOBLOCK, copy=False)
                break
            except zmq.Again:
                if time.monotonic() >= end:
                    self.stats.dropped += 1
                    return False
                time.sleep(0.0005)
        self.stats.sent += 1
        self._drain_subscriptions()
        return True

    def send(self, msg: Message, wait_ms: float = 0.0) -> bool:
        """Encode and send ``msg`` (see :meth:`send_frames`)."""
        return self.send_frames(encode(msg), wait_ms)

    def subscribers_seen(self) -> bool:
        """True once at least one subscription reached this socket (useful to wait at start)."""
        return self._drain_subscriptions() or self._seen

    def _drain_subscriptions(self) -> bool:
        got = False
        while self._sock.poll(0, zmq.POLLIN):
            self._sock.recv(zmq.NOBLOCK)
            got = True
        self._seen = self._seen or got
        return got

    def wait_for_subscriber(self, timeout_s: float) -> bool:
        """Block up to ``timeout_s`` until a subscriber has connected and subscribed."""
        end = time.monotonic() + timeout_s
        while time.monotonic() < end:
            if self.subscribers_seen():
                return True
            self._sock.poll(20, zmq.POLLIN)
        return self.subscribers_seen()

    def close(self) -> None:
        self._sock.close(linger=self._linger_ms)

    def __enter__(self) -> "Publisher":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


@dataclass
class SubscriberStats:
    received: int = 0
    skipped: int = 0
    gaps: int = 0
    bad: int = 0


def _topic(msg: Message) -> str:
    return f"{type(msg).__name__}/{getattr(msg, 'rig', '')}"


class Subscriber:
    """SUB socket that validates every message and hands out the newest.

    Args:
        endpoint: publisher endpoint to connect to (or to bind when ``bind=True``); a list
            connects to several publishers (e.g. the capture processes of a spread rig).
        topics: topic prefixes to subscribe to, e.g. ``[b"frames/lab"]``; ``[b""]`` for all.
        hwm: receive high-water mark in messages.
    """

    def __init__(self, endpoint: str | Sequence[str], topics: Sequence[bytes] = (b"",), *, hwm: int = 4,
                 bind: bool = False, allow_remote: bool = True) -> None:
        endpoints = [endpoint] if isinstance(endpoint, str) else list(endpoint)
        for e in endpoints:
            check_endpoint(e, allow_remote=allow_remote or not bind)
        self.endpoint = ",".join(endpoints)
        self.stats = SubscriberStats()
        self._last_seq: dict[str, int] = {}
        self._held: deque[Message] = deque(maxlen=256)  # status/other topics met while draining
        self._last_log = 0.0
        self._sock = context().socket(zmq.SUB)
        self._sock.setsockopt(zmq.RCVHWM, hwm)
        self._sock.setsockopt(zmq.LINGER, 0)
        for t in topics:
            self._sock.setsockopt(zmq.SUBSCRIBE, t)
        for e in endpoints:
            (self._sock.bind if bind else self._sock.connect)(e)

    def recv(self, timeout_ms: int = 100) -> Message | None:
        """Next valid message, or None if none arrives within ``timeout_ms``."""
        if self._held:
            return self._held.popleft()
        end = time.monotonic() + timeout_ms / 1e3
        while True:
            left = max(0, int((end - time.monotonic()) * 1e3))
            if not self._sock.poll(left, zmq.POLLIN):
                return None
            msg = self._take()
            if msg is not None:
                return msg
            if time.monotonic() >= end:
                return None

    def recv_latest(self, timeout_ms: int = 100) -> Message | None:
        """Wait up to ``timeout_ms`` for a message, then drain the queue and return the newest
        frameset/poses of that topic; older ones are skipped (counted). Status messages and
        other topics met while draining are kept, newest per topic, for the next calls."""
        msg = self.recv(timeout_ms)
        if msg is None or isinstance(msg, Status):
            return msg
        topic = _topic(msg)
        others: dict[str, Message] = {}
        while self._sock.poll(0, zmq.POLLIN):
            newer = self._take()
            if newer is None:
                continue
            if isinstance(newer, Status):
                self._held.append(newer)
            elif _topic(newer) == topic:
                self.stats.skipped += 1
                msg = newer
            else:
                self.stats.skipped += _topic(newer) in others
                others[_topic(newer)] = newer
        self._held.extend(others.values())
        return msg

    def _take(self) -> Message | None:
        frames = self._sock.recv_multipart(copy=False)
        try:
            msg = decode(frames)
        except MessageError as exc:
            self.stats.bad += 1
            now = time.monotonic()
            if now - self._last_log > 5.0:
                self._last_log = now
                log.warning("dropped a bad message on %s (%d so far): %s", self.endpoint, self.stats.bad, exc)
            return None
        self.stats.received += 1
        if isinstance(msg, (FrameSet, Poses)):
            key = bytes(frames[0].bytes).decode("ascii") + "|" + getattr(msg, "source", "")
            last = self._last_seq.get(key)
            if last is not None and msg.seq > last + 1:
                self.stats.gaps += msg.seq - last - 1
            self._last_seq[key] = msg.seq
        return msg

    def close(self) -> None:
        self._sock.close(linger=0)

    def __enter__(self) -> "Subscriber":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
