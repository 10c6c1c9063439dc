"""CMU Panoptic Studio: 3D body GT files, sequences, HD cameras and frame sampling (SPEC.md §4.2–§4.5).

Folder layout of one sequence (the panoptic-toolbox layout)::

    <root>/<seq>/calibration_<seq>.json
    <root>/<seq>/hdPose3d_stage1_coco19/body3DScene_<8-digit frame>.json
    <root>/<seq>/hdImgs/00_XX/00_XX_<8-digit frame>.jpg     (extracted frames), or
    <root>/<seq>/hdVideos/hd_00_XX.mp4                       (frame n = video frame n)

GT 3D poses are read for evaluation (and as the frame index) only; training uses pseudo 2D labels.
World frame: millimetres, z up (``calib.io_panoptic.panoptic_cm_to_world_mm``).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from calib.camera import CameraRig
from calib.io_panoptic import VOXELPOSE_HD_CAMERAS, load_panoptic_calibration, panoptic_cm_to_world_mm
from calib.common.skeleton import PANOPTIC15
from training.errors import DatasetError

NUM_JOINTS = PANOPTIC15.num_joints  # 15: the first 15 of Panoptic's coco19 joints
ROOT_JOINT = PANOPTIC15.root  # 2 = mid-hip ("BodyCenter")
VISIBILITY_THRESHOLD = 0.1  # a joint is visible iff conf > 0.1
HD_CAMERAS: tuple[str, ...] = VOXELPOSE_HD_CAMERAS  # (0,3) (0,6) (0,12) (0,13) (0,23), file order

TRAIN_SEQUENCES: tuple[str, ...] = (
    "160422_ultimatum1",
    "160224_haggling1",
    "160226_haggling1",
    "161202_haggling1",
    "160906_ian1",
    "160906_ian2",
    "160906_ian3",
    "160906_band1",
    "160906_band2",
)
VALIDATION_SEQUENCES: tuple[str, ...] = ("160906_pizza1", "160422_haggling1", "160906_ian5", "160906_band4")
TRAIN_INTERVAL = 3  # every 3rd body file
VALIDATION_INTERVAL = 12  # every 12th body file
SPLITS = {"train": (TRAIN_SEQUENCES, TRAIN_INTERVAL), "validation": (VALIDATION_SEQUENCES, VALIDATION_INTERVAL)}

BODY_DIR = "hdPose3d_stage1_coco19"
_BODY_FILE = re.compile(r"^body3DScene_(\d+)\.json$")


@dataclass(frozen=True, eq=False)
class PanopticBody:
    """One GT person of one frame.

    Attributes:
        id: Panoptic body id (stable within a sequence).
        joints_mm: (15,3) world mm, z up.
        visible: (15,) bool, Panoptic confidence > 0.1.
    """

    id: int
    joints_mm: np.ndarray
    visible: np.ndarray

    @property
    def root_mm(self) -> np.ndarray:
        """(3,) mid-hip position in world mm."""
        return self.joints_mm[ROOT_JOINT]


def read_body3d_scene(path: str | Path) -> list[PanopticBody]:
    """Read one ``body3DScene_<frame>.json`` (SPEC.md §4.2).

    Only the first 15 of the 19 joints are kept; bodies whose root (joint 2) is not visible are
    dropped.

    Raises:
        DatasetError: unreadable JSON or a malformed ``bodies`` entry (names file and body).
    """
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise DatasetError(f"{path}: cannot read Panoptic body file ({exc})") from None
    bodies_in = data.get("bodies") if isinstance(data, dict) else None
    if not isinstance(bodies_in, list):
        raise DatasetError(f"{path}: field 'bodies' must be a list (is this a body3DScene file?)")
    bodies = []
    for i, body in enumerate(bodies_in):
        try:
            joints = np.asarray(body["joints19"], dtype=np.float64).reshape(-1, 4)
            body_id = int(body["id"])
        except (KeyError, TypeError, ValueError) as exc:
            raise DatasetError(f"{path}: body #{i} needs 'id' and 'joints19' (19 x [x,y,z,conf] cm): {exc}") from None
        if joints.shape[0] < NUM_JOINTS:
            raise DatasetError(f"{path}: body #{i} has {joints.shape[0]} joints, need at least {NUM_JOINTS}")
        joints = joints[:NUM_JOINTS]
        visible = joints[:, 3] > VISIBILITY_THRESHOLD
        if not visible[ROOT_JOINT]:
            continue
        bodies.append(PanopticBody(body_id, panoptic_cm_to_world_mm(joints[:, :3]), visible))
    return bodies


def body_file_frame(path: str | Path) -> int:
    """HD frame number of ``body3DScene_<8 digits>.json``."""
    match = _BODY_FILE.match(Path(path).name)
    if not match:
        raise DatasetError(f"{path}: not a Panoptic body file name (expected body3DScene_<8 digits>.json)")
    return int(match.group(1))


@dataclass(frozen=True)
class PanopticFrame:
    """One sampled frame of a sequence (the unit of a training/validation sample).

    Attributes:
        sequence: sequence name, e.g. ``"160906_band1"``.
        frame: HD frame number.
        body_file: path of its GT file.
        bodies: GT persons with a visible root (never empty in a sampled index).
    """

    sequence: str
    frame: int
    body_file: Path
    bodies: tuple[PanopticBody, ...]

    def gt_arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """GT as arrays: joints (N,15,3) mm and visible (N,15) bool."""
        joints = np.stack([b.joints_mm for b in self.bodies]) if self.bodies else np.zeros((0, NUM_JOINTS, 3))
        vis = np.stack([b.visible for b in self.bodies]) if self.bodies else np.zeros((0, NUM_JOINTS), bool)
        return joints, vis


class PanopticSequence:
    """One Panoptic sequence folder: its body files, cameras and image/video paths."""

    def __init__(self, sequence_dir: str | Path, camera_names: Sequence[str] = HD_CAMERAS) -> None:
        """Args:
        sequence_dir: ``<root>/<seq>``.
        camera_names: Panoptic HD camera names in view order (default: the 5 VoxelPose cameras).
        """
        self.dir = Path(sequence_dir)
        self.name = self.dir.name
        self.camera_names = tuple(camera_names)
        self._videos: dict[str, tuple[object, int]] = {}  # camera -> (cv2.VideoCapture, next frame)
        if not self.dir.is_dir():
            raise DatasetError(f"{self.dir}: Panoptic sequence folder not found (expected <root>/{self.name})")

    @property
    def calibration_path(self) -> Path:
        return self.dir / f"calibration_{self.name}.json"

    def load_rig(self) -> CameraRig:
        """The sequence's cameras (``camera_names`` order) in world mm, z up."""
        if not self.calibration_path.is_file():
            raise DatasetError(f"{self.calibration_path}: calibration file missing for sequence {self.name}")
        return load_panoptic_calibration(self.calibration_path, self.camera_names)

    def body_files(self) -> list[Path]:
        """Sorted ``body3DScene_*.json`` files (empty list when the GT folder is absent)."""
        folder = self.dir / BODY_DIR
        return sorted(p for p in folder.glob("body3DScene_*.json") if _BODY_FILE.match(p.name))

    def image_path(self, camera: str, frame: int) -> Path:
        """``hdImgs/00_XX/00_XX_<frame>.jpg`` (may not exist: see :meth:`video_path`)."""
        return self.dir / "hdImgs" / camera / f"{camera}_{frame:08d}.jpg"

    def video_path(self, camera: str) -> Path:
        """``hdVideos/hd_00_XX.mp4``; HD frame ``n`` is video frame ``n``."""
        return self.dir / "hdVideos" / f"hd_{camera}.mp4"

    def read_image(self, camera: str, frame: int) -> np.ndarray:
        """RGB uint8 (H,W,3) of an HD frame, from ``hdImgs`` if extracted, else from ``hdVideos``.

        Videos are read sequentially when frames are requested in increasing order (one open
        capture per camera); other requests seek.
        """
        import cv2

        path = self.image_path(camera, frame)
        if path.is_file():
            bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
            if bgr is None:
                raise DatasetError(f"{path}: cannot decode image")
            return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        video = self.video_path(camera)
        if not video.is_file():
            raise DatasetError(
                f"{path}: image missing and no video {video.name} in hdVideos (extract frames or add the video)"
            )
        cap, next_frame = self._videos.get(camera, (None, -1))
        if cap is None:
            cap = cv2.VideoCapture(str(video))
            if not cap.isOpened():
                raise DatasetError(f"{video}: cannot open video")
            next_frame = 0
        if frame != next_frame:
            cap.set(cv2.CAP_PROP_POS_FRAMES, frame)
        ok, bgr = cap.read()
        self._videos[camera] = (cap, frame + 1)
        if not ok:
            raise DatasetError(f"{video}: cannot read frame {frame} (video too short?)")
        return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)

    def close(self) -> None:
        """Release open video captures."""
        for cap, _ in self._videos.values():
            cap.release()
        self._videos.clear()

    def frames(self, interval: int = 1) -> Iterator[PanopticFrame]:
        """Sample every ``interval``-th body file (index % interval == 0), skipping frames without
        any body whose root is visible (SPEC.md §4.5)."""
        if interval < 1:
            raise DatasetError(f"sequence {self.name}: interval must be >= 1, got {interval}")
        for i, path in enumerate(self.body_files()):
            if i % interval:
                continue
            bodies = read_body3d_scene(path)
            if bodies:
                yield PanopticFrame(self.name, body_file_frame(path), path, tuple(bodies))


