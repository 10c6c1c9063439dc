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
from app.commands import add_set_option

log = logging.getLogger("selfpose3d.live")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--rig", default=str(DEFAULT_RIG), help="rig YAML (default: configs/rig.yaml)")
    parser.add_argument("--config", default=None, help="live config YAML (app.config.LiveConfig)")
    add_set_option(parser, "a live config value", "--set worker.precision=bf16")
    parser.add_argument(
        "--engine",
        choices=["auto", "image", "triangulate", "learned"],
        default=None,
        help="inference route (default auto: real cameras/videos -> bundled 2D estimator + "
        "triangulation; synthetic rigs -> the committed image model; see app/route.py)",
    )
    parser.add_argument(
        "--model",
        default=None,
        help="our checkpoint (file or folder), official SelfPose3d file(s) joined by ',', "
        "or a preset (light|released: untrained). Default: the route's own",
    )
    parser.add_argument("--backend", choices=["auto", "eager", "tensorrt"], default=None)
    parser.add_argument(
        "--precision",
        choices=["auto", "fp32", "bf16", "fp16"],
        default=None,
        help="default: the live config's worker.precision (auto: bf16 only where the CPU and the model's check allow)",
    )
    parser.add_argument("--no-viewer", action="store_true", help="no window (use --render for a video)")
    parser.add_argument("--render", default=None, metavar="OUT.mp4", help="render the 3D view headless to a video")
    parser.add_argument("--record", default=None, metavar="DIR", help="record the camera streams to a session")
    parser.add_argument(
        "--record-max-gb",
        type=float,
        default=None,
        metavar="GB",
        help="with --record: stop recording cleanly at this size (default: keep 5%% of the disk free)",
    )
    parser.add_argument("--export", default=None, metavar="FILE.jsonl|.csv", help="write every poses frame")
    parser.add_argument(
        "--duration",
        type=float,
        default=None,
        metavar="S",
        help="stop S seconds after start-up began (start-up included)",
    )
    parser.add_argument(
        "--run-for",
        type=float,
        default=None,
        metavar="S",
        help="stop S seconds after every process is ready (poses time; --duration, if given, still bounds the run)",
    )
    parser.add_argument(
        "--resize",
        action="store_true",
        help="scale video/image frames to the calibration's image size when they differ "
        "(same aspect ratio, e.g. 1080 vs 1088 px); without it such a rig is refused",
    )
    parser.add_argument("--out", default=None, metavar="DIR", help="where the resolved config and summary go")


def resolve_config(args: argparse.Namespace):
    """LiveConfig from --config/--set plus the dedicated flags."""
    from app.config import LiveConfig

    cfg = load(LiveConfig, args.config, args.overrides)
    worker = cfg.worker
    if getattr(args, "resize", False):
        cfg = dataclasses.replace(cfg, capture=dataclasses.replace(cfg.capture, resize=True))
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
        log.warning(
            "cameras %s see no part of the capture volume: their views add nothing (check the calibration, "
            "the volume in %s, or z-up world coordinates)",
            blind,
            rig.path or rig.name,
        )
    route = choose_route(cfg.worker.engine, cfg.worker.model, rig)
    log.info("route: %s%s (%s)", route.kind, f", model {route.model}" if route.model else "", route.reason)
    build_worker_predictor(route, cfg.worker, rig)
    return route


