"""Build a rig's sources from its rig file entries (``calib.rig_config``)."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Sequence

from calib.configkit import ConfigError
from calib.rig_config import Rig, SourceConfig
from capture.source import Source


def build_source(name: str, cfg: SourceConfig, *, start_ns: int, stop: threading.Event,
                 realtime: bool | None = None, panoptic_first: int = 0, synthetic=None, view: int = 0) -> Source:
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
    """
    rt = cfg.realtime if realtime is None else realtime
    media = dict(loop=cfg.loop, realtime=rt, start_ns=start_ns, stop=stop)
    if cfg.kind in ("device", "stream"):
        from capture.sources.opencv import OpenCVSource

        target = cfg.uri if cfg.uri else cfg.index
        return OpenCVSource(name, target, fps=cfg.fps, width=cfg.width, height=cfg.height)
    if cfg.kind == "file":
        from capture.sources.video import VideoFileSource

        return VideoFileSource(name, cfg.uri, fps=cfg.fps, **media)
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


def build_sources(rig: Rig, cameras: Sequence[str] | None = None, *, stop: threading.Event,
                  realtime: bool | None = None, start_ns: int | None = None,
                  num_frames: int | None = None) -> list[Source]:
    """Sources of the rig's cameras (or of the subset ``cameras``), in rig order.

    Args:
        rig: the loaded rig.
        cameras: names of the cameras this process captures (None: all).
        stop: event that interrupts pacing sleeps.
        realtime: override every source's ``realtime`` (None: as configured).
        start_ns: shared time origin (None: now + 0.2 s, so all sources start together).
        num_frames: stop synthetic sources after this many frames.
    """
    names = list(rig.names if cameras is None else cameras)
    unknown = [n for n in names if n not in rig.names]
    if unknown:
        raise ConfigError(f"{rig.path or rig.name}: cameras {unknown} are not in the rig {rig.names}")
    start_ns = time.time_ns() + 200_000_000 if start_ns is None else start_ns
    configs = {n: rig.source(n) for n in names}
    for n, c in configs.items():
        if c.kind in ("file", "images", "panoptic", "session") and not Path(c.uri).exists():
            raise ConfigError(f"{rig.path or rig.name}: camera '{n}': {c.kind} source {c.uri} does not exist "
                              "(paths in a rig file are relative to the rig file's folder)")
    synthetic = None
    if any(c.kind == "synthetic" for c in configs.values()):
        from capture.sources.synthetic import SyntheticRig
        from capture.synthetic.world import SyntheticWorld

        spec = rig.config.synthetic
        world = SyntheticWorld(rig.cameras, num_people=spec.people, seed=spec.seed, fps=spec.fps,
                               volume_center_mm=rig.volume.center_mm, volume_size_mm=rig.volume.size_mm)
        rt = realtime if realtime is not None else all(configs[n].realtime for n in names
                                                       if configs[n].kind == "synthetic")
        synthetic = SyntheticRig(world, realtime=rt, start_ns=start_ns, num_frames=num_frames, stop=stop)
    first = 0
    pan = [n for n, c in configs.items() if c.kind == "panoptic"]
    if pan:
        from capture.sources.panoptic import panoptic_first_frame

        first = panoptic_first_frame(configs[pan[0]].uri, pan)
    return [
        build_source(n, configs[n], start_ns=start_ns, stop=stop, realtime=realtime, panoptic_first=first,
                     synthetic=synthetic, view=rig.names.index(n))
        for n in names
    ]