def split_sequences(split: str) -> tuple[tuple[str, ...], int]:
    """(sequence names, sampling interval) of ``"train"`` or ``"validation"``."""
    if split not in SPLITS:
        raise DatasetError(f"unknown Panoptic split '{split}'; choose one of {sorted(SPLITS)}")
    return SPLITS[split]


def index_frames(
    root: str | Path,
    split: str = "validation",
    sequences: Sequence[str] | None = None,
    interval: int | None = None,
    require_all: bool = True,
) -> list[PanopticFrame]:
    """Sampled frames of a split, in sequence-list order then frame order.

    Args:
        root: folder holding the sequence folders (panoptic-toolbox ``data/``).
        split: ``"train"`` (every 3rd body file) or ``"validation"`` (every 12th).
        sequences: override the split's sequence list.
        interval: override the split's interval.
        require_all: raise if a listed sequence is missing (else skip it).
    """
    names, default_interval = split_sequences(split)
    names = tuple(sequences) if sequences is not None else names
    root = Path(root)
    frames: list[PanopticFrame] = []
    for name in names:
        if not (root / name).is_dir():
            if require_all:
                raise DatasetError(
                    f"{root / name}: Panoptic sequence '{name}' of split '{split}' is missing; "
                    "download it with panoptic-toolbox or pass the sequences you have"
                )
            continue
        frames.extend(PanopticSequence(root / name).frames(interval or default_interval))
    return frames


