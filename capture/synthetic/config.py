"""Typed configuration of the ``selfpose3d synth`` command (YAML: ``configs/synth/*.yaml``)."""

from __future__ import annotations

from dataclasses import dataclass

from calib.configkit import require
from capture.synthetic.detector import DetectorParams
from capture.synthetic.render import RenderOptions


@dataclass(frozen=True)
class RingRigConfig:
    """A generated rig (used when ``rig: ring``); see :func:`capture.synthetic.rigs.ring_rig`."""

    num_cameras: int = 5
    radius_mm: float = 4000.0
    height_mm: float = 2200.0
    target_mm: tuple[float, float, float] = (0.0, -500.0, 900.0)
    width: int = 640
    height: int = 360
    fov_deg: float = 70.0
    distortion: tuple[float, float, float, float, float] = (-0.12, 0.05, 0.0, 0.0, -0.01)
    arc_deg: float = 360.0
    jitter: float = 1.0
    seed: int = 0

    def __post_init__(self) -> None:
        require(self.num_cameras >= 1, "ring.num_cameras", f"must be >= 1, got {self.num_cameras}")
        require(self.radius_mm > 0, "ring.radius_mm", "must be positive (millimetres)")
        require(self.width > 0 and self.height > 0, "ring.width", "image size must be positive")


@dataclass(frozen=True)
class SynthConfig:
    """What ``selfpose3d synth`` generates.

    Attributes:
        rig: a rig YAML (``configs/rig.yaml``), any calibration file ``calib.io`` reads, or
            ``ring`` for a generated rig (``ring`` section).
        image_size: (width, height) to rescale every camera to, or null for the calibrated size.
        people: person slots (1..people present at a time).
        seconds: scene length.
        fps: frame rate.
        seed: world seed.
        entries_exits: people leave and new people enter.
        props: pieces of furniture that occlude people (0 = empty room).
        volume_center_mm, volume_size_mm: capture volume (null: the rig YAML's, else the defaults).
        sequence: Panoptic sequence name of the output.
        media: "images" and/or "video" in the Panoptic tree.
        pseudo_labels: also write simulated-detector labels (soft and hard NPZ).
        detector_seed: seed of the simulated detector.
        render, detector, ring: sub-configs.
    """

    rig: str = "configs/rig.yaml"
    image_size: tuple[int, int] | None = None
    people: int = 3
    seconds: float = 10.0
    fps: float = 15.0
    seed: int = 0
    entries_exits: bool = True
    props: int = 2
    volume_center_mm: tuple[float, float, float] | None = None
    volume_size_mm: tuple[float, float, float] | None = None
    sequence: str = "synth_000"
    media: tuple[str, ...] = ("images", "video")
    pseudo_labels: bool = True
    detector_seed: int = 0
    render: RenderOptions = RenderOptions()
    detector: DetectorParams = DetectorParams()
    ring: RingRigConfig = RingRigConfig()

    def __post_init__(self) -> None:
        require(self.people >= 1, "people", f"must be >= 1, got {self.people}")
        require(0 <= self.props <= 20, "props", f"must be in 0..20, got {self.props}")
        require(self.seconds > 0, "seconds", f"must be positive, got {self.seconds}")
        require(self.fps > 0, "fps", f"must be positive, got {self.fps}")
        bad = [m for m in self.media if m not in ("images", "video")]
        require(not bad, "media", f"unknown media {bad}; use images and/or video")
        require(self.image_size is None or min(self.image_size) > 0, "image_size", "must be positive (width, height)")
        require(bool(self.sequence) and "/" not in self.sequence, "sequence", "must be a plain folder name")

    @property
    def num_frames(self) -> int:
        return max(1, int(round(self.seconds * self.fps)))
