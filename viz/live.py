"""Feeding the viewer: the poses stream (ZeroMQ, drained to the newest) or the synthetic world,
and the headless loop that renders each new message to a PNG folder / MP4.

The interactive window (:mod:`viz.window`) uses the same feeds and the same
:class:`viz.scene.SceneState`.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Protocol, Sequence

import numpy as np

from calib.camera import Camera, CameraRig
from capture.messages import Poses, Status, now_ns
from calib.common.skeleton import PANOPTIC15
from viz import geometry as geo
from viz.scene import SceneState

log = logging.getLogger(__name__)

DEFAULT_POSES_ENDPOINT = "ipc:///tmp/selfpose3d-poses"  # the live app's default (app.config.LiveConfig)
FOLLOW_DISTANCE_MM = 4500.0


class Feed(Protocol):
    """Where the viewer's messages come from."""

    def poll(self, timeout_ms: int) -> tuple[Poses | None, list[Status]]:
        """Newest poses (None if none arrived within ``timeout_ms``) and any status messages."""

    def close(self) -> None: ...


class BusFeed:
    """Subscribes to ``poses/<rig>`` (drained to the newest: the viewer never lags) and
    optionally ``status/*`` (all of them kept: missing cameras and errors matter).

    Args:
        poses_endpoint: the inference worker's publisher, e.g. ``tcp://127.0.0.1:5556``.
        rig_name: only this rig's poses (None: any rig).
        status_endpoints: publishers of status messages (capture, inference...).
    """

    def __init__(self, poses_endpoint: str, rig_name: str | None = None, status_endpoints: Sequence[str] = ()) -> None:
        from capture.bus import Subscriber
        from capture.messages import topic_of

        topic = topic_of("poses", rig_name) if rig_name else b"poses/"
        self.poses = Subscriber(poses_endpoint, [topic])
        self.status = [Subscriber(e, [b"status/"]) for e in status_endpoints]

    def poll(self, timeout_ms: int) -> tuple[Poses | None, list[Status]]:
        statuses = []
        for sub in self.status:
            for _ in range(64):  # bounded: a flood of status messages cannot starve the poses
                msg = sub.recv(timeout_ms=0)
                if msg is None:
                    break
                statuses.append(msg)
        msg = self.poses.recv_latest(timeout_ms=timeout_ms)
        return (msg if isinstance(msg, Poses) else None), statuses

    @property
    def skipped(self) -> int:
        """Stale poses messages dropped while draining to the newest."""
        return self.poses.stats.skipped

    def close(self) -> None:
        self.poses.close()
        for sub in self.status:
            sub.close()


class SyntheticFeed:
    """Ground truth of the synthetic world as ``poses`` messages (the viewer demo, no engine).

    Args:
        world: a ``capture.synthetic.world.SyntheticWorld``.
        rig_name: rig name put in the messages.
        realtime: pace frames at the world's fps (False: as fast as asked).
        start_frame: first frame index.
        score: joint score written into the messages.
    """

    def __init__(self, world, rig_name: str, realtime: bool = True, start_frame: int = 0, score: float = 1.0) -> None:
        self.world = world
        self.rig_name = rig_name
        self.realtime = realtime
        self.frame_index = int(start_frame)
        self.score = float(score)
        self._t0 = time.monotonic()

    def message(self, frame_index: int) -> Poses:
        """The poses message of one world frame (present people only)."""
        people = self.world.people(frame_index)
        pres = np.flatnonzero(people.present)
        poses = np.zeros((len(pres), 15, 4), np.float32)
        poses[:, :, :3] = people.joints_mm[pres]
        poses[:, :, 3] = self.score
        t = now_ns()
        return Poses(
            rig=self.rig_name, seq=frame_index, frameset_seq=frame_index, t_capture_ns=t, t_publish_ns=t,
            skeleton_name=PANOPTIC15.name, joints=PANOPTIC15.joints, edges=PANOPTIC15.edges, poses=poses,
            track_ids=np.asarray(people.ids[pres], dtype=np.int64), extra={"source": "synthetic truth"},
        )

    def poll(self, timeout_ms: int) -> tuple[Poses | None, list[Status]]:
        if self.realtime:
            due = self._t0 + (self.frame_index + 1) / self.world.fps
            wait = due - time.monotonic()
            if wait > timeout_ms / 1e3:
                time.sleep(timeout_ms / 1e3)
                return None, []
            time.sleep(max(0.0, wait))
        msg = self.message(self.frame_index)
        self.frame_index += 1
        return msg, []

    def close(self) -> None:
        pass


@dataclass
class ViewSetup:
    """What the viewer shows: the rig, the volume and the initial view camera."""

    rig: CameraRig | None
    volume_center_mm: np.ndarray
    volume_size_mm: np.ndarray
    camera: Camera

    @classmethod
    def from_rig(cls, rig: CameraRig | None, volume_center_mm, volume_size_mm, width: int = 960,
                 height: int = 540, azimuth_deg: float = -60.0, elevation_deg: float = 30.0) -> "ViewSetup":
        radius = None
        if rig is not None:  # frame the cameras (where people are seen), not a possibly huge volume
            radius = min(geo.rig_radius_mm(rig, volume_center_mm), 0.5 * float(np.linalg.norm(volume_size_mm[:2])))
        cam = geo.overview_camera(volume_center_mm, volume_size_mm, width, height, azimuth_deg, elevation_deg, radius)
        return cls(rig, np.asarray(volume_center_mm, float), np.asarray(volume_size_mm, float), cam)

    def scene(self, min_score: float = 0.0) -> SceneState:
        return SceneState(self.rig, self.volume_center_mm, self.volume_size_mm, root_joint=PANOPTIC15.root,
                          min_score=min_score)


