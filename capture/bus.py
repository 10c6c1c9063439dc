"""ZeroMQ publisher/subscriber for the live stream (DESIGN.md §4).

* :class:`Publisher` binds an XPUB socket with a small high-water mark and ``XPUB_NODROP``, and
  sends with ``NOBLOCK``: when a subscriber is behind, the message is *dropped and counted*
  instead of queued, so nothing ever waits on a slow consumer. Buffers go out zero-copy.
* :class:`Subscriber` connects a SUB socket; :meth:`Subscriber.recv_latest` drains whatever
  is queued and returns only the newest message (stale ones are counted as ``skipped``);
  sequence gaps per topic are counted; undecodable messages are counted, logged (rate-limited)
  and dropped, never raised.
* Endpoints: ``ipc://PATH`` or ``tcp://HOST:PORT``. A publisher binds to loopback unless
  ``allow_remote=True`` (then ``tcp://*:PORT`` or a LAN address is accepted). Binding an ipc
  path that another process is listening on is refused (ZeroMQ would silently take it over).
* Authentication (docs/stream_format.md "Security"): with a ``key`` (the live app's per-run
  secret; :func:`use_run_key` makes it the default of every socket of a child process) a
  publisher signs each header with a MAC and a subscriber drops, before decoding, any message
  without the right one. For tcp between hosts, CURVE (:func:`curve_keypair`,
  ``curve_server=`` / ``curve_client=``) encrypts the stream and authenticates both ends.
* Hostile input costs little: frame counts, header sizes and the MAC are checked on the raw
  bytes (:func:`capture.messages.precheck`), rejections are logged at most every 5 s, a drain
  reads a bounded number of messages, and a sequence jump larger than time allows is counted as
  a sender reset, not as lost sets.
"""

from __future__ import annotations

import logging
import os
import socket
import stat
import threading
import time
from collections import OrderedDict, deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import zmq

from calib.common.errors import EndpointError
from capture.messages import AuthError, FrameSet, Message, MessageError, Poses, Status, decode, encode

log = logging.getLogger(__name__)

LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "[::1]", "::1")
_ctx: zmq.Context | None = None
_run_key: bytes | None = None
RUN_KEY = object()  # "the process's run key" (see use_run_key): the default of Publisher/Subscriber
MAX_SEQ_RATE_HZ = 1000.0  # no publisher here sends faster; a larger jump is a sender reset
SEQ_SLACK = 1000  # jumps up to this are plausible whatever the elapsed time
MAX_SEQ_KEYS = 64  # (topic, source) pairs whose sequence is tracked; least recent forgotten
LOG_EVERY_S = 5.0
ZAP_DOMAIN = "selfpose3d"  # ZeroMQ authentication domain of CURVE publishers with an allow-list


def use_run_key(key: bytes | None) -> None:
    """Make ``key`` the default MAC key of every Publisher/Subscriber created in this process
    (called once at the start of each child process of the live app; None turns it off)."""
    global _run_key
    if key is not None and len(key) < 16:
        raise ValueError("run key must be at least 16 bytes")
    _run_key = key


def run_key() -> bytes | None:
    """The process's run key (None outside the live app's children)."""
    return _run_key


def _resolve_key(key: Any) -> bytes | None:
    return _run_key if key is RUN_KEY else key


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
        host, sep, port = endpoint[len("tcp://") :].rpartition(":")
        if not sep or not port.isdigit() or not 0 < int(port) < 65536:
            raise EndpointError(f"endpoint '{endpoint}': expected tcp://HOST:PORT, e.g. tcp://127.0.0.1:5555")
        if host not in LOOPBACK_HOSTS and not allow_remote:
            raise EndpointError(
                f"endpoint '{endpoint}' is reachable from other hosts; bind to tcp://127.0.0.1:{port} "
                "or set allow_remote: true in the stream config if you mean to stream across machines"
            )
        return endpoint
    raise EndpointError(f"endpoint '{endpoint}': must start with ipc:// or tcp://")


