"""The viewer's scene state (pure, no Open3D): latest poses, layers, pause, follow, stream stats.

Both the interactive window and the headless renderer draw a :class:`SceneFrame` built here, so
what the tests check offscreen is what a user sees live.
"""

from __future__ import annotations

import collections
import time
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from calib.camera import CameraRig
from viz import geometry as geo

LAYERS = ("skeletons", "joints", "labels", "frusta", "grid", "volume", "hud")

# key -> (action, help). Digits toggle layers in LAYERS order.
KEY_HELP = {
    "space": "pause / resume",
    "f": "follow the next person (cycles; back to free view after the last)",
    "s": "save a screenshot (PNG)",
    "r": "reset the view",
    **{str(i + 1): f"toggle layer '{name}'" for i, name in enumerate(LAYERS)},
    "q": "quit",
}


@dataclass
class SceneFrame:
    """Everything a renderer draws for one frame.

    Attributes:
        static_lines: grid, volume box and camera frusta (changes only on toggle / missing cameras).
        skeleton_lines: the people's bones.
        joints: joint markers (confidence-shaded) or None when the layer is off.
        labels: per-person labels ('id 3  0.91') anchored in the world.
        hud: text lines for the corner overlay (fps, latency, people, missing cameras, state).
        follow_target_mm: (3,) where a following camera should look, or None.
    """

    static_lines: geo.LineSet
    skeleton_lines: geo.LineSet
    joints: geo.PointSet | None
    labels: list[geo.Label]
    hud: list[str]
    follow_target_mm: np.ndarray | None = None


@dataclass
class StreamStats:
    """Arrival rate, end-to-end latency and sequence gaps of the poses stream."""

    arrivals_ns: collections.deque = field(default_factory=lambda: collections.deque(maxlen=30))
    latency_ms: float = float("nan")
    stage_ms: dict = field(default_factory=dict)
    last_seq: int | None = None
    gaps: int = 0
    received: int = 0

    def add(self, seq: int, t_capture_ns: int, now_ns: int, timings_ms: dict) -> None:
        if self.last_seq is not None and seq > self.last_seq + 1:
            self.gaps += seq - self.last_seq - 1  # drained or dropped: not drawn, counted
        self.last_seq = seq
        self.received += 1
        self.arrivals_ns.append(now_ns)
        self.latency_ms = max(0.0, (now_ns - t_capture_ns) / 1e6)
        self.stage_ms = dict(timings_ms)

    @property
    def fps(self) -> float:
        if len(self.arrivals_ns) < 2:
            return 0.0
        span = self.arrivals_ns[-1] - self.arrivals_ns[0]
        return (len(self.arrivals_ns) - 1) * 1e9 / span if span > 0 else 0.0