def view_camera(base: Camera, target_mm: np.ndarray | None) -> Camera:
    """The base view, or the follow view when a followed person is visible."""
    return base if target_mm is None else geo.follow_camera(base, target_mm, FOLLOW_DISTANCE_MM)


def run_headless(
    feed: Feed,
    setup: ViewSetup,
    out_path: str | Path,
    fps: float = 15.0,
    max_frames: int | None = None,
    duration_s: float | None = None,
    backend: str = "auto",
    min_score: float = 0.0,
    follow: bool = False,
    should_stop: Callable[[], bool] | None = None,
    idle_timeout_s: float | None = None,
    on_tick: Callable[[int], None] | None = None,
) -> int:
    """Render every new poses message (after draining) to ``out_path`` until a limit is hit.

    Args:
        feed: :class:`BusFeed` or :class:`SyntheticFeed`.
        setup: rig, volume and view camera.
        out_path: ``.mp4`` / ``.avi`` video or a folder of PNGs.
        fps: frame rate written into the video.
        max_frames, duration_s: stop after this many frames / seconds (None: no limit).
        backend: ``auto`` | ``open3d`` | ``software`` (see :func:`viz.offscreen.make_renderer`).
        min_score: hide joints below this score.
        follow: follow the first tracked person.
        should_stop: polled every loop (~10 Hz), e.g. ``event.is_set`` or a supervised child's
            ``lambda: ctx.stopping``; Ctrl-C also stops cleanly.
        idle_timeout_s: stop when no poses arrive for this long (None: wait forever).
        on_tick: called every loop with the frames written so far (e.g. a child's heartbeat).

    Returns:
        Number of frames written.
    """
    from viz.offscreen import FrameWriter, make_renderer

    state = setup.scene(min_score)
    renderer = make_renderer(setup.camera, backend)
    log.info("rendering headless with the %s backend to %s", renderer.backend, out_path)
    writer = FrameWriter(out_path, fps)
    t_start = last_msg = time.monotonic()
    try:
        while not (should_stop is not None and should_stop()):
            if on_tick is not None:
                on_tick(writer.count)
            now = time.monotonic()
            if max_frames is not None and writer.count >= max_frames:
                break
            if duration_s is not None and now - t_start >= duration_s:
                break
            if idle_timeout_s is not None and now - last_msg > idle_timeout_s:
                log.warning("no poses for %.0f s; stopping", idle_timeout_s)
                break
            msg, statuses = feed.poll(timeout_ms=100)
            for st in statuses:
                state.update_status(st)
            if msg is None:
                continue
            last_msg = time.monotonic()
            state.update_poses(msg)
            if follow and state.follow_id is None:
                state.follow_next()
            frame = state.frame()
            writer.write(renderer.render(frame, view_camera(setup.camera, frame.follow_target_mm)))
    except KeyboardInterrupt:
        log.info("interrupted; closing %s", out_path)
    finally:
        writer.close()
        renderer.close()
        feed.close()
    return writer.count


def run_viewer(
    poses_endpoint: str,
    rig: CameraRig | None,
    volume_center_mm: Sequence[float],
    volume_size_mm: Sequence[float],
    render_path: str | Path | None = None,
    status_endpoints: Sequence[str] = (),
    rig_name: str | None = None,
    size: tuple[int, int] = (960, 540),
    fps: float = 15.0,
    backend: str = "auto",
    max_frames: int | None = None,
    duration_s: float | None = None,
    should_stop: Callable[[], bool] | None = None,
    on_tick: Callable[[int], None] | None = None,
) -> int:
    """Entry point of a viewer process (``selfpose3d-live`` and ``selfpose3d view``).

    With ``render_path`` it renders headless (no display needed) and returns 0 if frames were
    written; otherwise it opens the window (raises ``viz.window.DisplayUnavailable`` without a
    display, before anything is started). ``should_stop`` / ``on_tick``: see :func:`run_headless`
    (the window polls them from its feed thread).
    """
    setup = ViewSetup.from_rig(rig, volume_center_mm, volume_size_mm, *size)
    if render_path is None:
        from viz.window import check_display, run_window

        check_display()
        return run_window(BusFeed(poses_endpoint, rig_name, status_endpoints), setup, duration_s=duration_s,
                          should_stop=should_stop, on_tick=on_tick)
    feed = BusFeed(poses_endpoint, rig_name, status_endpoints)
    n = run_headless(feed, setup, render_path, fps=fps, max_frames=max_frames, duration_s=duration_s,
                     backend=backend, should_stop=should_stop, on_tick=on_tick)
    return 0 if n > 0 else 1
