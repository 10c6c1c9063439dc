"""The capture process: a reader thread per camera -> FrameSynchronizer -> ZeroMQ framesets + status.

:class:`LiveRig` owns the readers and the synchroniser and hands out ready sets;
:class:`CaptureProcess` publishes them (raw ``bgr8`` or JPEG) with sequence numbers, and a
``status`` message every ``status_interval_s`` that names cameras that are missing or being
retried. A camera that dies is retried with backoff by its reader while the others stream on.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from capture.messages import FrameSet, Status, View, now_ns
from capture.source import Source, SourceError, ThreadedReader
from capture.sync import FrameSynchronizer, SyncedSet

log = logging.getLogger(__name__)


class LiveRig:
    """Threaded readers of a rig's sources feeding one :class:`FrameSynchronizer`.

    Args:
        sources: one per camera, in rig order (not opened yet).
        tolerance_ms, deadline_ms, min_views: synchroniser settings.
        failure_budget, backoff_s, lossless: reader settings (see :class:`ThreadedReader`);
            ``lossless`` suits media read as fast as possible (every frame is delivered).
        shm_segment: if given, each camera's frames go into its own shared-memory ring
            ``<shm_segment>-<camera>`` on its reader thread (for the ``shm`` encoding): sources
            that can decode into a buffer write there directly, others are copied at grab.
        frame_shapes: camera -> ``(H,W,3)`` where known, so the rings exist before the first frame.
            A frame of another shape is dropped (counted under ``size_mismatch``, the first one
            described in :attr:`size_error`): no consumer can use it with the calibration.
        lockstep: the sources follow one :class:`capture.schedule.ReplaySchedule` (media
            replay): a set waits for every camera still running (no deadline), so every set
            of a healthy replay is complete.
    """

    def __init__(
        self,
        sources: Sequence[Source],
        *,
        tolerance_ms: float,
        deadline_ms: float,
        min_views: int = 1,
        failure_budget: int = 3,
        backoff_s: tuple[float, float] = (0.5, 8.0),
        lossless: bool = False,
        shm_segment: str | None = None,
        frame_shapes: dict[str, tuple[int, int, int]] | None = None,
        lockstep: bool = False,
    ) -> None:
        self.cameras = [s.camera for s in sources]
        self.lockstep = lockstep
        self.schedule = next((s.schedule for s in sources if s.schedule is not None), None)
        self.frame_shapes = dict(frame_shapes or {})
        self.size_mismatch = {c: 0 for c in self.cameras}
        self.size_error = ""
        self._notify = threading.Event()
        self.rings = []
        if shm_segment is not None:
            from capture.shm import ShmFrameRing

            shapes = frame_shapes or {}
            self.rings = [ShmFrameRing(f"{shm_segment}-{s.camera}", shape=shapes.get(s.camera)) for s in sources]
        self.readers = [
            ThreadedReader(
                s,
                failure_budget=failure_budget,
                backoff_s=backoff_s,
                notify=self._notify,
                lossless=lossless,
                ring=self.rings[i] if self.rings else None,
            )
            for i, s in enumerate(sources)
        ]
        self.sync = FrameSynchronizer(
            self.cameras, tolerance_ms=tolerance_ms, deadline_ms=deadline_ms, min_views=min_views
        )
        self._last_frame_ns = {c: 0 for c in self.cameras}
        self._flushed = False

    def start(self) -> "LiveRig":
        for r in self.readers:
            r.start()
        return self

    def stop(self, timeout_s: float = 2.0) -> None:
        for r in self.readers:
            r.request_stop()  # signal all first, then wait: bounded total time
        end = time.monotonic() + timeout_s
        stopped = [r.stop(max(0.0, end - time.monotonic())) for r in self.readers]
        for ring, ok in zip(self.rings, stopped):
            if ok:  # a reader stuck in read() may still write: leave its ring alone
                ring.close()

    def poll(self, timeout_s: float = 0.005) -> list[SyncedSet]:
        """Wait up to ``timeout_s`` for new frames; return the sets that became ready."""
        self._notify.wait(timeout_s)
        self._notify.clear()
        # readers finished before their last frames are taken below (none can follow)
        gone = [r.camera for r in self.readers if r.ended or r.state.startswith("error")]
        for r in self.readers:
            frame = r.take()
            if frame is not None:
                arrival = time.time_ns()
                self._last_frame_ns[frame.camera] = arrival
                want = self.frame_shapes.get(frame.camera)
                if want is not None and frame.image.shape != tuple(want):
                    self.size_mismatch[frame.camera] += 1
                    if not self.size_error:
                        h, w = frame.image.shape[:2]
                        self.size_error = (
                            f"{frame.camera}: frame {w}×{h} but calibration says {want[1]}×{want[0]}: "
                            "fix the calibration's image size or pass --resize"
                        )
                        log.error("%s", self.size_error)
                    continue
                self.sync.push(frame.camera, frame.t_ns, frame, arrival_ns=arrival)
        if self.lockstep:
            # every running camera delivers each scheduled index: wait for all of them (no
            # deadline), except those whose source ended or failed
            for camera in gone:
                self.sync.retire(camera)
            ready = self.sync.poll(-(2**62))
        else:
            ready = self.sync.poll(time.time_ns())
        if not self._flushed and all(r.ended for r in self.readers):
            self._flushed = True
            ready += self.sync.flush()
        return ready

    @property
    def ended(self) -> bool:
        """All finite sources finished and everything pending was emitted."""
        return self._flushed and self.sync.pending == 0

    @property
    def overwritten(self) -> int:
        """Frames replaced in a reader before they were taken (consumer too slow)."""
        return sum(r.overwritten for r in self.readers)

    @property
    def wrong_size(self) -> bool:
        """Ten frames per camera came and each had another size than its calibration, none fit."""
        return (
            bool(self.size_error)
            and self.sync.stats.complete + self.sync.stats.incomplete == 0
            and sum(self.size_mismatch.values()) >= 10 * len(self.cameras)
        )

    def counts(self) -> dict[str, int]:
        """Per-camera and per-reason frame counters (see docs/stream_format.md, status ``counts``)."""
        st = self.sync.stats
        out = {
            "complete": st.complete,
            "incomplete": st.incomplete,
            "dropped/late": st.late,
            "dropped/duplicate": st.duplicates,
            "dropped/sync_overflow": st.overflow,
            "dropped/overwritten": self.overwritten,
            "dropped/too_few_views": st.too_few_views,
        }
        for r in self.readers:
            c = r.camera
            out[f"missing/{c}"] = st.missing_per_camera[c]
            out[f"decode_errors/{c}"] = r.read_errors
            out[f"size_mismatch/{c}"] = self.size_mismatch[c]
            if self.schedule is not None and c in self.schedule.skipped:
                out[f"skipped/{c}"] = self.schedule.skipped[c]
        if self.schedule is not None:
            out["slipped_ms"] = int(self.schedule.slipped_s * 1000)  # replay behind real time (decode-bound)
        out["dropped/decode_error"] = sum(r.read_errors for r in self.readers)
        out["dropped/size_mismatch"] = sum(self.size_mismatch.values())
        return out

    def camera_states(self) -> dict[str, str]:
        return {r.camera: r.state for r in self.readers}

    def missing(self, stale_s: float = 1.0) -> list[str]:
        """Cameras not ok, or without a frame for ``stale_s`` (ended sources excluded)."""
        now = time.time_ns()
        return [
            r.camera
            for r in self.readers
            if r.state not in ("ok", "ended")
            or (r.state == "ok" and now - self._last_frame_ns[r.camera] > stale_s * 1e9)
        ]


CONSUMER_WAIT_MS = 1000.0  # a media replay waits this long for a full subscriber queue, then drops


def _accepts_wait(publisher) -> bool:
    """True if ``publisher.send`` takes ``wait_ms`` (wrappers of :class:`Publisher` may not)."""
    import inspect

    try:
        return "wait_ms" in inspect.signature(publisher.send).parameters
    except (TypeError, ValueError):
        return False


def encode_jpeg(image: np.ndarray, quality: int) -> bytes:
    """JPEG bytes of a BGR image."""
    import cv2

    ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise ValueError(f"cannot JPEG-encode an image of shape {image.shape}")
    return data.tobytes()


_pool = None


def encode_jpeg_views(images: Sequence[np.ndarray], quality: int) -> list[bytes]:
    """JPEG bytes of several images, encoded in parallel (OpenCV releases the GIL)."""
    global _pool
    if len(images) == 1:
        return [encode_jpeg(images[0], quality)]
    if _pool is None:
        import os
        from concurrent.futures import ThreadPoolExecutor

        _pool = ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1), thread_name_prefix="jpeg")
    return list(_pool.map(lambda im: encode_jpeg(im, quality), images))


def frameset_from(
    synced: SyncedSet,
    *,
    rig: str,
    seq: int,
    encoding: str = "bgr8",
    jpeg_quality: int = 90,
    t_pub_ns: int | None = None,
    shm=None,
    view_index: dict[str, int] | None = None,
    source: str = "",
) -> FrameSet:
    """The wire frameset of a synchronised set whose payloads are :class:`capture.source.Frame`.

    For ``encoding="shm"`` pass the process's :class:`capture.shm.ShmWriter` and the camera ->
    view-slot map ``view_index``.
    """
    views, buffers = [], []
    jpegs = iter(
        encode_jpeg_views([f.payload.image for f in synced.frames], jpeg_quality)
        if encoding == "jpeg" and synced.frames
        else ()
    )
    for sf in synced.frames:
        img = sf.payload.image
        h, w = img.shape[:2]
        if encoding == "shm":
            handle = sf.payload.shm or (shm.segment, *shm.write(seq, view_index[sf.camera], img))
            views.append(View(sf.camera, sf.payload.frame_index, sf.t_ns, w, h, "shm", img.nbytes, shm=handle))
            buffers.append(None)
            continue
        buf = np.ascontiguousarray(img) if encoding == "bgr8" else next(jpegs)
        views.append(View(sf.camera, sf.payload.frame_index, sf.t_ns, w, h, encoding, memoryview(buf).nbytes))
        buffers.append(buf)
    return FrameSet(
        rig=rig,
        seq=seq,
        t_ref_ns=synced.t_ref_ns,
        t_pub_ns=t_pub_ns or now_ns(),
        views=tuple(views),
        buffers=tuple(buffers),
        missing=synced.missing,
        skew_ms=synced.skew_ms,
        source=source,
    )


@dataclass
class CaptureReport:
    """What a capture run did."""

    sets: int = 0
    complete: int = 0
    dropped_publish: int = 0
    dropped_frames: int = 0
    overwritten: int = 0
    latency_ms: list[float] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def fps(self) -> float:
        return self.sets / self.seconds if self.seconds > 0 else 0.0


class CaptureProcess:
    """Publish a :class:`LiveRig`'s sets and the process status.

    Status goes out every ``status_interval_s``: ``starting`` until the first set is published,
    ``ready`` right after it, ``running`` from then on, and finally ``stopping`` or ``error``.

    Args:
        rig_name: rig name (topic ``frames/<rig_name>``).
        live: the rig's readers + synchroniser.
        publisher: a :class:`capture.bus.Publisher` (or anything with ``send(msg) -> bool`` and
            ``stats.dropped``).
        process: status name.
        encoding, jpeg_quality: view encoding on the wire (``shm``: same-host shared memory).
        status_interval_s: period of status messages.
        shm_ring: framesets kept in the shared-memory ring (``shm`` encoding).
        shm_slot_bytes: size of the largest view (W*H*3) if known: the ring is then created
            before capture starts instead of at the first set.
        credit: a lockstep media replay publishes set ``s`` only once this
            :class:`capture.credit.ConsumerCredit` saw the consumer answer ``s - in_flight``
            (None: paced by the subscriber's queue alone).
    """

    def __init__(
        self,
        rig_name: str,
        live: LiveRig,
        publisher,
        *,
        process: str,
        encoding: str = "bgr8",
        jpeg_quality: int = 90,
        status_interval_s: float = 1.0,
        shm_ring: int = 8,
        shm_slot_bytes: int | None = None,
        credit=None,
    ) -> None:
        self.rig_name = rig_name
        self.credit = credit
        self._stop: threading.Event | None = None
        self.live = live
        self.publisher = publisher
        self.process = process
        self.encoding = encoding
        self.jpeg_quality = jpeg_quality
        self.status_interval_s = status_interval_s
        self.report = CaptureReport()
        self._seq = 0
        self._recent_lat: deque[float] = deque(maxlen=300)
        self._last_status = 0.0
        self._sets_at_status = 0
        self._shm = None
        self._shm_count = 0
        self._shm_ring = shm_ring
        self._shm_slot_bytes = shm_slot_bytes
        self._view_index = {c: i for i, c in enumerate(live.cameras)}
        # A lockstep media replay has no clock to keep: when the subscriber's queue is full it waits
        # (the timeline slips) instead of dropping a frameset whose four frames were decoded for nothing.
        self._consumer_paced = live.schedule is not None and live.lockstep and _accepts_wait(publisher)

    def status(self, state: str, error: str = "") -> Status:
        """The current status message."""
        now = time.monotonic()
        dt = now - self._last_status if self._last_status else 0.0
        fps = (self.report.sets - self._sets_at_status) / dt if dt > 0 else 0.0
        # media read as fast as possible is stamped in media time, ahead of the wall clock: no latency
        lat = max(0.0, float(np.median(self._recent_lat))) if self._recent_lat else 0.0
        dropped = self.publisher.stats.dropped + self.live.sync.stats.dropped_frames + self.live.overwritten
        states = self.live.camera_states()
        return Status(
            process=self.process,
            state=state,
            t_ns=now_ns(),
            fps=fps,
            latency_ms=lat,
            dropped=dropped,
            missing=tuple(self.live.missing()),
            error=error[:4000],
            cameras=states,
            counts=self.counts(),
        )

    def counts(self) -> dict[str, int]:
        """The run's accounting: framesets ``published`` (= ``complete`` + ``incomplete``),
        per camera ``missing/``, ``skipped/`` (lockstep replay), ``decode_errors/``,
        ``size_mismatch/``, and ``dropped/<reason>`` (``queue_full``: framesets the stream
        refused; the others are frames), plus ``input_ended`` (1 once every finite source ended)."""
        out = {k: v for k, v in self.live.counts().items() if v or k.startswith(("missing/", "skipped/", "dropped/"))}
        out["published"] = self.report.sets
        out["complete"] = self.report.complete
        out["incomplete"] = self.report.sets - self.report.complete
        out["dropped/queue_full"] = int(self.publisher.stats.dropped)
        out["input_ended"] = int(self.live.ended)
        return out

    def _send_status(self, state: str, error: str = "") -> None:
        msg = self.status(state, error)
        if state in ("stopping", "error") and _accepts_wait(self.publisher):
            self.publisher.send(msg, wait_ms=1000)  # the last word waits for a full queue briefly
        else:
            self.publisher.send(msg)  # periodic status may be dropped like any message
        self._last_status = time.monotonic()
        self._sets_at_status = self.report.sets

    def run(
        self, stop: threading.Event, *, max_sets: int | None = None, duration_s: float | None = None
    ) -> CaptureReport:
        """Capture until ``stop`` is set, ``max_sets`` were published, ``duration_s`` passed or
        every (finite) source ended. Returns the run's report."""
        t0 = time.monotonic()
        self._stop = stop
        self._send_status("starting")
        if self.encoding == "shm" and self._shm_slot_bytes:
            self._new_shm(self._shm_slot_bytes)
        self.live.start()
        try:
            while not stop.is_set():
                for synced in self.live.poll(0.005):
                    self._publish(synced)
                    if self.report.sets == 1:
                        self._send_status("ready")  # the first set is out: the stream works
                if time.monotonic() - self._last_status >= self.status_interval_s:
                    self._send_status("running" if self.report.sets else "starting")
                if self.live.ended or (max_sets is not None and self.report.sets >= max_sets):
                    break
                if self.report.sets == 0 and self.live.wrong_size:
                    break  # every frame so far has the wrong size: no set can ever be used
                if duration_s is not None and time.monotonic() - t0 >= duration_s:
                    break
        except Exception as exc:
            self._send_status("error", f"{type(exc).__name__}: {exc}")
            raise
        finally:
            self.report.seconds = time.monotonic() - t0
            self.live.stop()
            if self._shm is not None:
                self._shm.close()
            if self.credit is not None:
                self.credit.close()
            self.report.dropped_frames = self.live.sync.stats.dropped_frames
            self.report.overwritten = self.live.overwritten
            self.report.dropped_publish = self.publisher.stats.dropped
        if self.report.sets == 0 and self.live.size_error:
            self._send_status("error", self.live.size_error)
            raise SourceError(self.live.size_error)
        failed = {c: st for c, st in self.live.camera_states().items() if st.startswith("error")}
        if failed and self.report.sets == 0:
            text = "; ".join(f"{c}: {st}" for c, st in failed.items())
            self._send_status("error", f"no frameset published; {text}")
            raise SourceError(f"capture '{self.process}': no frameset published; {text}")
        self._send_status("stopping")
        return self.report

    def _new_shm(self, slot_bytes: int) -> None:
        import os

        from capture.shm import ShmWriter

        if self._shm is not None:
            self._shm.close()
        self._shm_count += 1
        self._shm = ShmWriter(
            f"selfpose3d-{self.rig_name}-{os.getpid()}-{self._shm_count}",
            views=len(self._view_index),
            slot_bytes=slot_bytes,
            ring=self._shm_ring,
        )

    def _shm_writer(self, synced: SyncedSet):
        need = max(f.payload.image.nbytes for f in synced.frames)
        if self._shm is None or need > self._shm.slot_bytes:  # (re)size to the largest view seen
            self._new_shm(need)
        return self._shm

    def _publish(self, synced: SyncedSet) -> None:
        if self._consumer_paced and self.credit is not None:
            self.live.schedule.consumer_held(self.credit.wait(self._seq, self._stop))
            synced = self._restamp(synced)
        copied = all(f.payload.shm is not None for f in synced.frames)  # done at grab by the readers
        shm = self._shm_writer(synced) if self.encoding == "shm" and not copied else None
        fs = frameset_from(
            synced,
            rig=self.rig_name,
            seq=self._seq,
            encoding=self.encoding,
            jpeg_quality=self.jpeg_quality,
            shm=shm,
            view_index=self._view_index,
            source=self.process,
        )
        self._seq += 1
        if self._consumer_paced:  # media replay: wait for the consumer rather than decode for nothing
            t0 = time.monotonic()
            sent = self.publisher.send(fs, wait_ms=CONSUMER_WAIT_MS)
            self.live.schedule.consumer_held(time.monotonic() - t0)
        else:
            sent = self.publisher.send(fs)
        if sent:
            lat = (now_ns() - synced.t_ref_ns) / 1e6
            self._recent_lat.append(lat)
            self.report.latency_ms.append(lat)
        self.report.sets += 1
        self.report.complete += int(synced.complete)

    def _restamp(self, synced: SyncedSet) -> SyncedSet:
        """A lockstep replay's set on the timeline as it stands now: the consumer's waits moved the
        timeline (:meth:`ReplaySchedule.consumer_held`) after this set's round was stamped, and a set
        decoded ahead is presented, like every later frame, that much later (never in the future)."""
        delta = min(self.live.schedule.slip_since(synced.t_ref_ns), now_ns() - synced.t_ref_ns)
        if delta <= 0:
            return synced
        frames = tuple(dataclasses.replace(f, t_ns=f.t_ns + delta) for f in synced.frames)
        return dataclasses.replace(synced, t_ref_ns=synced.t_ref_ns + delta, frames=frames)


def build_capture(
    rig, config, *, stop: threading.Event, num_frames: int | None = None, consumer_endpoint: str | None = None
):
    """Compose sources, :class:`LiveRig`, publisher and :class:`CaptureProcess` from a loaded
    rig (``calib.rig_config.Rig``) and a :class:`capture.config.CaptureConfig`.

    ``consumer_endpoint``: where the consumer answers each frameset (the live worker's poses); a
    lockstep media replay then waits for those answers (:class:`capture.credit.ConsumerCredit`)."""
    from capture.bus import Publisher
    from capture.sources.factory import build_sources

    cameras = list(config.cameras) or rig.names
    sources = build_sources(
        rig, cameras, stop=stop, realtime=config.realtime, num_frames=num_frames, resize=config.resize
    )
    fps = config.fps or rig_fps(rig, cameras)
    tolerance = config.sync.tolerance_ms or 500.0 / fps
    # shm: when every source decodes straight into a buffer (devices, streams, video files), each
    # camera's frames land in its own ring on its reader thread: no pixel copy at all. Otherwise the
    # set is copied into the process's ring when published (copying at grab on the reader threads
    # gave lower p50 but more incomplete sets under CPU contention).
    rings = config.stream.encoding == "shm" and all(s.decodes_into_buffer for s in sources)
    live = LiveRig(
        sources,
        tolerance_ms=tolerance,
        deadline_ms=config.sync.deadline_ms,
        min_views=min(config.sync.min_views, len(cameras)),
        failure_budget=config.failure_budget,
        backoff_s=config.backoff_s,
        lossless=lockstep(sources) or not _paced(rig, cameras, config.realtime),
        lockstep=lockstep(sources),
        shm_segment=f"selfpose3d-{rig.name}" if rings else None,
        frame_shapes={c: (rig.cameras[c].height, rig.cameras[c].width, 3) for c in cameras},
    )
    curve = None
    if config.stream.curve_keys:
        from capture.bus import curve_server_from_files

        curve = curve_server_from_files(config.stream.curve_keys, config.stream.curve_clients)
    pub = Publisher(config.stream.endpoint, hwm=config.stream.hwm, allow_remote=config.stream.allow_remote, curve=curve)
    slot = max(rig.cameras[c].width * rig.cameras[c].height * 3 for c in cameras)
    proc = CaptureProcess(
        rig.name,
        live,
        pub,
        process=config.process or f"capture-{rig.name}",
        encoding=config.stream.encoding,
        jpeg_quality=config.stream.jpeg_quality,
        status_interval_s=config.status_interval_s,
        shm_slot_bytes=slot,
        credit=_credit(rig.name, live, consumer_endpoint),
    )
    return proc, pub


def _credit(rig_name: str, live: LiveRig, consumer_endpoint: str | None):
    if not consumer_endpoint or not live.lockstep:
        return None
    from capture.credit import ConsumerCredit

    return ConsumerCredit(consumer_endpoint, rig_name, timeout_s=CONSUMER_WAIT_MS / 1e3)


def lockstep(sources: Sequence[Source]) -> bool:
    """True when every source follows one replay schedule (media replayed in lockstep)."""
    return bool(sources) and all(s.schedule is not None for s in sources)


def _paced(rig, cameras: Sequence[str], realtime: bool | None) -> bool:
    """False when the capture reads media as fast as possible (the override, or every camera's
    rig entry, says ``realtime: false``): its readers must then deliver every frame."""
    if realtime is not None:
        return realtime
    return not all(rig.source(c).kind not in ("device", "stream") and not rig.source(c).realtime for c in cameras)


def rig_fps(rig, cameras: Sequence[str]) -> float:
    """Nominal frame rate of a rig's cameras (the fastest configured; 30 if none says)."""
    rates = []
    for name in cameras:
        src = rig.source(name)
        if src.fps:
            rates.append(src.fps)
        elif src.kind == "synthetic":
            rates.append(rig.config.synthetic.fps)
        elif src.kind == "panoptic":
            rates.append(29.97)
    return max(rates) if rates else 30.0


def stop_on_signals() -> threading.Event:
    """An event set by SIGINT/SIGTERM (orderly stop for command-line processes)."""
    import signal

    stop = threading.Event()

    def handler(signum, frame):  # noqa: ARG001 - signal handler signature
        if stop.is_set():
            raise KeyboardInterrupt
        stop.set()

    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)
    return stop
