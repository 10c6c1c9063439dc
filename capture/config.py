"""Capture configuration (strict dataclasses, composed by ``app``; see calib.configkit)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from calib.configkit import require

DEFAULT_ENDPOINT = "ipc:///tmp/selfpose3d-frames"


@dataclass(frozen=True)
class StreamConfig:
    """Where and how framesets (and the capture's status) are published.

    Attributes:
        endpoint: ``ipc://PATH`` (same host, raw frames) or ``tcp://HOST:PORT``.
        encoding: ``bgr8`` (raw pixels in the message), ``shm`` (raw pixels in a same-host
            shared-memory ring, only a handle in the message: lowest latency on one host) or
            ``jpeg`` (for thin links between hosts).
        jpeg_quality: 1..100 when ``encoding`` is jpeg.
        hwm: publisher high-water mark in messages (drops beyond it instead of queueing).
        allow_remote: permit binding a non-loopback tcp address.
        curve_keys: tcp only: ``STEM`` of this publisher's CURVE key pair (``STEM.key``,
            ``STEM.key_secret``; capture.bus.save_curve_keys): the stream is encrypted and
            subscribers must know ``STEM.key`` (empty: no CURVE).
        curve_clients: with ``curve_keys``, the public key files of the only subscribers admitted
            (empty: any subscriber that knows the server key).
    """

    endpoint: str = DEFAULT_ENDPOINT
    encoding: Literal["bgr8", "shm", "jpeg"] = "bgr8"
    jpeg_quality: int = 90
    hwm: int = 2
    allow_remote: bool = False
    curve_keys: str = ""
    curve_clients: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        require(not self.curve_clients or bool(self.curve_keys), "curve_clients", "needs curve_keys")
        require(1 <= self.jpeg_quality <= 100, "jpeg_quality", f"must be in 1..100, got {self.jpeg_quality}")
        require(1 <= self.hwm <= 1000, "hwm", f"must be in 1..1000 (small: 2-4), got {self.hwm}")
        require(
            self.endpoint.startswith(("ipc://", "tcp://")),
            "endpoint",
            f"{self.endpoint!r} must start with ipc:// or tcp://",
        )


@dataclass(frozen=True)
class SyncConfig:
    """Frameset assembly (see capture.sync).

    Attributes:
        tolerance_ms: max distance of a view from the set's oldest view (None: 0.5 / fps).
        deadline_ms: wait at most this long for absent cameras before emitting without them.
        min_views: drop sets with fewer views.
    """

    tolerance_ms: float | None = None
    deadline_ms: float = 100.0
    min_views: int = 1

    def __post_init__(self) -> None:
        require(self.tolerance_ms is None or self.tolerance_ms > 0, "tolerance_ms", "must be > 0 (or null)")
        require(self.deadline_ms >= 0, "deadline_ms", "must be >= 0")
        require(self.min_views >= 1, "min_views", "must be >= 1")


@dataclass(frozen=True)
class CaptureConfig:
    """A capture process.

    Attributes:
        process: process name (status topic ``status/<process>``; default ``capture-<rig>``).
        cameras: the rig cameras this process captures (empty: all; a rig may be spread over
            several processes/hosts, each publishing its own cameras).
        fps: nominal rate, used for the default sync tolerance (None: the rig's synthetic fps or 30).
        realtime: override every source's ``realtime`` (None: as in the rig file); False (as fast
            as possible) also makes the readers lossless: every frame reaches the synchroniser.
        failure_budget: consecutive read failures tolerated before a camera is reopened.
        backoff_s: (first, max) reopen delay in seconds.
        status_interval_s: period of status messages.
        resize: scale media frames to their camera's calibration size when they differ and the
            aspect ratio matches within 2 % (``--resize``; e.g. 1080-wide videos under a
            1088-wide calibration). Without it such a rig is refused at start-up.
    """

    process: str = ""
    cameras: tuple[str, ...] = ()
    fps: float | None = None
    realtime: bool | None = None
    failure_budget: int = 3
    backoff_s: tuple[float, float] = (0.5, 8.0)
    status_interval_s: float = 1.0
    resize: bool = False
    stream: StreamConfig = field(default_factory=StreamConfig)
    sync: SyncConfig = field(default_factory=SyncConfig)

    def __post_init__(self) -> None:
        require(self.fps is None or self.fps > 0, "fps", "must be > 0 (or null)")
        require(self.failure_budget >= 0, "failure_budget", "must be >= 0")
        require(0 < self.backoff_s[0] <= self.backoff_s[1], "backoff_s", "must be (first, max) with 0 < first <= max")
        require(self.status_interval_s > 0, "status_interval_s", "must be > 0")
