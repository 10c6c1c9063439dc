"""``selfpose3d-live --rig configs/rig.yaml``: capture -> ZeroMQ -> inference -> poses -> viewer.

A supervisor starts the capture process, the inference worker and (unless ``--no-viewer``)
the viewer, plus a recorder (``--record``) and an exporter (``--export``); waits until each
reports ready (naming any that does not), prints per-stage fps/latency and the running error
against the synthetic truth, stops everything on Ctrl-C/SIGTERM or after ``--duration``, and
exits non-zero if a child died. The model and the rig are checked before any process starts.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import sys
import time
from collections import deque
from pathlib import Path

import numpy as np

from app.config import DEFAULT_RIG
from calib.configkit import ConfigError, load, to_dict, write_resolved

log = logging.getLogger("selfpose3d.live")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--rig", default=str(DEFAULT_RIG), help="rig YAML (default: configs/rig.yaml)")
    parser.add_argument("--config", default=None, help="live config YAML (app.config.LiveConfig)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a live config value, e.g. --set worker.precision=bf16 (repeatable)")
    parser.add_argument("--engine", choices=["auto", "image", "triangulate", "learned"], default=None,
                        help="inference route (default auto: real cameras/videos -> bundled 2D estimator + "
                             "triangulation; synthetic rigs -> the committed image model; see app/route.py)")
    parser.add_argument("--model", default=None,
                        help="our checkpoint (file or folder), official SelfPose3d file(s) joined by ',', "
                             "or a preset (light|released: untrained). Default: the route's own")
    parser.add_argument("--backend", choices=["auto", "eager", "tensorrt"], default=None)
    parser.add_argument("--precision", choices=["fp32", "bf16", "fp16"], default=None)
    parser.add_argument("--no-viewer", action="store_true", help="no window (use --render for a video)")
    parser.add_argument("--render", default=None, metavar="OUT.mp4", help="render the 3D view headless to a video")
    parser.add_argument("--record", default=None, metavar="DIR", help="record the camera streams to a session")
    parser.add_argument("--export", default=None, metavar="FILE.jsonl|.csv", help="write every poses frame")
    parser.add_argument("--duration", type=float, default=None, metavar="S", help="stop after S seconds")
    parser.add_argument("--out", default=None, metavar="DIR", help="where the resolved config and summary go")


def resolve_config(args: argparse.Namespace):
    """LiveConfig from --config/--set plus the dedicated flags."""
    from app.config import LiveConfig

    cfg = load(LiveConfig, args.config, args.overrides)
    worker = cfg.worker
    if args.model:
        worker = dataclasses.replace(worker, model=args.model)
    if getattr(args, "engine", None):
        worker = dataclasses.replace(worker, engine=args.engine)
    if args.backend:
        worker = dataclasses.replace(worker, backend=args.backend)
    if args.precision:
        worker = dataclasses.replace(worker, precision=args.precision)
    return dataclasses.replace(cfg, worker=worker)


def preflight(cfg, rig):
    """Decide the route and check its model and the rig before any process starts."""
    from app.route import build_worker_predictor, choose_route

    from calib.volume import cameras_not_seeing

    vol = rig.volume
    log.info("volume: centre %s mm, size %s mm (%s)", list(vol.center_mm), list(vol.size_mm), rig.volume_origin)
    blind = cameras_not_seeing(rig.cameras, vol.center_mm, vol.size_mm)
    if blind:
        log.warning("cameras %s see no part of the capture volume: their views add nothing (check the calibration, "
                    "the volume in %s, or z-up world coordinates)", blind, rig.path or rig.name)
    route = choose_route(cfg.worker.engine, cfg.worker.model, rig)
    log.info("route: %s%s (%s)", route.kind, f", model {route.model}" if route.model else "", route.reason)
    build_worker_predictor(route, cfg.worker, rig)
    return route


class LiveMonitor:
    """Reads the poses stream in the supervisor process and prints one status line per tick."""

    def __init__(self, poses_endpoint: str, rig_name: str) -> None:
        from capture.bus import Subscriber

        self.sub = Subscriber(poses_endpoint, [f"poses/{rig_name}".encode()], hwm=1000)
        self.latency_ms: deque = deque(maxlen=10000)
        self.mpjpe_mm: deque = deque(maxlen=10000)
        self.timings: dict[str, deque] = {}
        self.frames = 0
        self.people = 0
        self._t0 = time.monotonic()
        self._last_frames = 0
        self._last_t = self._t0

    def start_clock(self) -> None:
        """Measure rates from now on (after every process reported ready: no warm-up in fps)."""
        self.drain()
        self.frames, self._last_frames = 0, 0
        self._t0 = self._last_t = time.monotonic()

    def drain(self) -> None:
        from capture.messages import Poses

        while True:
            msg = self.sub.recv(timeout_ms=0)
            if msg is None:
                return
            if not isinstance(msg, Poses):
                continue
            self.frames += 1
            self.people = len(msg.poses)
            self.latency_ms.append((msg.t_publish_ns - msg.t_capture_ns) / 1e6)
            if "mpjpe_mm" in msg.extra:
                self.mpjpe_mm.append(float(msg.extra["mpjpe_mm"]))
            for k, v in msg.timings_ms.items():
                self.timings.setdefault(k, deque(maxlen=300)).append(v)

    def line(self, statuses: dict) -> str:
        self.drain()
        now = time.monotonic()
        fps = (self.frames - self._last_frames) / max(now - self._last_t, 1e-6)
        self._last_frames, self._last_t = self.frames, now
        parts = [f"poses {fps:4.1f} fps", f"people {self.people}"]
        if self.latency_ms:
            parts.append(f"latency p50 {np.median(self.latency_ms):.0f} ms")
        if self.mpjpe_mm:
            parts.append(f"MPJPE {np.mean(self.mpjpe_mm):.0f} mm")
        for name, st in sorted(statuses.items()):
            extra = f" missing {list(st.missing)}" if st.missing else ""
            parts.append(f"{name}: {st.state} {st.fps:.1f} fps drop {st.dropped}{extra}")
        stages = ", ".join(f"{k} {np.median(v):.0f}" for k, v in self.timings.items()
                           if k in ("preprocess", "backbone", "root_net", "pose_net", "estimator", "triangulate", "learned",
                                   "tracking"))
        if stages:
            parts.append(f"ms: {stages}")
        return " | ".join(parts)

    def summary(self) -> dict:
        self.drain()
        lat = np.asarray(self.latency_ms)
        seconds = time.monotonic() - self._t0
        return {
            "frames": self.frames,
            "fps": round(self.frames / seconds, 2) if seconds > 0 else 0.0,
            "latency_p50_ms": round(float(np.percentile(lat, 50)), 1) if lat.size else None,
            "latency_p99_ms": round(float(np.percentile(lat, 99)), 1) if lat.size else None,
            "mpjpe_mm": round(float(np.mean(self.mpjpe_mm)), 1) if self.mpjpe_mm else None,
            "gaps": self.sub.stats.gaps,
            "stage_ms_p50": {k: round(float(np.median(v)), 2) for k, v in self.timings.items()},
        }

    def close(self) -> None:
        self.sub.close()


def build_children(cfg, rig, args, route) -> list:
    """The child process specs of one live run."""
    from app.children import capture_child, recorder_child, viewer_child
    from app.export import exporter_child
    from app.supervisor import ChildSpec
    from app.worker import inference_child

    rig_path = str(Path(args.rig).resolve())
    frames = cfg.capture.stream.endpoint
    worker = dataclasses.replace(cfg.worker, model=route.model, engine=route.kind)
    t = cfg.ready_timeout_s
    specs = [
        ChildSpec("capture", capture_child, {"rig_path": rig_path, "capture": to_dict(cfg.capture)}, t),
        ChildSpec("inference", inference_child, {"rig_path": rig_path, "worker": to_dict(worker),
                                                 "frames_endpoint": frames,
                                                 "poses_endpoint": cfg.poses_endpoint}, t),
    ]
    if not args.no_viewer or args.render:
        specs.append(ChildSpec("viewer", viewer_child, {
            "rig_path": rig_path, "poses_endpoint": cfg.poses_endpoint,
            "render_path": str(Path(args.render).resolve()) if args.render else None,
            "status_endpoints": (frames,)}, t))
    if args.record:
        specs.append(ChildSpec("recorder", recorder_child, {"rig_path": rig_path, "frames_endpoint": frames,
                                                            "session_dir": str(Path(args.record).resolve())}, t))
    if args.export:
        specs.append(ChildSpec("exporter", exporter_child, {"poses_endpoint": cfg.poses_endpoint,
                                                            "rig_name": rig.name,
                                                            "path": str(Path(args.export).resolve())}, t))
    return specs


def run(args: argparse.Namespace) -> int:
    from app.supervisor import Supervisor, SupervisorError
    from calib.rig_config import load_rig

    cfg = resolve_config(args)
    rig = load_rig(args.rig)
    if args.export:
        from app.export import EXPORT_SUFFIXES

        if Path(args.export).suffix.lower() not in EXPORT_SUFFIXES:
            raise ConfigError(f"--export {args.export}: use a {' or '.join(EXPORT_SUFFIXES)} file "
                              "(TRC/BVH come from a recorded take: selfpose3d export)")
    if not args.no_viewer and not args.render:
        from viz.window import DisplayUnavailable, check_display

        try:
            check_display()
        except DisplayUnavailable as exc:
            raise ConfigError(f"viewer: {exc}. Use --no-viewer, or --render OUT.mp4 for a headless video") from None
    if args.record and Path(args.record).exists() and any(Path(args.record).iterdir()):
        raise ConfigError(f"--record {args.record}: folder exists and is not empty; choose a new folder "
                          "(recordings are never overwritten)")
    route = preflight(cfg, rig)
    out = Path(args.out) if args.out else None
    if out:
        write_resolved(dataclasses.replace(cfg, worker=dataclasses.replace(cfg.worker, model=route.model,
                                                                           engine=route.kind)), out,
                       "live.resolved.yaml")
    sup = Supervisor(cfg.status_endpoint)
    monitor = LiveMonitor(cfg.poses_endpoint, rig.name)
    sup.install_signal_handlers()
    rc = 1
    try:
        sup.start(build_children(cfg, rig, args, route))
        try:
            sup.wait_ready()
        except SupervisorError as exc:
            print(f"error: {exc}", file=sys.stderr)
            sup.stop()
            return 1
        what = f"{route.kind} route" + (f", model {route.model}" if route.model else "")
        print(f"selfpose3d-live: rig '{rig.name}' ({len(rig.cameras)} cameras), {what} ({route.reason}); "
              "Ctrl-C to stop", file=sys.stderr)
        monitor.start_clock()
        rc = sup.run(duration_s=args.duration, on_tick=lambda st: print(monitor.line(st), file=sys.stderr))
    finally:
        summary = monitor.summary()
        monitor.close()
    summary["exit_codes"] = sup.exit_codes()
    # each process's own count since it started (capture: frames lost before a set; inference:
    # sets not turned into poses: skipped to the newest, stale, overwritten, bad)
    summary["dropped"] = {n: c.last_status.dropped for n, c in sup.children.items() if c.last_status}
    if sup.failure:
        summary["failure"] = sup.failure
    print(json.dumps(summary))
    if out:
        (out / "live_summary.json").write_text(json.dumps(summary, indent=2))
    return rc