def refuse_if_bound(endpoint: str) -> None:
    """Raise if another process listens on an ``ipc://`` path (a stale socket file is fine).

    ZeroMQ replaces an existing ipc socket file on bind, so without this check a second app (or
    a process squatting the path) would silently split the stream.

    Raises:
        EndpointError: naming the endpoint and the fix.
    """
    if not endpoint.startswith("ipc://") or endpoint.startswith("ipc://@"):
        return  # tcp: the kernel refuses a second bind (EADDRINUSE); abstract sockets likewise
    path = endpoint[len("ipc://") :]
    try:
        if not stat.S_ISSOCK(os.stat(path).st_mode):
            raise EndpointError(f"endpoint '{endpoint}': {path} exists and is not a socket; choose another path")
    except FileNotFoundError:
        return
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.settimeout(0.5)
        probe.connect(path)
    except OSError:
        return  # nobody listens: a leftover of a killed run, ZeroMQ replaces it
    finally:
        probe.close()
    raise EndpointError(
        f"endpoint '{endpoint}' is already bound by another process (another live app, or "
        "something squatting it); stop it or choose another endpoint"
    )


# --------------------------------------------------------------------------- CURVE (tcp between hosts)


@dataclass(frozen=True)
class CurveKeys:
    """A CURVE key pair, Z85-encoded (40 ASCII bytes each), as made by :func:`curve_keypair`."""

    public: bytes
    secret: bytes


@dataclass(frozen=True)
class CurveServer:
    """CURVE for a binding socket (the publisher): its key pair and, optionally, the public keys
    of the only clients allowed in (None: any client that knows the server key)."""

    keys: CurveKeys
    allowed_clients: tuple[bytes, ...] | None = None


@dataclass(frozen=True)
class CurveClient:
    """CURVE for a connecting socket: its own key pair and the server's public key."""

    keys: CurveKeys
    server_public: bytes


def curve_available() -> bool:
    """True if this libzmq was built with CURVE (libsodium)."""
    return bool(zmq.has("curve"))


def curve_keypair() -> CurveKeys:
    """A fresh CURVE key pair.

    Raises:
        EndpointError: libzmq has no CURVE support.
    """
    if not curve_available():
        raise EndpointError("CURVE: this libzmq was built without CURVE (libsodium); install a pyzmq wheel")
    public, secret = zmq.curve_keypair()
    return CurveKeys(public, secret)


