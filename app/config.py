"""Configuration of the live application (composes the packages' configs; see calib.configkit)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from calib.common.paths import CONFIGS_DIR
from calib.configkit import require
from capture.config import CaptureConfig
from engine.estimators.base import EstimatorConfig

DEFAULT_RIG = CONFIGS_DIR / "rig.yaml"  # the embedded default rig


@dataclass(frozen=True)
class WorkerConfig:
    """The inference worker.

    Attributes:
        engine: ``auto`` | ``image`` | ``triangulate`` | ``learned`` (app/route.py decides ``auto``:
            synthetic rigs run the image model, real cameras and videos the bundled 2D estimator +
            triangulation, a detection-input ``model`` the learned detection route).
        model: checkpoint file/folder of ours, official SelfPose3d file(s) joined by ',', or a
            preset name (``light``/``released``: untrained, plumbing only); '' = the route's default.
        estimator: the bundled 2D estimator of the triangulate/learned routes (input 256 px: the
            live size; docs/estimator.md has accuracy and cost per size).
        estimator_workers: parallel single-thread estimator sessions sharing a frameset's views.
        backend, device, precision, compile: see engine.runtime.InferenceRuntime. ``compile``
            (torch.compile, on by default: 1.7x the light model's frame rate on the 2-core CPU)
            falls back to eager with a warning if compilation fails at warm-up.
        max_age_ms: framesets older than this on arrival are dropped (bounds latency).
        min_views: skip framesets with fewer cameras present.
        tracking: stable ids + One-Euro smoothing.
        truth: on synthetic rigs, publish the error against the synthetic truth.
        threads: torch intra-op threads (0: 1 with ``pipeline``, else torch's default). Pipelined
            on the 2-core CPU, 1 thread per stage ran 12.5 fps against 10.8 with torch's 2.
        pipeline: run the pose stage of frame t on a second thread while the backbone and root
            net run on frame t+1 (measured on the 2-core CPU: see README "Measured here").
        root_stage_nice: with ``pipeline``, how much lower the root-stage thread (newer frame) runs
            than the pose-stage thread (older frame); 0 keeps them equal. On the 2-core CPU the
            latency p99 went from 325 to 268-271 ms at the same frame rate (10 and 5 alike).
        warmup: run one frame before reporting ready (compiles, allocates).
    """

    engine: Literal["auto", "image", "triangulate", "learned"] = "auto"
    model: str = ""
    estimator: EstimatorConfig = field(default_factory=lambda: EstimatorConfig(input_long_side_px=256))
    estimator_workers: int = 2
    backend: Literal["auto", "eager", "tensorrt"] = "auto"
    device: str = "auto"
    precision: Literal["auto", "fp32", "bf16", "fp16"] = "auto"
    compile: bool = True
    max_age_ms: float = 300.0
    min_views: int = 2
    tracking: bool = True
    truth: bool = True
    threads: int = 0
    pipeline: bool = True
    root_stage_nice: int = 10
    warmup: bool = True

    def __post_init__(self) -> None:
        require(self.max_age_ms > 0, "max_age_ms", "must be > 0")
        require(self.min_views >= 1, "min_views", "must be >= 1")
        require(self.threads >= 0, "threads", "must be >= 0 (0 = automatic)")
        require(1 <= self.estimator_workers <= 16, "estimator_workers", "must be in 1..16")
        require(0 <= self.root_stage_nice <= 19, "root_stage_nice", "must be in 0..19")


@dataclass(frozen=True)
class LiveConfig:
    """``selfpose3d-live``: endpoints and the per-process configs.

    Attributes:
        poses_endpoint: where the worker publishes ``poses/<rig>`` (empty: ``ipc://`` in the
            run's private directory, printed at start; see app.process.PrivateRun).
        status_endpoint: the supervisor's status endpoint (children connect; empty: private).
        ready_timeout_s: how long a process may take to report ready. The worker compiles its
            model first; on a fresh clone (cold compile cache) with one of two cores busy that
            took more than 120 s here, hence 300.
        capture: the capture process (its stream endpoint carries the framesets).
        worker: the inference worker.
    """

    poses_endpoint: str = ""
    status_endpoint: str = ""
    ready_timeout_s: float = 300.0
    capture: CaptureConfig = field(default_factory=CaptureConfig)
    worker: WorkerConfig = field(default_factory=WorkerConfig)

    def __post_init__(self) -> None:
        for name in ("poses_endpoint", "status_endpoint"):
            value = getattr(self, name)
            require(
                value == "" or value.startswith(("ipc://", "tcp://")),
                name,
                f"{value!r} must start with ipc:// or tcp:// (or be empty: private per run)",
            )
        require(self.ready_timeout_s > 0, "ready_timeout_s", "must be > 0")
