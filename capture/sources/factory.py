"""Build a rig's sources from its rig file entries (``calib.rig_config``)."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Sequence

from calib.configkit import ConfigError
from calib.rig_config import Rig, SourceConfig
from capture.source import Source


def build_source(
    name: str,
    cfg: SourceConfig,
    *,
    start_ns: int,
    stop: threading.Event,
    realtime: bool | None = None,
    panoptic_first: int = 0,
    synthetic=None,
    view: int = 0,
    schedule=None,
) -> Source:
    """One camera's source.

    Args:
        name: camera name.
        cfg: its ``source`` entry.
        start_ns: shared time origin of media sources (frame 0 of every file is at this time).
        stop: event that interrupts pacing sleeps.
        realtime: override ``cfg.realtime`` (None: keep it).
        panoptic_first: frame number at ``start_ns`` for Panoptic sources.
        synthetic, view: the rig's shared :class:`capture.sources.synthetic.SyntheticRig` and
            this camera's view index in it.
        schedule: the rig's :class:`capture.schedule.ReplaySchedule` for file/images/panoptic
            sources (lockstep replay), or None (the source paces itself).
    """
    rt = cfg.realtime if realtime is None else realtime
    media = dict(loop=cfg.loop, realtime=rt, start_ns=start_ns, stop=stop, schedule=schedule)
    if cfg.kind in ("device", "stream"):
        from capture.sources.opencv import OpenCVSource

        target = cfg.uri if cfg.uri else cfg.index
        return OpenCVSource(name, target, fps=cfg.fps, width=cfg.width, height=cfg.height)
    if cfg.kind == "file":
        from capture.sources.video import VideoFileSource

        # in lockstep the rig's fps is a cap applied by the schedule; alone it sets the timeline rate.
        # A rig's cameras decode in parallel on their reader threads: one decoder thread each.
        return VideoFileSource(
            name,
            cfg.uri,
            fps=None if schedule is not None else cfg.fps,
            decode_threads=1 if schedule is not None else 0,
            **media,
        )
    if cfg.kind == "images":
        from capture.sources.images import ImageFolderSource

        return ImageFolderSource(name, cfg.uri, fps=cfg.fps or 30.0, **media)
    if cfg.kind == "panoptic":
        from capture.sources.panoptic import PANOPTIC_HD_FPS, PanopticSource

        return PanopticSource(name, cfg.uri, fps=cfg.fps or PANOPTIC_HD_FPS, first_frame=panoptic_first, **media)
    if cfg.kind == "session":
        from capture.sources.session import SessionSource

        return SessionSource(name, cfg.uri, realtime=rt, retime=True, start_ns=start_ns, loop=cfg.loop, stop=stop)
    if cfg.kind == "synthetic":
        from capture.sources.synthetic import SyntheticSource

        if synthetic is None:
            raise ConfigError(f"camera '{name}': a synthetic source needs the rig's shared world")
        return SyntheticSource(name, synthetic, view)
    raise ConfigError(f"camera '{name}': source kind {cfg.kind!r} is not supported")


def build_sources(
    rig: Rig,
    cameras: Sequence[str] | None = None,
    *,
    stop: threading.Event,
    realtime: bool | None = None,
    start_ns: int | None = None,
    num_frames: int | None = None,
    resize: bool = False,
    lockstep: bool = True,
) -> list[Source]:
    """Sources of the rig's cameras (or of the subset ``cameras``), in rig order.

    Args:
        rig: the loaded rig.
        cameras: names of the cameras this process captures (None: all).
        stop: event that interrupts pacing sleeps.
        realtime: override every source's ``realtime`` (None: as configured).
        start_ns: shared time origin (None: now + 0.2 s, so all sources start together).
        num_frames: stop synthetic sources after this many frames.
        resize: scale media frames to the calibration size when they differ (same aspect).
        lockstep: replay the file/images/panoptic cameras in lockstep
            (:func:`replay_schedule`): the same frame index from every camera.

    Raises:
        SourceError: a media source is missing, unreadable, or of another size than its
            calibration (without ``resize``), naming each camera.
    """
    names = list(rig.names if cameras is None else cameras)
    unknown = [n for n in names if n not in rig.names]
    if unknown:
        raise ConfigError(f"{rig.path or rig.name}: cameras {unknown} are not in the rig {rig.names}")
    start_ns = time.time_ns() + 200_000_000 if start_ns is None else start_ns
    configs = {n: rig.source(n) for n in names}
    for n, c in configs.items():
        if c.kind == "session" and not Path(c.uri).exists():
            raise ConfigError(
                f"{rig.path or rig.name}: camera '{n}': {c.kind} source {c.uri} does not exist "
                "(paths in a rig file are relative to the rig file's folder)"
            )
    from capture.sources.probe import check_media

    infos = check_media(rig, names, resize=resize)
    schedule = replay_schedule(rig, names, infos, stop=stop, realtime=realtime) if infos and lockstep else None
    synthetic = None
    if any(c.kind == "synthetic" for c in configs.values()):
        from capture.sources.synthetic import SyntheticRig
        from capture.synthetic.world import SyntheticWorld

        spec = rig.config.synthetic
        world = SyntheticWorld(
            rig.cameras,
            num_people=spec.people,
            seed=spec.seed,
            fps=spec.fps,
            volume_center_mm=rig.volume.center_mm,
            volume_size_mm=rig.volume.size_mm,
        )
        rt = (
            realtime
            if realtime is not None
            else all(configs[n].realtime for n in names if configs[n].kind == "synthetic")
        )
        synthetic = SyntheticRig(world, realtime=rt, start_ns=start_ns, num_frames=num_frames, stop=stop)
    first = 0
    pan = [n for n, c in configs.items() if c.kind == "panoptic"]
    if pan:
        from capture.sources.panoptic import panoptic_first_frame

        first = panoptic_first_frame(configs[pan[0]].uri, pan)
    sources = []
    for n in names:
        src = build_source(
            n,
            configs[n],
            start_ns=start_ns,
            stop=stop,
            realtime=realtime,
            panoptic_first=first,
            synthetic=synthetic,
            view=rig.names.index(n),
            schedule=schedule if n in infos else None,
        )
        cam = rig.cameras[n]
        if n in infos and (infos[n].width, infos[n].height) != (cam.width, cam.height):
            from capture.sources.resize import ResizedSource

            src = ResizedSource(src, cam.width, cam.height)  # check_media allowed it: resize is on
        sources.append(src)
    return sources


def replay_schedule(
    rig: Rig, names: Sequence[str], infos: dict, *, stop: threading.Event, realtime: bool | None = None
):
    """The :class:`capture.schedule.ReplaySchedule` of a rig's media cameras (those in ``infos``).

    The rate is the media's own (a video file's, an image folder's ``fps`` or 30, Panoptic's
    29.97); a file source's ``fps`` in the rig caps it (every ``round(native / fps)``-th frame).
    Looping rigs wrap at the shortest camera's length so the cameras stay on the same frame.

    Raises:
        ConfigError: the cameras' media have different frame rates.
    """
    from capture.schedule import ReplaySchedule
    from capture.sources.panoptic import PANOPTIC_HD_FPS

    media = [n for n in names if n in infos]
    rates, caps = {}, []
    for n in media:
        cfg = rig.source(n)
        if cfg.kind == "file":
            rates[n] = infos[n].fps or 30.0
            if cfg.fps:
                caps.append(cfg.fps)
        else:
            rates[n] = cfg.fps or (PANOPTIC_HD_FPS if cfg.kind == "panoptic" else 30.0)
    fps = max(rates.values())
    if min(rates.values()) < fps * 0.99:
        raise ConfigError(
            f"{rig.path or rig.name}: media cameras have different frame rates "
            f"({', '.join(f'{n} {r:g}' for n, r in rates.items())}): lockstep replay needs one rate"
        )
    step = max(1, round(fps / min(caps))) if caps else 1
    rt = realtime if realtime is not None else all(rig.source(n).realtime for n in media)
    loop = all(rig.source(n).loop for n in media)
    frames = [infos[n].frames for n in media]
    length = min(frames) if loop and all(frames) else None
    return ReplaySchedule(media, fps, realtime=rt, step=step, length=length, stop=stop)