class LiveMonitor:
    """Reads the poses stream in the supervisor process and prints one status line per tick."""

    def __init__(self, poses_endpoint: str, rig_name: str, key: bytes | None = None) -> None:
        from capture.bus import Subscriber

        self.sub = Subscriber(poses_endpoint, [f"poses/{rig_name}".encode()], hwm=1000, key=key)
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
            skipped = {k[8:]: v for k, v in st.counts.items() if k.startswith("skipped/")}
            if "published" in st.counts:
                extra += f" complete {st.counts.get('complete', 0)}/{st.counts['published']}"
            if skipped:
                extra += f" skipped {skipped}"
            note = f" ({st.note})" if st.note else ""
            parts.append(f"{name}: {st.state} {st.fps:.1f} fps drop {st.dropped}{extra}{note}")
        stages = ", ".join(
            f"{k} {np.median(v):.0f}"
            for k, v in self.timings.items()
            if k
            in ("preprocess", "backbone", "root_net", "pose_net", "estimator", "triangulate", "learned", "tracking")
        )
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
    from app.children import capture_child, viewer_child
    from app.export import exporter_child
    from app.supervisor import ChildSpec
    from app.worker import inference_child

    rig_path = str(Path(args.rig).resolve())
    frames = cfg.capture.stream.endpoint
    worker = dataclasses.replace(cfg.worker, model=route.model, engine=route.kind)
    t = cfg.ready_timeout_s
    specs = [
        # the inference worker's answers pace a media replay (capture.credit): nothing decoded in vain
        ChildSpec(
            "capture",
            capture_child,
            {"rig_path": rig_path, "capture": to_dict(cfg.capture), "consumer_endpoint": cfg.poses_endpoint},
            t,
        ),
        ChildSpec(
            "inference",
            inference_child,
            {
                "rig_path": rig_path,
                "worker": to_dict(worker),
                "frames_endpoint": frames,
                "poses_endpoint": cfg.poses_endpoint,
            },
            t,
        ),
    ]
    if not args.no_viewer or args.render:
        specs.append(
            ChildSpec(
                "viewer",
                viewer_child,
                {
                    "rig_path": rig_path,
                    "poses_endpoint": cfg.poses_endpoint,
                    "render_path": str(Path(args.render).resolve()) if args.render else None,
                    "status_endpoints": (frames,),
                },
                t,
            )
        )
    if args.export:
        specs.append(
            ChildSpec(
                "exporter",
                exporter_child,
                {"poses_endpoint": cfg.poses_endpoint, "rig_name": rig.name, "path": str(Path(args.export).resolve())},
                t,
            )
        )
    return specs


def recorder_spec(cfg, args):
    """The recorder child (``--record``): started once every other process is ready, so nothing
    is recorded during start-up."""
    from app.children import recorder_child
    from app.supervisor import ChildSpec

    return ChildSpec(
        "recorder",
        recorder_child,
        {
            "rig_path": str(Path(args.rig).resolve()),
            "frames_endpoint": cfg.capture.stream.endpoint,
            "session_dir": str(Path(args.record).resolve()),
            "max_gb": args.record_max_gb,
        },
        cfg.ready_timeout_s,
    )


def replays_media(rig, cfg) -> bool:
    """True when every captured camera replays a video file, image folder or Panoptic sequence."""
    from capture.sources.probe import MEDIA_KINDS

    return all(rig.source(n).kind in MEDIA_KINDS for n in (list(cfg.capture.cameras) or rig.names))


def capture_accounting(counts: dict) -> dict:
    """The live summary's ``capture`` entry from the capture's last status counts."""
    out = {k: counts[k] for k in ("published", "complete", "incomplete", "slipped_ms") if k in counts}
    for group in ("missing", "skipped", "dropped"):
        sub = {k.split("/", 1)[1]: v for k, v in counts.items() if k.startswith(group + "/")}
        if sub:
            out[group] = sub
    return out


def run(args: argparse.Namespace) -> int:
    from app.process import PrivateRun

    with PrivateRun() as private:  # the run's ipc endpoints live (and die) in a 0700 folder
        return _run(args, private)


