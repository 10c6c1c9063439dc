"""Feeding the viewer: the poses stream (ZeroMQ, drained to the newest) or the synthetic world,
and the headless loop that renders each new message to a PNG folder / MP4.

The feeds and the view setup live in :mod:`viz.feeds`; the interactive window (:mod:`viz.window`)
receives the same feeds and setup and draws the same :class:`viz.scene.SceneState`.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Callable, Sequence


from calib.camera import CameraRig
from viz.feeds import (  # noqa: F401  (re-exported for callers of viz.live)
    DEFAULT_POSES_ENDPOINT,
    BusFeed,
    Feed,
    SyntheticFeed,
    ViewSetup,
    view_camera,
)

log = logging.getLogger(__name__)


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
        return run_window(
            BusFeed(poses_endpoint, rig_name, status_endpoints),
            setup,
            duration_s=duration_s,
            should_stop=should_stop,
            on_tick=on_tick,
        )
    feed = BusFeed(poses_endpoint, rig_name, status_endpoints)
    n = run_headless(
        feed,
        setup,
        render_path,
        fps=fps,
        max_frames=max_frames,
        duration_s=duration_s,
        backend=backend,
        should_stop=should_stop,
        on_tick=on_tick,
    )
    return 0 if n > 0 else 1
