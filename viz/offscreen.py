"""Headless rendering of a :class:`viz.scene.SceneFrame` to BGR images, PNG folders and videos.

Two backends draw the same frame through the same virtual :class:`calib.camera.Camera`:

* ``open3d``: Open3D's legacy ``Visualizer`` in a hidden window. With no display it falls back
  to EGL offscreen rendering on Mesa (needs Debian ``libegl1 libgl1 libusb-1.0-0``, see
  ``scripts/install_viz_deps.sh``). A few ms per frame.
* ``software``: numpy projection + cv2 line drawing. Always available (only cv2 + numpy).

``auto`` probes Open3D once in a *subprocess* (a broken GL stack can abort the process, which a
try/except cannot catch) and falls back to ``software`` with a message that names the fix.
Labels and the HUD are drawn with cv2 on top in both backends, from the projected anchors.
"""

from __future__ import annotations

import functools
import logging
import math
import subprocess
import sys
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np

from calib.camera import Camera
from viz import geometry as geo
from viz.draw2d import NEAR_MM, draw_annotations, draw_lines, draw_points
from viz.scene import SceneFrame

log = logging.getLogger(__name__)

BACKGROUND_RGB = (0.07, 0.07, 0.09)
BACKENDS = ("auto", "open3d", "software")
SKELETON_WIDTH_PX = 3
STATIC_WIDTH_PX = 1


class RenderError(RuntimeError):
    """A renderer or writer cannot be used; the message says why and how to fix it."""


# --------------------------------------------------------------------------- probing

_PROBE = r"""
import numpy as np, open3d as o3d
vis = o3d.visualization.Visualizer()
assert vis.create_window(visible=False, width=64, height=48), "create_window failed"
ls = o3d.geometry.LineSet(o3d.utility.Vector3dVector(np.array([[-1.0, 0, 0], [1.0, 0, 0]])),
                          o3d.utility.Vector2iVector(np.array([[0, 1]])))
ls.paint_uniform_color([1.0, 1.0, 1.0])
vis.add_geometry(ls)
img = np.asarray(vis.capture_screen_float_buffer(do_render=True))
vis.destroy_window()
assert img.shape == (48, 64, 3) and img.max() > 0.5, f"blank render {img.shape} max {img.max()}"
print("OPEN3D_OK", o3d.__version__)
"""