def save_curve_keys(keys: CurveKeys, stem: str | Path) -> tuple[Path, Path]:
    """Write ``STEM.key`` (public, share it) and ``STEM.key_secret`` (0600, keep it)."""
    stem = Path(stem)
    pub, sec = stem.with_name(stem.name + ".key"), stem.with_name(stem.name + ".key_secret")
    pub.write_bytes(keys.public + b"\n")
    fd = os.open(sec, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(keys.secret + b"\n")
    return pub, sec


def load_curve_key(path: str | Path) -> bytes:
    """One Z85 key (40 characters) from a file written by :func:`save_curve_keys`.

    Raises:
        EndpointError: the file is missing or does not hold a 40-character Z85 key.
    """
    try:
        key = Path(path).read_bytes().strip()
    except OSError as exc:
        raise EndpointError(f"CURVE key '{path}': cannot read it ({exc.strerror})") from None
    if len(key) != 40:
        raise EndpointError(
            f"CURVE key '{path}': expected a 40-character Z85 key, got {len(key)} bytes; "
            "make one with capture.bus.save_curve_keys(curve_keypair(), STEM)"
        )
    return key


def curve_server_from_files(stem: str | Path, client_key_files: Sequence[str | Path] = ()) -> CurveServer:
    """CURVE for a publisher from ``STEM.key``/``STEM.key_secret`` and, optionally, the public
    key files of the only clients admitted."""
    keys = CurveKeys(load_curve_key(f"{stem}.key"), load_curve_key(f"{stem}.key_secret"))
    clients = tuple(load_curve_key(f) for f in client_key_files) or None
    return CurveServer(keys, clients)


def curve_client_from_files(stem: str | Path | None, server_key_file: str | Path) -> CurveClient:
    """CURVE for a subscriber: its own ``STEM.key``/``STEM.key_secret`` (None: a fresh pair, for
    publishers that admit any client) and the publisher's public key file."""
    keys = (
        curve_keypair()
        if stem is None
        else CurveKeys(load_curve_key(f"{stem}.key"), load_curve_key(f"{stem}.key_secret"))
    )
    return CurveClient(keys, load_curve_key(server_key_file))


_auth_lock = threading.Lock()
_authenticator = None
_allowed: dict[bytes, None] = {}


class _AllowList:
    def callback(self, domain: str, key: bytes) -> bool:
        return key in _allowed


def _allow_clients(keys: Sequence[bytes]) -> None:
    """Start (once per process) a ZAP handler that admits only the given CURVE client keys."""
    global _authenticator
    from zmq.auth.thread import ThreadAuthenticator

    with _auth_lock:
        _allowed.update(dict.fromkeys(keys))
        if _authenticator is None:
            _authenticator = ThreadAuthenticator(context(), log=logging.getLogger(__name__ + ".zap"))
            _authenticator.start()
            _authenticator.configure_curve_callback(domain=ZAP_DOMAIN, credentials_provider=_AllowList())


def _apply_curve(sock: zmq.Socket, curve: CurveServer | CurveClient | None, endpoint: str) -> None:
    if curve is None:
        return
    if not endpoint.startswith("tcp://"):
        raise EndpointError(f"endpoint '{endpoint}': CURVE is for tcp endpoints (ipc is private to the host)")
    if not curve_available():
        raise EndpointError("CURVE: this libzmq was built without CURVE (libsodium); install a pyzmq wheel")
    sock.curve_secretkey = curve.keys.secret
    sock.curve_publickey = curve.keys.public
    if isinstance(curve, CurveServer):
        if curve.allowed_clients is not None:
            _allow_clients(curve.allowed_clients)
            sock.zap_domain = ZAP_DOMAIN.encode()
        sock.curve_server = True
    else:
        sock.curve_serverkey = curve.server_public


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
        key: MAC key signing every header (default: the process's run key, see
            :func:`use_run_key`; None: unsigned).
        curve: CURVE for a tcp endpoint (:class:`CurveServer` when binding, :class:`CurveClient`
            when connecting).
    """

    def __init__(
        self,
        endpoint: str,
        *,
        hwm: int = 2,
        allow_remote: bool = False,
        bind: bool = True,
        linger_ms: int = 500,
        key: Any = RUN_KEY,
        curve: CurveServer | CurveClient | None = None,
    ) -> None:
        self.endpoint = check_endpoint(endpoint, allow_remote=allow_remote or not bind)
        if bind:
            refuse_if_bound(endpoint)
        self.key = _resolve_key(key)
        self.stats = PublisherStats()
        self._seen = False
        self._sock = context().socket(zmq.XPUB)
        try:
            _apply_curve(self._sock, curve, endpoint)
        except BaseException:
            self._sock.close(0)
            raise
        self._sock.setsockopt(zmq.SNDHWM, hwm)
        self._sock.setsockopt(zmq.XPUB_NODROP, 1)  # full pipe -> EAGAIN, so drops are visible
        self._linger_ms = linger_ms
        self._sock.setsockopt(zmq.LINGER, linger_ms)
        try:
            (self._sock.bind if bind else self._sock.connect)(endpoint)
        except zmq.ZMQError as exc:
            self._sock.close()
            raise EndpointError(
                f"endpoint '{endpoint}': cannot {'bind' if bind else 'connect'}: {exc} (is another process using it?)"
            ) from None

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
        return self.send_frames(encode(msg, self.key), wait_ms)

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
    """Counters of one subscriber.

    Attributes:
        received: valid messages.
        skipped: valid framesets/poses passed over for a newer one.
        gaps: sets lost between consecutive sequence numbers (plausible jumps only).
        resets: sequence jumps a sender cannot have made (backwards, or more than time allows):
            counted as the sender restarting, not as lost sets.
        bad: rejected messages (malformed, oversized, or unauthenticated).
        unauthenticated: of ``bad``, those without the right MAC.
    """

    received: int = 0
    skipped: int = 0
    gaps: int = 0
    resets: int = 0
    bad: int = 0
    unauthenticated: int = 0


def _topic(msg: Message) -> str:
    return f"{type(msg).__name__}/{getattr(msg, 'rig', '')}"


class Subscriber:
    """SUB socket that validates every message and hands out the newest.

    Args:
        endpoint: publisher endpoint to connect to (or to bind when ``bind=True``); a list
            connects to several publishers (e.g. the capture processes of a spread rig).
        topics: topic prefixes to subscribe to, e.g. ``[b"frames/lab"]``; ``[b""]`` for all.
        hwm: receive high-water mark in messages.
        key: MAC key every message must carry (default: the process's run key, see
            :func:`use_run_key`; None: accept unsigned messages).
        curve: CURVE for tcp endpoints (:class:`CurveClient` when connecting).
        max_drain: at most this many queued messages are read per :meth:`recv_latest` call, so
            a flood cannot keep the caller in the drain.
    """

    def __init__(
        self,
        endpoint: str | Sequence[str],
        topics: Sequence[bytes] = (b"",),
        *,
        hwm: int = 4,
        bind: bool = False,
        allow_remote: bool = True,
        key: Any = RUN_KEY,
        curve: CurveServer | CurveClient | None = None,
        max_drain: int = 256,
    ) -> None:
        endpoints = [endpoint] if isinstance(endpoint, str) else list(endpoint)
        for e in endpoints:
            check_endpoint(e, allow_remote=allow_remote or not bind)
            if bind:
                refuse_if_bound(e)
        self.endpoint = ",".join(endpoints)
        self.key = _resolve_key(key)
        self.max_drain = max_drain
        self.stats = SubscriberStats()
        self._last_seq: OrderedDict[str, tuple[int, float]] = OrderedDict()  # key -> (seq, monotonic s)
        self._held: deque[Message] = deque(maxlen=256)  # status/other topics met while draining
        self._last_log = 0.0
        self._logged_bad = 0
        self._sock = context().socket(zmq.SUB)
        try:
            for e in endpoints[:1] if curve is None else endpoints:
                _apply_curve(self._sock, curve, e)
        except BaseException:
            self._sock.close(0)
            raise
        self._sock.setsockopt(zmq.RCVHWM, hwm)
        self._sock.setsockopt(zmq.LINGER, 0)
        for t in topics:
            self._sock.setsockopt(zmq.SUBSCRIBE, t)
        for e in endpoints:
            try:
                (self._sock.bind if bind else self._sock.connect)(e)
            except zmq.ZMQError as exc:
                self._sock.close(0)
                raise EndpointError(f"endpoint '{e}': cannot {'bind' if bind else 'connect'}: {exc}") from None

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
        for _ in range(self.max_drain):
            if not self._sock.poll(0, zmq.POLLIN):
                break
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
            msg = decode(frames, self.key)  # size caps and the MAC are checked before msgpack runs
        except MessageError as exc:
            self.stats.bad += 1
            self.stats.unauthenticated += isinstance(exc, AuthError)
            now = time.monotonic()
            if now - self._last_log > LOG_EVERY_S:  # one line per interval, whatever the flood
                log.warning(
                    "dropped %d bad message(s) on %s (%d so far, %d unauthenticated); latest: %s",
                    self.stats.bad - self._logged_bad,
                    self.endpoint,
                    self.stats.bad,
                    self.stats.unauthenticated,
                    exc,
                )
                self._last_log, self._logged_bad = now, self.stats.bad
            return None
        self.stats.received += 1
        if isinstance(msg, (FrameSet, Poses)):
            self._count_gap(bytes(frames[0].bytes).decode("ascii") + "|" + getattr(msg, "source", ""), msg.seq)
        return msg

    def _count_gap(self, key: str, seq: int) -> None:
        """Count lost sets between consecutive sequence numbers of one (topic, source); a jump
        backwards or beyond ``SEQ_SLACK + MAX_SEQ_RATE_HZ * elapsed`` is a sender reset."""
        now = time.monotonic()
        last = self._last_seq.pop(key, None)
        if last is not None:
            jump = seq - last[0] - 1
            if jump < -1 or jump > SEQ_SLACK + MAX_SEQ_RATE_HZ * (now - last[1]):
                self.stats.resets += 1
            elif jump > 0:
                self.stats.gaps += jump
        self._last_seq[key] = (seq, now)
        while len(self._last_seq) > MAX_SEQ_KEYS:
            self._last_seq.popitem(last=False)

    def close(self) -> None:
        self._sock.close(linger=0)

    def __enter__(self) -> "Subscriber":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
