"""The interactive Open3D window (needs a display: a desktop session or ``xvfb-run``).

A feed thread polls the poses stream (drained to the newest message, so the window never lags)
and posts each update to the GUI thread. Mouse: left-drag orbits, wheel zooms, right/middle-drag
pans (Open3D's scene widget). Keys: see :data:`viz.scene.KEY_HELP` (space pause, f follow,
1-7 layers, s screenshot, r reset view, q quit).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from pathlib import Path
from typing import Callable

import numpy as np

from viz import geometry as geo
from viz.feeds import FOLLOW_DISTANCE_MM, Feed, ViewSetup
from viz.offscreen import BACKGROUND_RGB
from viz.scene import LAYERS, SceneFrame

log = logging.getLogger(__name__)


class DisplayUnavailable(RuntimeError):
    """No display to open a window on; the message says what to do instead."""


def check_display() -> None:
    """Raise :class:`DisplayUnavailable` when no X display is set (Open3D's GUI would abort the
    process, uncatchably, rather than raise)."""
    if not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY"):
        raise DisplayUnavailable(
            "no display: DISPLAY is not set. Run in a desktop session, under `xvfb-run -a selfpose3d view ...`, "
            "or render headless with `selfpose3d view --render out.mp4`"
        )


def _key_name(gui, key) -> str:
    names = {
        gui.KeyName.SPACE: "space",
        gui.KeyName.F: "f",
        gui.KeyName.S: "s",
        gui.KeyName.R: "r",
        gui.KeyName.Q: "q",
        gui.KeyName.ESCAPE: "q",
    }
    digits = [
        gui.KeyName.ONE,
        gui.KeyName.TWO,
        gui.KeyName.THREE,
        gui.KeyName.FOUR,
        gui.KeyName.FIVE,
        gui.KeyName.SIX,
        gui.KeyName.SEVEN,
    ]
    names.update({k: str(i + 1) for i, k in enumerate(digits)})
    return names.get(key, "")


class ViewerWindow:
    """Open3D GUI window showing a :class:`viz.scene.SceneState` fed by a :class:`viz.feeds.Feed`.

    Args:
        feed: poses/status source.
        setup: rig, volume and initial view camera (its size is the window size).
        min_score: hide joints below this score.
        follow: start following the first person.
        title: window title.
        screenshot_dir: where 's' writes PNGs.
        duration_s: close by itself after this long (tests, demos); None: until closed.
        should_stop: polled by the feed thread; True closes the window (supervised child stop).
        on_tick: called by the feed thread every poll with the frames shown (heartbeat).
    """

    def __init__(
        self,
        feed: Feed,
        setup: ViewSetup,
        min_score: float = 0.0,
        follow: bool = False,
        title: str = "selfpose3d",
        screenshot_dir: str | Path = ".",
        duration_s: float | None = None,
        should_stop: Callable[[], bool] | None = None,
        on_tick: Callable[[int], None] | None = None,
    ) -> None:
        import open3d as o3d

        self.o3d = o3d
        self.gui = o3d.visualization.gui
        self.rendering = o3d.visualization.rendering
        self.feed, self.setup = feed, setup
        self.state = setup.scene(min_score)
        self.follow_on_start = follow
        self.screenshot_dir = Path(screenshot_dir)
        self.duration_s = duration_s
        self.should_stop = should_stop
        self.on_tick = on_tick
        self.frames_shown = 0
        self.screenshots: list[Path] = []
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._pending = None  # newest (poses, statuses) not yet shown
        self._labels = []
        self._static_key = None

        app = self.gui.Application.instance
        app.initialize()
        cam = setup.camera
        self.window = app.create_window(title, cam.width, cam.height)
        self.widget = self.gui.SceneWidget()
        self.widget.scene = self.rendering.Open3DScene(self.window.renderer)
        self.widget.scene.set_background([*BACKGROUND_RGB, 1.0])
        self.widget.scene.show_axes(False)
        grading = self.rendering.ColorGrading  # linear: colours as in the offscreen renders
        self.widget.scene.view.set_color_grading(grading(grading.Quality.HIGH, grading.ToneMapping.LINEAR))
        self.hud = self.gui.Label("waiting for poses...")
        self.hud.text_color = self.gui.Color(0.92, 0.92, 0.92)
        self.window.add_child(self.widget)
        self.window.add_child(self.hud)
        self.window.set_on_layout(self._on_layout)
        self.window.set_on_close(self._on_close)
        self.widget.set_on_key(self._on_key)
        scaling = self.window.scaling
        self.mat_lines = self.rendering.MaterialRecord()
        self.mat_lines.shader = "unlitLine"
        self.mat_lines.line_width = 1.5 * scaling
        self.mat_bones = self.rendering.MaterialRecord()
        self.mat_bones.shader = "unlitLine"
        self.mat_bones.line_width = 4.0 * scaling
        self.mat_points = self.rendering.MaterialRecord()
        self.mat_points.shader = "defaultUnlit"
        self.mat_points.point_size = 8.0 * scaling
        self._reset_view()

    # ------------------------------------------------------------------ GUI callbacks

    def _on_layout(self, ctx) -> None:
        r = self.window.content_rect
        self.widget.frame = r
        pref = self.hud.calc_preferred_size(ctx, self.gui.Widget.Constraints())
        self.hud.frame = self.gui.Rect(r.x + 8, r.y + 8, max(pref.width, 10), max(pref.height, 10))

    def _on_close(self) -> bool:
        self._stop.set()
        return True

    def _on_key(self, event):
        if event.type != self.gui.KeyEvent.Type.DOWN:
            return self.gui.Widget.EventCallbackResult.IGNORED
        key = _key_name(self.gui, event.key)
        if not key:
            return self.gui.Widget.EventCallbackResult.IGNORED
        action = self.handle_key(key)
        log.info("key %s: %s", key, action)
        return self.gui.Widget.EventCallbackResult.HANDLED

    def handle_key(self, key: str) -> str:
        """Apply a key (also used by tests to drive the window)."""
        action = self.state.handle_key(key)
        if action == "screenshot":
            self.screenshot()
        elif action == "reset":
            self.state.follow_id = None
            self._reset_view()
        elif action == "quit":
            self._stop.set()
            self.gui.Application.instance.quit()
        elif action == "free view":
            self._reset_view()
        self._redraw()
        return action

    # ------------------------------------------------------------------ drawing

    def _o3d_lines(self, lines: geo.LineSet):
        o3d = self.o3d
        ls = o3d.geometry.LineSet()
        ls.points = o3d.utility.Vector3dVector(lines.points_w)
        ls.lines = o3d.utility.Vector2iVector(lines.lines.astype(np.int32))
        ls.colors = o3d.utility.Vector3dVector(lines.colors)
        return ls

    def _set(self, name: str, geometry, material, present: bool) -> None:
        scene = self.widget.scene
        if scene.has_geometry(name):
            scene.remove_geometry(name)
        if present:
            scene.add_geometry(name, geometry, material)

    def _reset_view(self) -> None:
        cam = self.setup.camera
        extrinsic = np.eye(4)
        extrinsic[:3, :3], extrinsic[:3, 3] = cam.R, cam.t_mm
        half = 0.5 * self.setup.volume_size_mm
        bbox = self.o3d.geometry.AxisAlignedBoundingBox(
            self.setup.volume_center_mm - half, self.setup.volume_center_mm + half
        )
        self.widget.setup_camera(cam.K, extrinsic, cam.width, cam.height, bbox)
        self.widget.center_of_rotation = self.setup.volume_center_mm

    def _draw_frame(self, frame: SceneFrame) -> None:
        key = (len(frame.static_lines.lines), tuple(self.state.missing_cameras), tuple(self.state.layers.values()))
        if key != self._static_key:
            ls = frame.static_lines
            self._set("static", self._o3d_lines(ls), self.mat_lines, len(ls.lines) > 0)
            self._static_key = key
        bones = frame.skeleton_lines
        self._set("bones", self._o3d_lines(bones), self.mat_bones, len(bones.lines) > 0)
        joints = frame.joints
        if joints is not None and len(joints.points_w):
            pc = self.o3d.geometry.PointCloud(self.o3d.utility.Vector3dVector(joints.points_w))
            pc.colors = self.o3d.utility.Vector3dVector(joints.colors)
            self._set("joints", pc, self.mat_points, True)
        else:
            self._set("joints", None, self.mat_points, False)
        for lab in self._labels:
            self.widget.remove_3d_label(lab)
        self._labels = []
        for label in frame.labels:
            lab = self.widget.add_3d_label(label.point_w, label.text)
            lab.color = self.gui.Color(*label.color)
            self._labels.append(lab)
        self.hud.text = "\n".join(frame.hud) if frame.hud else ""
        target = frame.follow_target_mm
        if target is not None:
            eye = target - self.setup.camera.R[2] * FOLLOW_DISTANCE_MM
            self.widget.look_at(target, eye, [0.0, 0.0, 1.0])
            self.widget.center_of_rotation = target
        self.window.set_needs_layout()
        self.window.post_redraw()

    def _redraw(self) -> None:
        self._draw_frame(self.state.frame())

    def _apply_pending(self) -> None:
        with self._lock:
            pending, self._pending = self._pending, None
        if pending is None:
            return
        msg, statuses = pending
        for st in statuses:
            self.state.update_status(st)
        if msg is not None:
            self.state.update_poses(msg)
            if self.follow_on_start and self.state.follow_id is None:
                self.state.follow_next()
        self._redraw()
        self.frames_shown += 1

    def screenshot(self, path: str | Path | None = None) -> Path:
        """Save the current view as PNG (asynchronously rendered by Open3D)."""
        self.screenshot_dir.mkdir(parents=True, exist_ok=True)
        path = Path(path) if path else self.screenshot_dir / time.strftime("selfpose3d_%Y%m%d_%H%M%S.png")
        o3d = self.o3d

        def save(image):
            o3d.io.write_image(str(path), image)
            log.info("screenshot saved to %s", path)

        self.widget.scene.scene.render_to_image(save)
        self.screenshots.append(path)
        return path

    # ------------------------------------------------------------------ feed thread

    def _feed_loop(self) -> None:
        app = self.gui.Application.instance
        t0 = time.monotonic()
        try:
            while not self._stop.is_set():
                if self.on_tick is not None:
                    self.on_tick(self.frames_shown)
                timed_out = self.duration_s is not None and time.monotonic() - t0 > self.duration_s
                if timed_out or (self.should_stop is not None and self.should_stop()):
                    app.post_to_main_thread(self.window, self.window.close)
                    break
                msg, statuses = self.feed.poll(timeout_ms=50)
                if msg is None and not statuses:
                    continue
                with self._lock:
                    if self._pending is not None:  # the GUI has not shown the last one: keep the newest
                        old_msg, old_st = self._pending
                        statuses = old_st + statuses
                        msg = msg if msg is not None else old_msg
                    self._pending = (msg, statuses)
                app.post_to_main_thread(self.window, self._apply_pending)
        except Exception:  # a feed failure must not leave a frozen window: report and close
            log.exception("viewer feed failed")
            app.post_to_main_thread(self.window, self.window.close)

    def run(self) -> int:
        """Show the window until it is closed (or ``duration_s``); returns 0."""
        self._redraw()
        thread = threading.Thread(target=self._feed_loop, name="viewer-feed", daemon=True)
        thread.start()
        try:
            self.gui.Application.instance.run()
        finally:
            self._stop.set()
            thread.join(timeout=2.0)
            self.feed.close()
        return 0


def run_window(
    feed: Feed,
    setup: ViewSetup,
    min_score: float = 0.0,
    follow: bool = False,
    title: str = "selfpose3d",
    duration_s: float | None = None,
    should_stop: Callable[[], bool] | None = None,
    on_tick: Callable[[int], None] | None = None,
) -> int:
    """Open the interactive viewer (raises :class:`DisplayUnavailable` without a display)."""
    check_display()
    print("keys: " + ", ".join(f"{k} {v}" for k, v in _help_items()))
    return ViewerWindow(
        feed, setup, min_score, follow, title, duration_s=duration_s, should_stop=should_stop, on_tick=on_tick
    ).run()


def _help_items():
    from viz.scene import KEY_HELP

    return [(k, v.split(" (")[0]) for k, v in KEY_HELP.items() if not k.isdigit()] + [("1-7", "/".join(LAYERS))]