@functools.lru_cache(maxsize=1)
def probe_open3d(timeout_s: float = 120.0) -> tuple[bool, str]:
    """Can Open3D render headless here? Runs a tiny render in a subprocess (cached per process).

    Returns:
        (ok, reason): reason is the Open3D version when ok, else what failed and the fix.
    """
    import importlib.util

    if importlib.util.find_spec("open3d") is None:
        return False, "open3d is not installed (pip install 'selfpose3d[viz]' or open3d==0.20.0)"
    try:
        out = subprocess.run([sys.executable, "-c", _PROBE], capture_output=True, text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        return False, f"the Open3D render probe hung for {timeout_s:.0f} s"
    if out.returncode == 0 and "OPEN3D_OK" in out.stdout:
        return True, out.stdout.split("OPEN3D_OK", 1)[1].strip()
    tail = (out.stderr or out.stdout).strip().splitlines()[-3:]
    hint = (
        "; missing system libraries? run scripts/install_viz_deps.sh (as root) "
        "or: apt-get install -y libegl1 libgl1 libusb-1.0-0"
    )
    return False, f"Open3D render probe failed (exit {out.returncode}): {' | '.join(tail)}{hint}"


# --------------------------------------------------------------------------- renderers


class SoftwareRenderer:
    """cv2 renderer: exact projection (including lens distortion) of every line and joint."""

    backend = "software"

    def __init__(self, width: int, height: int) -> None:
        self.width, self.height = int(width), int(height)
        # filled once: a broadcast fill of a (H,W,3) array costs ~13 ms at 960x540, a copy ~0.3 ms
        self._background = np.empty((self.height, self.width, 3), np.uint8)
        self._background[:] = geo.to_bgr255(BACKGROUND_RGB)

    def render(self, frame: SceneFrame, camera: Camera) -> np.ndarray:
        """(H,W,3) uint8 BGR picture of ``frame`` seen by ``camera``."""
        image = self._background.copy()
        draw_lines(image, camera, frame.static_lines, STATIC_WIDTH_PX)
        draw_lines(image, camera, frame.skeleton_lines, SKELETON_WIDTH_PX)
        if frame.joints is not None:
            draw_points(image, camera, frame.joints)
        return draw_annotations(image, camera, frame)

    def close(self) -> None:
        pass


class Open3DRenderer:
    """Open3D legacy ``Visualizer`` in a hidden window (EGL offscreen without a display).

    Open3D's view control only reproduces pinhole cameras whose principal point is the window
    centre and whose fx = fy; an off-centre principal point is handled by rendering a larger
    canvas centred on it and cropping (error < 0.5 px). Lens distortion is not rendered.
    """

    backend = "open3d"

    def __init__(self, width: int, height: int, cx_px: float | None = None, cy_px: float | None = None) -> None:
        import open3d as o3d

        self._o3d = o3d
        o3d.utility.set_verbosity_level(o3d.utility.VerbosityLevel.Error)  # empty layers warn every frame
        self.width, self.height = int(width), int(height)
        cx = (width - 1) / 2.0 if cx_px is None else float(cx_px)
        cy = (height - 1) / 2.0 if cy_px is None else float(cy_px)
        self.canvas_w, self.ox = self._canvas(cx, self.width)
        self.canvas_h, self.oy = self._canvas(cy, self.height)
        self.vis = o3d.visualization.Visualizer()
        if not self.vis.create_window(visible=False, width=self.canvas_w, height=self.canvas_h):
            raise RenderError(
                "open3d: could not create an offscreen window; run scripts/install_viz_deps.sh "
                "or use backend 'software'"
            )
        opt = self.vis.get_render_option()
        opt.background_color = np.asarray(BACKGROUND_RGB)
        opt.line_width = float(SKELETON_WIDTH_PX)
        opt.point_size = 5.0
        self._static = o3d.geometry.LineSet()
        self._bones = o3d.geometry.LineSet()
        self._joints = o3d.geometry.PointCloud()
        self._added = False

    @staticmethod
    def _canvas(c: float, size: int) -> tuple[int, int]:
        """Canvas size whose centre ((n-1)/2) sits on principal point c + offset, and the offset."""
        half = max(c + 0.5, size - 0.5 - c)
        n = int(math.ceil(2 * half))
        return n, int(round((n - 1) / 2.0 - c))

    def _fill_lines(self, target, lines: geo.LineSet) -> None:
        o3d = self._o3d
        if len(lines.lines) == 0:  # an empty LineSet confuses the bounding box: park a null line
            target.points = o3d.utility.Vector3dVector(np.zeros((2, 3)))
            target.lines = o3d.utility.Vector2iVector(np.zeros((0, 2), np.int32))
            target.colors = o3d.utility.Vector3dVector(np.zeros((0, 3)))
            return
        target.points = o3d.utility.Vector3dVector(lines.points_w)
        target.lines = o3d.utility.Vector2iVector(lines.lines.astype(np.int32))
        target.colors = o3d.utility.Vector3dVector(lines.colors)

    def _set_camera(self, camera: Camera) -> None:
        o3d = self._o3d
        fy = camera.K[1, 1]
        if abs(camera.K[0, 0] - fy) > 0.01 * fy:
            log.warning(
                "open3d renderer: camera '%s' has fx %.1f != fy %.1f; Open3D uses one focal length",
                camera.name,
                camera.K[0, 0],
                fy,
            )
        K = np.array([[fy, 0.0, (self.canvas_w - 1) / 2.0], [0.0, fy, (self.canvas_h - 1) / 2.0], [0, 0, 1]])
        params = o3d.camera.PinholeCameraParameters()
        params.intrinsic = o3d.camera.PinholeCameraIntrinsic(self.canvas_w, self.canvas_h, K)
        extrinsic = np.eye(4)
        extrinsic[:3, :3], extrinsic[:3, 3] = camera.R, camera.t_mm
        params.extrinsic = extrinsic
        ctrl = self.vis.get_view_control()
        if not ctrl.convert_from_pinhole_camera_parameters(params, allow_arbitrary=True):
            raise RenderError(f"open3d: view control rejected camera '{camera.name}'")
        # Open3D derives near/far from the geometry's bounding box; widen them so nothing is clipped.
        ctrl.set_constant_z_near(NEAR_MM)
        ctrl.set_constant_z_far(1e6)

    def render(self, frame: SceneFrame, camera: Camera) -> np.ndarray:
        """(H,W,3) uint8 BGR picture of ``frame`` seen by ``camera``."""
        o3d = self._o3d
        self._fill_lines(self._static, frame.static_lines)
        self._fill_lines(self._bones, frame.skeleton_lines)
        pts = frame.joints.points_w if frame.joints is not None else np.zeros((0, 3))
        cols = frame.joints.colors if frame.joints is not None else np.zeros((0, 3))
        self._joints.points = o3d.utility.Vector3dVector(pts)
        self._joints.colors = o3d.utility.Vector3dVector(cols)
        if not self._added:
            for g in (self._static, self._bones, self._joints):
                self.vis.add_geometry(g, reset_bounding_box=True)
            self._added = True
        else:
            for g in (self._static, self._bones, self._joints):
                self.vis.update_geometry(g)
        self._set_camera(camera)
        self.vis.poll_events()
        rgb = np.asarray(self.vis.capture_screen_float_buffer(do_render=True))  # (h,w,3) float32 in [0,1]
        if rgb.shape[:2] != (self.height, self.width):
            rgb = np.ascontiguousarray(rgb[self.oy : self.oy + self.height, self.ox : self.ox + self.width])
        # cv2 saturates and rounds: ~4x faster than numpy clip/scale/astype at 960x540
        image = cv2.cvtColor(cv2.convertScaleAbs(rgb, alpha=255.0), cv2.COLOR_RGB2BGR)
        return draw_annotations(image, camera, frame)

    def close(self) -> None:
        self.vis.destroy_window()


def make_renderer(camera: Camera, backend: str = "auto"):
    """A renderer sized for ``camera``.

    Args:
        camera: the virtual view (its size, and for Open3D its principal point).
        backend: ``auto`` (Open3D if it renders here, else software, with a logged reason),
            ``open3d`` (error if unusable) or ``software``.

    Raises:
        RenderError: ``open3d`` was requested and cannot render on this machine.
    """
    if backend not in BACKENDS:
        raise RenderError(f"render backend '{backend}' unknown; choose one of {BACKENDS}")
    if backend == "software":
        return SoftwareRenderer(camera.width, camera.height)
    ok, reason = probe_open3d()
    if ok:
        return Open3DRenderer(camera.width, camera.height, camera.K[0, 2], camera.K[1, 2])
    if backend == "open3d":
        raise RenderError(f"render backend 'open3d' is unusable: {reason}")
    log.warning("Open3D cannot render here (%s); using the software renderer", reason)
    return SoftwareRenderer(camera.width, camera.height)


# --------------------------------------------------------------------------- output


class FrameWriter:
    """Writes BGR frames to a video (``.mp4`` mp4v, ``.avi`` MJPG) or a folder of PNGs.

    Args:
        path: ``out.mp4`` / ``out.avi`` / a folder (created; frames ``frame_000000.png``...).
        fps: video frame rate.
    """

    VIDEO_CODECS = {".mp4": "mp4v", ".avi": "MJPG"}

    def __init__(self, path: str | Path, fps: float = 30.0) -> None:
        self.path = Path(path)
        self.fps = float(fps)
        self.count = 0
        self._video = None
        self._size: tuple[int, int] | None = None
        if self.path.suffix.lower() in (".png", ".jpg"):
            raise RenderError(f"{self.path}: give a folder for image frames or a .mp4/.avi video file")
        if self.path.suffix.lower() not in self.VIDEO_CODECS:
            self.path.mkdir(parents=True, exist_ok=True)

    def write(self, image: np.ndarray) -> None:
        """Append one (H,W,3) uint8 BGR frame (all frames must have the first frame's size)."""
        h, w = image.shape[:2]
        if self._size is None:
            self._size = (w, h)
            codec = self.VIDEO_CODECS.get(self.path.suffix.lower())
            if codec:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._video = cv2.VideoWriter(str(self.path), cv2.VideoWriter_fourcc(*codec), self.fps, (w, h))
                if not self._video.isOpened():
                    raise RenderError(
                        f"{self.path}: OpenCV cannot open a {codec} video writer here; "
                        "write a PNG folder instead (give a directory path)"
                    )
        elif self._size != (w, h):
            raise RenderError(f"{self.path}: frame {self.count} is {w}x{h}, earlier frames {self._size}")
        if self._video is not None:
            self._video.write(np.ascontiguousarray(image))
        elif not cv2.imwrite(str(self.path / f"frame_{self.count:06d}.png"), image):
            raise RenderError(f"{self.path}: cannot write PNG frame {self.count}")
        self.count += 1

    def close(self) -> None:
        if self._video is not None:
            self._video.release()
            self._video = None

    def __enter__(self) -> "FrameWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def render_frames(
    frames: Sequence[SceneFrame], camera: Camera, out_path: str | Path, fps: float = 30.0, backend: str = "auto"
) -> int:
    """Render scene frames through one camera into a video/PNG folder; returns frames written."""
    renderer = make_renderer(camera, backend)
    try:
        with FrameWriter(out_path, fps) as writer:
            for frame in frames:
                writer.write(renderer.render(frame, camera))
            return writer.count
    finally:
        renderer.close()
