"""SyntheticWorld: the facade over motion, rendering, ground truth and the simulated detector.

Frame ``k`` has timestamp ``k / fps``; everything is a pure function of (seed, k), so frames can
be requested in any order and from several consumers.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from calib.camera import CalibrationError, CameraRig
from calib.projection import project_points
from capture.synthetic.body import Body
from capture.synthetic.motion import MotionModel, MotionSettings
from capture.synthetic.render import PROP_SLOT, Appearance, Renderer, RenderOptions, appearance_for, sample_props


@dataclass(frozen=True)
class PeopleFrame:
    """The people of one frame; P = number of person slots (absent slots included).

    Attributes:
        frame_index: k.
        t_s: timestamp k / fps in seconds.
        ids: (P,) int64 person ids (a slot gets a new id when a new person enters).
        joints_mm: (P,15,3) world joints, z up, mm, Panoptic-15 order; NaN for absent slots.
        present: (P,) bool, the person is in the world (may still be outside every view).
        in_volume: (P,) bool, present with the root (mid-hip) inside the capture volume's box
            (people walking in or out are present but outside it).
    """

    frame_index: int
    t_s: float
    ids: np.ndarray
    joints_mm: np.ndarray
    present: np.ndarray
    in_volume: np.ndarray


@dataclass(frozen=True)
class FrameTruth:
    """Exact ground truth of one frame in all V views.

    Attributes:
        ids, joints_mm, present: as in :class:`PeopleFrame`.
        joints_2d: (V,P,15,2) projections in px (with distortion; NaN for absent slots).
        depth_mm: (V,P,15) camera-frame depth (NaN for absent slots).
        in_image: (V,P,15) bool, in front of the camera and inside the image.
        visible: (V,P,15) bool, in_image and not hidden by another person (z-buffer).
        occluder: (V,P,15) int, slot of the person hiding the joint, -1 if none (or furniture).
    """

    frame_index: int
    t_s: float
    ids: np.ndarray
    joints_mm: np.ndarray
    present: np.ndarray
    joints_2d: np.ndarray
    depth_mm: np.ndarray
    in_image: np.ndarray
    visible: np.ndarray
    occluder: np.ndarray


class SyntheticWorld:
    """A seeded multi-person scene seen by a camera rig.

    Results depend only on (seed, frame index), whatever the call order. The world caches
    simulation chunks and recent frames, so it is not thread-safe: serialise calls (the capture
    source holds a lock). It pickles (DataLoader workers get their own copy).

    Args:
        rig: any calibrated rig (images come at each camera's resolution; see
            :func:`capture.synthetic.rigs.scale_rig` for other sizes).
        num_people: number of person slots P (people present at a time: 1..P).
        seed: random seed; the same seed gives the same world at any fps.
        fps: frame rate (frame k at k / fps seconds).
        volume_center_mm: (3,) centre of the capture volume (z is its mid height).
        volume_size_mm: (3,) extent of the capture volume.
        walk_radius_mm: radius of the area people walk in, centred on the volume centre; by
            default the smaller of the volume's half width minus 0.5 m and 0.65 x the median
            horizontal camera distance (so people stay where the cameras look).
        entries_exits: people leave and new people enter over time.
        min_separation_mm: pelvis distance kept between people.
        camera_clearance_mm: people keep this far (horizontally) from every camera below 2.8 m
            (tripods); half of it from cameras mounted higher (people may pass under them).
        num_props: pieces of furniture (boxes: tables, cabinets, crates) around the edge of the
            walk area; they occlude people (joints behind them are not visible) and people walk
            around them.
        render_options: rendering switches.
    """

    def __init__(
        self,
        rig: CameraRig,
        *,
        num_people: int,
        seed: int,
        fps: float,
        volume_center_mm: Sequence[float] = (0.0, -500.0, 800.0),
        volume_size_mm: Sequence[float] = (8000.0, 8000.0, 2000.0),
        walk_radius_mm: float | None = None,
        entries_exits: bool = True,
        min_separation_mm: float = 650.0,
        camera_clearance_mm: float = 900.0,
        num_props: int = 0,
        render_options: RenderOptions | None = None,
    ) -> None:
        if fps <= 0:
            raise ValueError(f"SyntheticWorld: fps must be positive, got {fps}")
        if len(rig) < 1:
            raise CalibrationError("SyntheticWorld: the rig has no cameras")
        self.rig = rig
        self.num_people = int(num_people)
        self.seed = int(seed)
        self.fps = float(fps)
        self.volume_center_mm = np.asarray(volume_center_mm, dtype=np.float64)
        self.volume_size_mm = np.asarray(volume_size_mm, dtype=np.float64)
        if walk_radius_mm is None:
            horiz = np.linalg.norm(rig.centers_mm[:, :2] - self.volume_center_mm[:2], axis=-1)
            walk_radius_mm = min(0.5 * self.volume_size_mm[:2].min() - 500.0, 0.65 * float(np.median(horiz)))
            walk_radius_mm = max(walk_radius_mm, 600.0)
        self.walk_radius_mm = float(walk_radius_mm)
        cameras_xy = [tuple(c[:2]) for c in rig.centers_mm]
        self.props = sample_props(
            int(num_props), self.seed, self.volume_center_mm, self.walk_radius_mm, cameras_xy, camera_clearance_mm
        )
        self.motion = MotionModel(
            MotionSettings(
                num_people=self.num_people,
                walk_center_mm=(float(self.volume_center_mm[0]), float(self.volume_center_mm[1])),
                walk_radius_mm=self.walk_radius_mm,
                entries_exits=entries_exits,
                min_separation_mm=min_separation_mm,
                obstacles_mm=tuple((float(c[0]), float(c[1])) for c in cameras_xy)
                + tuple(p.center_mm for p in self.props),
                obstacle_clearance_mm=camera_clearance_mm,
                obstacle_radii_mm=tuple(camera_clearance_mm * (1.0 if c[2] < 2800.0 else 0.5) for c in rig.centers_mm)
                + tuple(p.footprint_radius_mm + 350.0 for p in self.props),
            ),
            seed=self.seed,
        )
        self.render_options = render_options or RenderOptions()
        self._renderer: Renderer | None = None
        # The last frames' people and scenes: sources render one view per call, labels and
        # detections reuse the frame (the cache makes V calls cost one frame's motion + layout).
        self._frame_cache: OrderedDict[int, tuple[PeopleFrame, object]] = OrderedDict()

    # ------------------------------------------------------------------ basics
    @property
    def num_views(self) -> int:
        return len(self.rig)

    def timestamp_s(self, frame_index: int) -> float:
        """Time of frame k in seconds."""
        return frame_index / self.fps

    def timestamp_ns(self, frame_index: int) -> int:
        """Time of frame k in integer nanoseconds."""
        return int(round(frame_index * 1e9 / self.fps))

    def body(self, person_id: int) -> Body:
        """Body (bone lengths) of a person id that has appeared so far."""
        return self.motion.body(person_id)

    def appearance(self, person_id: int) -> Appearance:
        """Clothing and skin colours of a person id."""
        return appearance_for(person_id, self.seed)

    @property
    def renderer(self) -> Renderer:
        if self._renderer is None:  # built lazily: the background ray casting costs ~0.1 s per view
            self._renderer = Renderer(self.rig, self.volume_center_mm, self.render_options, self.seed, self.props)
        return self._renderer

    # ------------------------------------------------------------------ API
    def people(self, frame_index: int) -> PeopleFrame:
        """3D people of frame k (see :class:`PeopleFrame`)."""
        if frame_index < 0:
            raise ValueError(f"SyntheticWorld.people: frame_index must be >= 0, got {frame_index}")
        t = self.timestamp_s(frame_index)
        ids, present, joints = self.motion.joints_at(t)
        lo = self.volume_center_mm - self.volume_size_mm / 2
        hi = self.volume_center_mm + self.volume_size_mm / 2
        root = np.nan_to_num(joints[:, 2], nan=np.inf)
        in_volume = present & np.all((root >= lo) & (root <= hi), axis=-1)
        for a in (ids, present, joints, in_volume):
            a.setflags(write=False)  # frames are cached and shared between consumers
        return PeopleFrame(int(frame_index), t, ids, joints, present, in_volume)

    def people_if_cheap(self, frame_index: int, max_new_chunks: int = 1) -> PeopleFrame | None:
        """:meth:`people`, or None when frame k lies beyond what at most ``max_new_chunks``
        more simulation chunks reach (those chunks are simulated: repeated calls get there).
        Cost is bounded whatever ``frame_index`` is (for a consumer of untrusted frame numbers)."""
        if frame_index < 0 or not self.motion.advance(self.timestamp_s(frame_index), max_new_chunks):
            return None
        return self.people(frame_index)

    def _frame(self, frame_index: int) -> tuple[PeopleFrame, object]:
        """(people, render scene) of frame k, cached for the last few frames."""
        hit = self._frame_cache.get(frame_index)
        if hit is None:
            frame = self.people(frame_index)
            hit = (frame, self.renderer.scene(self._render_people(frame)))
            self._frame_cache[frame_index] = hit
            while len(self._frame_cache) > 4:
                self._frame_cache.popitem(last=False)
        return hit

    def _render_people(self, frame: PeopleFrame) -> list:
        return [
            (int(p), frame.joints_mm[p], self.body(int(frame.ids[p])), self.appearance(int(frame.ids[p])))
            for p in np.flatnonzero(frame.present)
        ]

    def _views(self, views: Sequence[int] | None) -> list[int]:
        if views is None:
            return list(range(self.num_views))
        bad = [v for v in views if not 0 <= v < self.num_views]
        if bad:
            raise IndexError(f"SyntheticWorld: view indices {bad} out of range for a rig of {self.num_views} cameras")
        return list(views)

    def render(self, frame_index: int, views: Sequence[int] | None = None) -> list[np.ndarray]:
        """BGR uint8 images (H,W,3) of frame k, one per requested view (default: all)."""
        frame, scene = self._frame(frame_index)
        return [self.renderer.render(v, scene, frame.t_s, frame_index)[0] for v in self._views(views)]

    def render_with_labels(self, frame_index: int, views: Sequence[int] | None = None) -> tuple[list, list]:
        """(images, label images): labels (H,W) uint8 hold the slot + 1 of the visible person."""
        frame, scene = self._frame(frame_index)
        out = [self.renderer.render(v, scene, frame.t_s, frame_index, with_label=True) for v in self._views(views)]
        return [o[0] for o in out], [o[1] for o in out]

    def truth(self, frame_index: int, labels: Sequence[np.ndarray] | None = None) -> FrameTruth:
        """Exact 3D/2D truth with visibility of frame k in all views.

        Args:
            frame_index: k.
            labels: optional label images from :meth:`render_with_labels` (else drawn here).
        """
        frame, scene = self._frame(frame_index)
        V, P = self.num_views, len(frame.ids)
        j2d = np.full((V, P, 15, 2), np.nan)
        depth = np.full((V, P, 15), np.nan)
        in_image = np.zeros((V, P, 15), bool)
        visible = np.zeros((V, P, 15), bool)
        occluder = np.full((V, P, 15), -1, np.int64)
        near = self.render_options.near_mm
        pres = np.flatnonzero(frame.present)
        for v, cam in enumerate(self.rig):
            if len(pres) == 0:
                continue
            pts = frame.joints_mm[pres]
            uv = project_points(pts, cam)
            z = pts @ cam.R[2] + cam.t_mm[2]
            j2d[v, pres], depth[v, pres] = uv, z
            inside = (
                (z > near)
                & (uv[..., 0] >= 0)
                & (uv[..., 0] <= cam.width - 1)
                & (uv[..., 1] >= 0)
                & (uv[..., 1] <= cam.height - 1)
            )
            in_image[v, pres] = inside
            label = labels[v] if labels is not None else self.renderer.label_image(v, scene)
            # joints behind the camera project to NaN: any pixel will do, ``inside`` is False there
            px = np.clip(
                np.round(np.nan_to_num(uv, nan=-1.0, posinf=-1.0, neginf=-1.0)).astype(np.int64),
                0,
                [cam.width - 1, cam.height - 1],
            )
            lab = label[px[..., 1], px[..., 0]].astype(np.int64) - 1  # (P',15) slot, PROP_SLOT or -1
            own = lab == pres[:, None]
            visible[v, pres] = inside & own
            occluder[v, pres] = np.where(inside & ~own & (lab >= 0) & (lab != PROP_SLOT), lab, -1)
        return FrameTruth(
            frame.frame_index,
            frame.t_s,
            frame.ids,
            frame.joints_mm,
            frame.present,
            j2d,
            depth,
            in_image,
            visible,
            occluder,
        )

    def detect(
        self, frame_index: int, params=None, rng_seed: int = 0, variant: str = "soft", truth: FrameTruth | None = None
    ):
        """Simulated off-the-shelf 2D detector output of frame k, per view.

        Args:
            frame_index: k.
            params: :class:`capture.synthetic.detector.DetectorParams` (default settings if None).
            rng_seed: seed of the detector's randomness (soft and hard share it).
            variant: "soft" (raw joints and scores) or "hard" (SPEC §4.7 thresholding).
            truth: the frame's :meth:`truth`, if already computed.
        Returns:
            list over views of :class:`capture.synthetic.detector.Detections`.
        """
        from capture.synthetic.detector import DetectorParams, simulate_detections

        truth = truth if truth is not None else self.truth(frame_index)
        params = params if params is not None else DetectorParams()
        return simulate_detections(truth, self.rig, params, seed=(self.seed, rng_seed, frame_index), variant=variant)


def world_for_rig(rig, **options) -> SyntheticWorld:
    """The synthetic world a rig YAML describes (its ``synthetic`` section and volume); every
    consumer (sources, live truth, viewers) builds it here so they all see the same people.

    Args:
        rig: a loaded :class:`calib.rig_config.Rig`.
        options: further :class:`SyntheticWorld` keyword arguments (e.g. ``render_options``).
    """
    spec = rig.config.synthetic
    return SyntheticWorld(
        rig.cameras,
        num_people=spec.people,
        seed=spec.seed,
        fps=spec.fps,
        volume_center_mm=rig.volume.center_mm,
        volume_size_mm=rig.volume.size_mm,
        **options,
    )
