"""What a viewer draws from: message feeds (the live bus, the synthetic truth) and the view setup.

Both the headless renderer (:mod:`viz.live`) and the window (:mod:`viz.window`) receive a
:class:`Feed` and a :class:`ViewSetup`; neither imports the other's module.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Protocol, Sequence

import numpy as np

from calib.camera import Camera, CameraRig
from calib.common.skeleton import PANOPTIC15
from capture.messages import Poses, Status, now_ns
from viz import geometry as geo
from viz.scene import SceneState

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
            rig=self.rig_name,
            seq=frame_index,
            frameset_seq=frame_index,
            t_capture_ns=t,
            t_publish_ns=t,
            skeleton_name=PANOPTIC15.name,
            joints=PANOPTIC15.joints,
            edges=PANOPTIC15.edges,
            poses=poses,
            track_ids=np.asarray(people.ids[pres], dtype=np.int64),
            extra={"source": "synthetic truth"},
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
    def from_rig(
        cls,
        rig: CameraRig | None,
        volume_center_mm,
        volume_size_mm,
        width: int = 960,
        height: int = 540,
        azimuth_deg: float = -60.0,
        elevation_deg: float = 30.0,
    ) -> "ViewSetup":
        radius = None
        if rig is not None:  # frame the cameras (where people are seen), not a possibly huge volume
            radius = min(geo.rig_radius_mm(rig, volume_center_mm), 0.5 * float(np.linalg.norm(volume_size_mm[:2])))
        cam = geo.overview_camera(volume_center_mm, volume_size_mm, width, height, azimuth_deg, elevation_deg, radius)
        return cls(rig, np.asarray(volume_center_mm, float), np.asarray(volume_size_mm, float), cam)

    def scene(self, min_score: float = 0.0) -> SceneState:
        return SceneState(
            self.rig, self.volume_center_mm, self.volume_size_mm, root_joint=PANOPTIC15.root, min_score=min_score
        )


def view_camera(base: Camera, target_mm: np.ndarray | None) -> Camera:
    """The base view, or the follow view when a followed person is visible."""
    return base if target_mm is None else geo.follow_camera(base, target_mm, FOLLOW_DISTANCE_MM)