class SceneState:
    """Latest poses plus view options; feed it messages, ask it for a :class:`SceneFrame`.

    Args:
        rig: camera rig for the frusta (None: no frusta).
        volume_center_mm, volume_size_mm: the capture volume (box, grid extent).
        root_joint: skeleton root index (followed point), e.g. ``PANOPTIC15.root``.
        min_score: joints below this score are not drawn.
        frustum_depth_mm: drawn depth of the camera pyramids.
        grid_spacing_mm: floor grid pitch.
    """

    def __init__(
        self,
        rig: CameraRig | None,
        volume_center_mm: Sequence[float],
        volume_size_mm: Sequence[float],
        root_joint: int = 2,
        min_score: float = 0.0,
        frustum_depth_mm: float = 500.0,
        grid_spacing_mm: float = 1000.0,
    ) -> None:
        self.rig = rig
        self.volume_center_mm = np.asarray(volume_center_mm, dtype=np.float64).reshape(3)
        self.volume_size_mm = np.asarray(volume_size_mm, dtype=np.float64).reshape(3)
        self.root_joint = int(root_joint)
        self.min_score = float(min_score)
        self.frustum_depth_mm = float(frustum_depth_mm)
        self.grid_spacing_mm = float(grid_spacing_mm)
        self.layers = {name: True for name in LAYERS}
        self.paused = False
        self.follow_id: int | None = None
        self.stats = StreamStats()
        self.poses = np.zeros((0, 15, 4), np.float32)  # (P,J,4)
        self.edges: tuple[tuple[int, int], ...] = ()
        self.track_ids = np.zeros(0, np.int64)
        self.missing_by_process: dict[str, tuple[str, ...]] = {}
        self.states: dict[str, str] = {}
        self.mpjpe_mm: float | None = None  # error vs truth, when the producer knows it (synthetic)
        self._static_key = None
        self._static = geo.LineSet.empty()

    # ------------------------------------------------------------------ inputs

    def update_poses(self, msg, now_ns: int | None = None) -> bool:
        """Take a decoded ``capture.messages.Poses``; returns False (ignored) while paused."""
        now_ns = time.time_ns() if now_ns is None else now_ns
        self.stats.add(msg.seq, msg.t_capture_ns, now_ns, dict(msg.timings_ms))
        if self.paused:
            return False
        extra = getattr(msg, "extra", None) or {}
        missing = extra.get("missing")
        if isinstance(missing, list) and all(isinstance(c, str) for c in missing):
            self.missing_by_process["frameset"] = tuple(missing)  # the worker lists absent views
        err = extra.get("mpjpe_mm")
        self.mpjpe_mm = float(err) if isinstance(err, (int, float)) else None
        self.poses = np.array(msg.poses, dtype=np.float32, copy=True)
        self.edges = tuple(msg.edges)
        self.track_ids = np.asarray(msg.track_ids, dtype=np.int64).copy()
        return True

    def update_status(self, msg) -> None:
        """Take a decoded ``capture.messages.Status`` (missing cameras, process state)."""
        self.missing_by_process[msg.process] = tuple(msg.missing)
        self.states[msg.process] = msg.state + (f": {msg.error}" if msg.error else "")

    @property
    def missing_cameras(self) -> list[str]:
        return sorted({c for names in self.missing_by_process.values() for c in names})

    # ------------------------------------------------------------------ controls

    def toggle(self, layer: str) -> bool:
        """Flip a layer on/off; returns its new state."""
        if layer not in self.layers:
            raise ValueError(f"unknown layer '{layer}'; layers: {list(LAYERS)}")
        self.layers[layer] = not self.layers[layer]
        return self.layers[layer]

    def toggle_pause(self) -> bool:
        self.paused = not self.paused
        return self.paused

    def follow_next(self) -> int | None:
        """Follow the next visible track id (ascending), then back to free view (None)."""
        ids = sorted(int(t) for t in self.track_ids if t >= 0)
        if not ids:
            self.follow_id = None
        elif self.follow_id is None:
            self.follow_id = ids[0]
        else:
            later = [t for t in ids if t > self.follow_id]
            self.follow_id = later[0] if later else None
        return self.follow_id

    def handle_key(self, key: str) -> str:
        """Apply a key from :data:`KEY_HELP` that changes the scene; returns what it did.

        'Screenshot', 'reset' and 'quit' are the window's business: they are returned as actions.
        """
        key = key.lower()
        if key == "space":
            return "paused" if self.toggle_pause() else "resumed"
        if key == "f":
            fid = self.follow_next()
            return f"following id {fid}" if fid is not None else "free view"
        if key.isdigit() and 1 <= int(key) <= len(LAYERS):
            name = LAYERS[int(key) - 1]
            return f"{name} {'on' if self.toggle(name) else 'off'}"
        return {"s": "screenshot", "r": "reset", "q": "quit"}.get(key, "")

    # ------------------------------------------------------------------ output

    def static_lines(self) -> geo.LineSet:
        """Grid + volume + frusta for the current layers and missing cameras (cached)."""
        key = (self.layers["grid"], self.layers["volume"], self.layers["frusta"], tuple(self.missing_cameras))
        if key != self._static_key:
            parts = []
            c, s = self.volume_center_mm, self.volume_size_mm
            if self.layers["grid"]:
                parts.append(geo.floor_grid(c[:2], s[:2], self.grid_spacing_mm, z_mm=0.0))
            if self.layers["volume"]:
                parts.append(geo.box_lines(c, s))
            if self.layers["frusta"] and self.rig is not None:
                parts.append(geo.rig_frusta(self.rig, self.frustum_depth_mm, self.missing_cameras))
            self._static, self._static_key = geo.merge(parts), key
        return self._static

    def follow_target_mm(self) -> np.ndarray | None:
        if self.follow_id is None:
            return None
        hits = np.nonzero(self.track_ids == self.follow_id)[0]
        if len(hits) == 0:
            return None
        return geo.root_position_mm(self.poses, int(hits[0]), self.root_joint, self.min_score)

    def hud_lines(self, now_ns: int | None = None) -> list[str]:
        now_ns = time.time_ns() if now_ns is None else now_ns
        st = self.stats
        lines = [f"{st.fps:5.1f} fps   latency {st.latency_ms:6.1f} ms   people {len(self.poses)}"]
        if st.stage_ms:  # the slowest stages first, wrapped so the HUD stays narrow
            parts = [f"{k} {v:.1f}" for k, v in sorted(st.stage_ms.items(), key=lambda kv: -kv[1])[:6]]
            for i in range(0, len(parts), 3):
                lines.append("  ".join(parts[i : i + 3]) + (" ms" if i + 3 >= len(parts) else ""))
        if self.mpjpe_mm is not None:
            lines.append(f"MPJPE vs truth {self.mpjpe_mm:.1f} mm")
        if st.arrivals_ns and now_ns - st.arrivals_ns[-1] > 2e9:
            lines.append(f"no poses for {(now_ns - st.arrivals_ns[-1]) / 1e9:.0f} s")
        if not st.arrivals_ns:
            lines.append("waiting for poses...")
        if self.missing_cameras:
            lines.append("missing cameras: " + ", ".join(self.missing_cameras))
        if st.gaps:
            lines.append(f"skipped {st.gaps} older messages (drained to newest)")
        bad = [f"{p} {s}" for p, s in sorted(self.states.items()) if not s.startswith(("running", "ready"))]
        if bad:
            lines.append("; ".join(bad))
        if self.paused:
            lines.append("PAUSED (space)")
        if self.follow_id is not None:
            lines.append(f"following id {self.follow_id} (f)")
        return lines

    def frame(self, now_ns: int | None = None) -> SceneFrame:
        """The drawable state now."""
        show = self.layers
        bones = (
            geo.skeleton_lines(self.poses, self.edges, self.track_ids, self.min_score)
            if show["skeletons"]
            else geo.LineSet.empty()
        )
        joints = geo.joint_points(self.poses, self.track_ids, self.min_score) if show["joints"] else None
        labels = geo.person_labels(self.poses, self.track_ids, self.min_score) if show["labels"] else []
        hud = self.hud_lines(now_ns) if show["hud"] else []
        return SceneFrame(self.static_lines(), bones, joints, labels, hud, self.follow_target_mm())