def _run(args: argparse.Namespace, private) -> int:
    from app.process import with_private_endpoints
    from app.supervisor import Supervisor, SupervisorError
    from calib.rig_config import load_rig

    cfg = with_private_endpoints(resolve_config(args), private)
    rig = load_rig(args.rig)
    if args.export:
        from app.export import EXPORT_SUFFIXES

        if Path(args.export).suffix.lower() not in EXPORT_SUFFIXES:
            raise ConfigError(
                f"--export {args.export}: use a {' or '.join(EXPORT_SUFFIXES)} file "
                "(TRC/BVH come from a recorded take: selfpose3d export)"
            )
    if not args.no_viewer and not args.render:
        from viz.window import DisplayUnavailable, check_display

        try:
            check_display()
        except DisplayUnavailable as exc:
            raise ConfigError(f"viewer: {exc}. Use --no-viewer, or --render OUT.mp4 for a headless video") from None
    if args.record and Path(args.record).exists() and any(Path(args.record).iterdir()):
        raise ConfigError(
            f"--record {args.record}: folder exists and is not empty; choose a new folder "
            "(recordings are never overwritten)"
        )
    t_start = time.monotonic()  # --duration counts from here: start-up included
    from capture.sources.probe import check_media

    check_media(rig, list(cfg.capture.cameras) or None, resize=cfg.capture.resize)  # files exist, open, fit
    if args.record:
        from capture.recorder import DiskBudget, check_disk_space, estimate_bytes_per_s

        check_disk_space(
            args.record,
            estimate_bytes_per_s(rig, rig.names, "jpeg"),
            DiskBudget.for_path(args.record, args.record_max_gb),
            what="--record",
        )
    route = preflight(cfg, rig)
    out = Path(args.out) if args.out else None
    if out:
        write_resolved(
            dataclasses.replace(cfg, worker=dataclasses.replace(cfg.worker, model=route.model, engine=route.kind)),
            out,
            "live.resolved.yaml",
        )
    sup = Supervisor(cfg.status_endpoint, token=private.token)
    monitor = LiveMonitor(cfg.poses_endpoint, rig.name, key=private.token)
    sup.install_signal_handlers()
    rc = 1
    until = None if args.duration is None else t_start + args.duration
    say = lambda line: print(line, file=sys.stderr)  # noqa: E731
    published_at_ready = t_ready = started = None
    try:
        specs = build_children(cfg, rig, args, route)
        # a media replay starts once its consumers are ready: decoding four 1088x1920 videos while
        # the worker loads would only slow its start-up, and the frames would be thrown away
        later = [sp for sp in specs if sp.name == "capture" and replays_media(rig, cfg)]
        sup.start([sp for sp in specs if sp not in later])
        try:
            started = sup.wait_ready(until=until, on_progress=say)
            if started == "ready" and later:
                sup.start(later)
                started = sup.wait_ready(until=until, on_progress=say)
            if started == "ready" and args.record:
                sup.start([recorder_spec(cfg, args)])  # nothing recorded before ready
                started = sup.wait_ready(until=until, on_progress=say)
        except SupervisorError as exc:
            print(f"error: {exc}", file=sys.stderr)
            sup.stop()
            return 1
        if started == "ready":
            t_ready = time.monotonic()
            what = f"{route.kind} route" + (f", model {route.model}" if route.model else "")
            print(
                f"selfpose3d-live: rig '{rig.name}' ({len(rig.cameras)} cameras), {what} ({route.reason}); "
                f"poses on {cfg.poses_endpoint}; ready after {t_ready - t_start:.1f} s; Ctrl-C to stop",
                file=sys.stderr,
            )
            published_at_ready = sup.children["capture"].counts.get("published", 0)
            monitor.start_clock()
            rest = None if until is None else max(0.0, until - time.monotonic())
            run_for = getattr(args, "run_for", None)
            if run_for is not None:
                rest = run_for if rest is None else min(rest, run_for)
            rc = sup.run(duration_s=rest, on_tick=lambda st: say(monitor.line(st)))
        else:
            rc = 0
            if started == "duration":
                say(f"--duration {args.duration:g} s passed during start-up: still waiting for {sup.waiting_for()}")
            sup.stop()
    finally:
        summary = monitor.summary()
        monitor.close()
    summary["ready_after_s"] = None if t_ready is None else round(t_ready - t_start, 1)
    capture = sup.children["capture"].counts if "capture" in sup.children else {}
    summary["capture"] = capture_accounting(capture)
    if sup.input_ended():
        summary["ended"] = f"input ended after {capture.get('published', 0)} framesets"
        say(summary["ended"])
    elif started == "duration":
        summary["ended"] = "--duration passed during start-up"
        rc = 1
    if (
        rc == 0
        and published_at_ready is not None
        and summary["frames"] == 0
        and capture.get("published", 0) > published_at_ready
    ):
        rc = 1
        summary["failure"] = (
            f"no poses from {capture['published'] - published_at_ready} framesets: every one was "
            "dropped by inference (see its 'dropped' count and log)"
        )
        say(f"error: {summary['failure']}")
    summary["exit_codes"] = sup.exit_codes()
    # each process's own count since it started (capture: frames lost before a set; inference:
    # sets not turned into poses: skipped to the newest, stale, overwritten, bad)
    summary["dropped"] = {n: c.last_status.dropped for n, c in sup.children.items() if c.last_status}
    recorder = sup.children.get("recorder")
    if recorder is not None and recorder.last_status is not None and recorder.last_status.note:
        summary["recorder"] = recorder.last_status.note
    if sup.failure:
        summary["failure"] = sup.failure
    print(json.dumps(summary))
    if out:
        (out / "live_summary.json").write_text(json.dumps(summary, indent=2))
    return rc
