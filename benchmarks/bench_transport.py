"""Transport benchmark: N camera streams of W x H frames at F fps through the real capture path
(a reader thread per camera -> FrameSynchronizer -> CaptureProcess -> Publisher) over ZeroMQ to a
subscriber process.

Measures the sustained frameset rate at the subscriber, drops (frames overwritten in a reader,
dropped by the synchroniser, incomplete sets, sets published but not processed by the
subscriber), added latency (oldest view's grab timestamp -> frameset received and validated by
the subscriber; for JPEG also -> all views decoded, for shm -> all views mapped) p50/p99, and each
process's CPU use.
Encodings: ``bgr8`` (31 MB of pixels per 5 x 1080p set through the socket), ``shm`` (pixels in a
shared-memory ring, a handle through the socket), ``jpeg``. For ``shm``, ``--shm-copy`` says how
the pixels get into the ring: ``inplace`` (the camera writes into the slot it is given, as
``OpenCVSource``/``VideoFileSource`` decode into it or a driver with user buffers DMAs into it; the
transport copies nothing), ``grab`` (a source that returns its own image: each frame copied into
its camera's ring on its reader thread), ``publish`` (the whole set copied when published).
In every mode the stand-in camera's frame exists at its tick at no CPU cost (as in ``bgr8``), so
the modes differ only in what the transport does with it.

Examples::

    python benchmarks/bench_transport.py --seconds 10                      # 5 x 1080p raw over ipc
    python benchmarks/bench_transport.py --encoding shm --seconds 10       # pixels in shared memory
    python benchmarks/bench_transport.py --encoding shm --shm-copy inplace --seconds 10   # cameras write the ring
    python benchmarks/bench_transport.py --transport tcp --encoding jpeg --seconds 10
    python benchmarks/bench_transport.py --suite --seconds 10 --json         # all modes, one JSON object last

``--json`` prints one JSON object as the last line: ``fps``, ``drops`` (whole run, start-up
included), ``steady_drops`` (camera ticks after warm-up that did not reach the subscriber as a
complete set), ``p50_ms``, ``p99_ms`` (of the first run) plus every run's details under ``runs``
and the machine load (``loadavg``).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import multiprocessing as mp
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def _cpu_s() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def _frames(n_views: int, width: int, height: int, pool: int = 3) -> list[list[np.ndarray]]:
    """``pool`` distinct realistic frames per view (Panoptic demo views if present, else a pattern)."""
    import cv2

    demo = REPO.parent / "shared" / "data" / "panoptic_demo" / "images"
    rng = np.random.default_rng(0)
    out = []
    for v in range(n_views):
        path = demo / f"view_{v % 5}.jpg"
        base = cv2.imread(str(path)) if path.is_file() else None
        if base is None:
            yy, xx = np.mgrid[0:height, 0:width]
            base = np.stack([(xx + v * 40) % 256, (yy * 2) % 256, ((xx + yy) // 3) % 256], -1).astype(np.uint8)
        base = cv2.resize(base, (width, height), interpolation=cv2.INTER_LINEAR)
        views = []
        for _ in range(pool):
            noise = rng.integers(-4, 5, base.shape, dtype=np.int16)  # sensor noise: realistic JPEG sizes
            views.append(np.clip(base.astype(np.int16) + noise, 0, 255).astype(np.uint8))
        out.append(views)
    return out


def _subscriber(endpoint: str, seconds: float, decode_jpeg: bool, latest: bool, reduce: int, ready, results) -> None:
    from capture.bus import Subscriber
    from capture.messages import FrameSet, MessageError, now_ns

    lat_recv, lat_dec, seqs, refs, skews, hops = [], [], [], [], [], []
    stale = 0
    with Subscriber(endpoint, [b"frames/"], hwm=4) as sub:
        ready.set()
        cpu0, wall0 = _cpu_s(), time.monotonic()
        end = wall0 + seconds + 30.0
        first_t = last_t = None
        while time.monotonic() < end:
            msg = sub.recv_latest(500) if latest else sub.recv(500)
            if msg is None:
                if first_t is not None:
                    break
                continue
            if not isinstance(msg, FrameSet):
                continue
            t = now_ns()
            lat_recv.append((t - msg.t_ref_ns) / 1e6)
            skews.append(msg.skew_ms)
            hops.append((t - msg.t_pub_ns) / 1e6)
            if msg.views[0].encoding == "shm":  # map every view (zero-copy) and check it is current
                try:
                    for i in range(len(msg.views)):
                        msg.image(i)
                except MessageError:
                    stale += 1
                    continue
                stale += any(not msg.still_valid(i) for i in range(len(msg.views)))
                lat_dec.append((now_ns() - msg.t_ref_ns) / 1e6)
            if decode_jpeg and msg.views[0].encoding == "jpeg":
                for i in range(len(msg.views)):
                    msg.image(i, reduce=reduce)
                lat_dec.append((now_ns() - msg.t_ref_ns) / 1e6)
            seqs.append(msg.seq)
            refs.append((msg.t_ref_ns, not msg.missing))
            first_t = first_t or time.monotonic()
            last_t = time.monotonic()
        cpu = _cpu_s() - cpu0
        active = (last_t - first_t) if first_t and last_t else 0.0
        results.put(
            {
                "lat_recv": lat_recv,
                "lat_dec": lat_dec,
                "skews": skews,
                "hops": hops,
                "seqs": seqs,
                "gaps": sub.stats.gaps,
                "skipped": sub.stats.skipped,
                "refs": refs,
                "bad": sub.stats.bad,
                "cpu_s": cpu,
                "active_s": active,
                "stale": stale,
            }
        )


def _pct(values, q: float) -> float | None:
    return round(float(np.percentile(values, q)), 2) if len(values) else None


class _BenchCamera:
    """A live camera stand-in: at every tick of a shared 30 fps clock it 'grabs' one of a few
    pre-generated frames, timestamped at grab (so the sync sees real per-camera jitter).

    With ``in_place`` it writes into the buffer it is given, as a decoder or a driver with user
    buffers does: :meth:`read_into` returns the shared-memory slot itself. Like the other modes'
    frames, its pixels cost no CPU at the tick: a slot is filled with a frame the first time the
    camera sees it (the ring's first pass), not again.
    """

    live = True

    def __init__(
        self, camera: str, pool: list[np.ndarray], fps: float, clock: dict, stop, in_place: bool = False
    ) -> None:
        self.camera, self.pool, self.period_ns, self.clock, self.stop = camera, pool, int(1e9 / fps), clock, stop
        self.in_place = self.decodes_into_buffer = in_place
        self.k = 0
        self._filled: set[int] = set()

    def open(self) -> None:
        with self.clock["lock"]:  # the rig's shared tick clock starts when the first camera opens
            if self.clock["t0"] is None:
                self.clock["t0"] = time.time_ns() + 100_000_000
        self.t0_ns = self.clock["t0"]

    def close(self) -> None:
        pass

    def read(self):
        from capture.source import Frame

        due = self.t0_ns + self.k * self.period_ns
        delay = (due - time.time_ns()) / 1e9
        if delay > 0:
            self.stop.wait(delay)
        if self.stop.is_set():
            return None
        frame = Frame(self.camera, self.pool[self.k % len(self.pool)], time.time_ns(), self.k)
        self.k += 1
        return frame

    def read_into(self, out: np.ndarray):
        frame = self.read()
        if frame is None or not self.in_place:
            return frame  # the reader copies the frame into the ring
        address = out.__array_interface__["data"][0]
        if address not in self._filled:  # the frame's pixels, written once per slot
            out[:] = self.pool[len(self._filled) % len(self.pool)]
            self._filled.add(address)
        return dataclasses.replace(frame, image=out)


def run_one(
    *,
    transport: str,
    encoding: str,
    views: int,
    width: int,
    height: int,
    fps: float,
    seconds: float,
    jpeg_quality: int = 90,
    warmup_sets: int = 10,
    latest: bool = True,
    reduce: int = 1,
    shm_copy: str = "grab",
) -> dict:
    """One configuration through the real capture path (reader threads -> FrameSynchronizer ->
    CaptureProcess -> Publisher) to a subscriber process; returns its measurements."""
    import threading

    from capture.bus import Publisher
    from capture.process import CaptureProcess, LiveRig

    tmp = tempfile.mkdtemp(prefix="sp3d-bench-", dir="/tmp")
    endpoint = f"ipc://{tmp}/frames" if transport == "ipc" else f"tcp://127.0.0.1:{47000 + os.getpid() % 1000}"
    frames = _frames(views, width, height)
    ctx = mp.get_context("spawn")
    ready, results = ctx.Event(), ctx.Queue()
    pub = Publisher(endpoint, hwm=2)
    sub_proc = ctx.Process(
        target=_subscriber, args=(endpoint, seconds, encoding == "jpeg", latest, reduce, ready, results), daemon=True
    )
    sub_proc.start()
    ready.wait(60)
    if not pub.wait_for_subscriber(30):
        raise RuntimeError("subscriber never connected")
    stop = threading.Event()
    clock = {"t0": None, "lock": threading.Lock()}
    cams = [_BenchCamera(f"cam{v}", frames[v], fps, clock, stop, in_place=shm_copy == "inplace") for v in range(views)]
    at_grab = encoding == "shm" and shm_copy in ("grab", "inplace")
    live = LiveRig(
        cams,
        tolerance_ms=500.0 / fps,
        deadline_ms=100.0,
        shm_segment=f"selfpose3d-bench-{os.getpid()}" if at_grab else None,
        frame_shapes={c.camera: (height, width, 3) for c in cams},
    )
    proc = CaptureProcess(
        "bench",
        live,
        pub,
        process="bench",
        encoding=encoding,
        jpeg_quality=jpeg_quality,
        status_interval_s=1.0,
        shm_slot_bytes=width * height * 3,
    )
    n_sets = int(round(seconds * fps)) + warmup_sets
    cpu0, w0 = _cpu_s(), time.monotonic()
    report = proc.run(stop, max_sets=n_sets, duration_s=seconds + warmup_sets / fps + 5.0)
    stop.set()
    pub_wall = time.monotonic() - w0
    pub_cpu = _cpu_s() - cpu0
    sub = results.get(timeout=seconds + 120)
    sub_proc.join(10)
    pub.close()
    lat = np.array(sub["lat_recv"][warmup_sets:] if len(sub["lat_recv"]) > warmup_sets else sub["lat_recv"])
    dec = np.array(sub["lat_dec"][warmup_sets:] if len(sub["lat_dec"]) > warmup_sets else sub["lat_dec"])
    pub_lat = np.array(report.latency_ms[warmup_sets:] or report.latency_ms or [np.nan])
    received = len(sub["seqs"])
    # Steady state: camera ticks between the first and last set received after warm-up, against
    # the complete sets that reached the subscriber in that window.
    window = sub["refs"][warmup_sets:]
    ticks = int(round((window[-1][0] - window[0][0]) * fps / 1e9)) + 1 if len(window) > 1 else 0
    complete_recv = sum(ok for _, ok in window)
    out = {
        "transport": transport,
        "encoding": encoding,
        "views": views,
        "width": width,
        "height": height,
        "target_fps": fps,
        "seconds": round(pub_wall, 2),
        "published": report.sets,
        "complete_sets": report.complete,
        "received": received,
        "fps": round(received / sub["active_s"], 2) if sub["active_s"] > 0 else 0.0,
        "consumer": "latest" if latest else "every",
        "jpeg_decode_reduce": reduce,
        "shm_copy": shm_copy if encoding == "shm" else None,
        "drops": int(
            max(0, report.sets - received)
            + report.overwritten
            + report.dropped_frames
            + (report.sets - report.complete)
        ),
        "dropped_by_publisher": int(report.dropped_publish),
        "sequence_gaps": int(sub["gaps"]),
        "skipped_stale_by_subscriber": int(sub["skipped"]),
        "frames_overwritten_in_readers": int(report.overwritten),
        "frames_dropped_by_sync": int(report.dropped_frames),
        "incomplete_sets": int(report.sets - report.complete),
        "steady_ticks": ticks,
        "steady_complete_received": complete_recv,
        "steady_drops": ticks - complete_recv,
        "p50_ms": round(float(np.percentile(lat, 50)), 2) if lat.size else None,
        "p99_ms": round(float(np.percentile(lat, 99)), 2) if lat.size else None,
        "max_ms": round(float(lat.max()), 2) if lat.size else None,
        "grab_skew_p50_ms": _pct(sub["skews"][warmup_sets:], 50),
        "grab_skew_p99_ms": _pct(sub["skews"][warmup_sets:], 99),
        "socket_hop_p50_ms": _pct(sub["hops"][warmup_sets:], 50),
        "socket_hop_p99_ms": _pct(sub["hops"][warmup_sets:], 99),
        "published_p50_ms": round(float(np.nanpercentile(pub_lat, 50)), 2),
        "published_p99_ms": round(float(np.nanpercentile(pub_lat, 99)), 2),
        "cpu_publisher_pct": round(100 * pub_cpu / pub_wall, 1),
        "cpu_subscriber_pct": round(100 * sub["cpu_s"] / max(sub["active_s"], 1e-9), 1),
        "stale_shm_sets": int(sub["stale"]),
    }
    if dec.size:  # jpeg: all views decoded; shm: all views mapped and checked
        out["decoded_p50_ms"] = round(float(np.percentile(dec, 50)), 2)
        out["decoded_p99_ms"] = round(float(np.percentile(dec, 99)), 2)
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--transport", choices=("ipc", "tcp"), default="ipc")
    parser.add_argument("--encoding", choices=("bgr8", "shm", "jpeg"), default="bgr8")
    parser.add_argument("--views", type=int, default=5)
    parser.add_argument("--width", type=int, default=1920)
    parser.add_argument("--height", type=int, default=1080)
    parser.add_argument("--fps", type=float, default=30.0)
    parser.add_argument(
        "--suite",
        action="store_true",
        help="run shm/ipc (each --shm-copy mode), bgr8/ipc, jpeg/tcp, jpeg/tcp decoded at half size",
    )
    parser.add_argument(
        "--consumer",
        choices=("latest", "every"),
        default="latest",
        help="subscriber drains to the newest set (live path) or reads every set",
    )
    parser.add_argument(
        "--shm-copy",
        choices=("inplace", "grab", "publish"),
        default="grab",
        help="shm: the camera writes into its shared-memory ring itself (no copy), "
        "each frame is copied into the ring on its camera's thread at grab, or the set "
        "is copied when published",
    )
    parser.add_argument(
        "--reduce",
        type=int,
        choices=(1, 2, 4, 8),
        default=1,
        help="JPEG: decode at 1/N resolution (the network input is ~half of 1080p)",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object last")
    args = parser.parse_args(argv)
    if args.suite:  # the --shm-copy mode first (its numbers head the summary), then the others
        shm_modes = [args.shm_copy] + [m for m in ("inplace", "grab", "publish") if m != args.shm_copy]
        configs = [("ipc", "shm", 1, m) for m in shm_modes] + [
            ("ipc", "bgr8", 1, None),
            ("tcp", "jpeg", 1, None),
            ("tcp", "jpeg", 2, None),
        ]
    else:
        configs = [(args.transport, args.encoding, args.reduce, args.shm_copy)]
    runs = []
    for transport, encoding, reduce, shm_copy in configs:
        load_before = os.getloadavg()
        r = run_one(
            transport=transport,
            encoding=encoding,
            views=args.views,
            width=args.width,
            height=args.height,
            fps=args.fps,
            seconds=args.seconds,
            latest=args.consumer == "latest",
            reduce=reduce,
            shm_copy=shm_copy or "publish",
        )
        r["loadavg_before"] = [round(x, 2) for x in load_before]
        r["loadavg_after"] = [round(x, 2) for x in os.getloadavg()]
        runs.append(r)
        if not args.json:
            print(json.dumps(r))
    first = runs[0]
    summary = {k: first[k] for k in ("fps", "drops", "steady_drops", "p50_ms", "p99_ms")}
    summary.update(cpus=os.cpu_count(), loadavg=[round(x, 2) for x in os.getloadavg()], runs=runs)
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