def read_gt_pickle(path: str | Path) -> list[PanopticFrame]:
    """GT frames from a VoxelPose-format database pickle (e.g. ``group_validation_cam5_sub.pkl``).

    Each db entry is one (frame, camera) with ``key`` ``<seq>_00_XX_<frame>``, ``joints_3d`` (list of
    (15,3) mm, world z up) and ``joints_3d_vis``; the 3D GT repeats per camera, so the first entry of
    each frame is used. Body ids are the person's position in the entry. Persons without a visible
    root are dropped, frames without persons skipped (as for the JSON files).
    """
    from training.datasets.db_pickle import read_db_pickle, split_db_key

    path = Path(path)
    seen: dict[tuple[str, int], PanopticFrame] = {}
    for i, item in enumerate(read_db_pickle(path)["db"]):
        where = f"{path}: db entry #{i}"
        if not isinstance(item, dict) or "key" not in item or "joints_3d" not in item:
            raise DatasetError(
                f"{where}: a GT pickle entry needs 'key' and 'joints_3d' (is this a pseudo-label pickle?)"
            )
        seq, frame, _ = split_db_key(item["key"], where)
        if (seq, frame) in seen:
            continue
        vis_in = item.get("joints_3d_vis")
        if vis_in is None:
            vis_in = [np.ones((NUM_JOINTS, 3))] * len(item["joints_3d"])
        bodies = []
        for b, (joints, vis) in enumerate(zip(item["joints_3d"], vis_in)):
            joints = np.asarray(joints, dtype=np.float64).reshape(-1, 3)[:NUM_JOINTS]
            visible = np.asarray(vis).reshape(NUM_JOINTS, -1)[:, 0] > 0
            if visible[ROOT_JOINT]:
                bodies.append(PanopticBody(b, joints, visible))
        seen[(seq, frame)] = PanopticFrame(seq, frame, path, tuple(bodies))
    return [f for f in seen.values() if f.bodies]
