"""Shelf and Campus (VoxelPose layout), one parser parameterised by :class:`VoxelPoseDatasetSpec`.

Folder layout (as distributed for VoxelPose)::

    <root>/calibration_{shelf,campus}.json     VoxelPose camera JSON (R, T centre mm, fx.., k, p)
    <root>/actorsGT.mat                        actor3D: per actor, per frame a 14×3 array in metres
    <root>/Camera{k}/img_{frame:06d}.png       Shelf
    <root>/Camera{k}/campus4-c{k}-{frame:05d}.png   Campus

Also reads the real test fixtures of ``shared/data/shelf`` (``gt.npz``; ``detections.npz``:
OpenPose BODY_25 candidates with part-affinity scores).
Joint order of the GT: Shelf-14 (see :data:`training.metrics.SHELF14_JOINTS`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from calib.camera import CameraRig
from training.errors import DatasetError


@dataclass(frozen=True)
class VoxelPoseDatasetSpec:
    """What differs between Shelf and Campus.

    Attributes:
        name: ``"shelf"`` or ``"campus"``.
        num_cameras: number of views.
        image_size: (width, height) px.
        image_pattern: relative image path, formatted with ``camera`` and ``frame``.
        frame_ranges: inclusive (first, last) evaluation frame ranges.
        calibration_file: calibration JSON name.
        space_size_mm, space_center_mm: VoxelPose's room for this dataset (reference values).
    """

    name: str
    num_cameras: int
    image_size: tuple[int, int]
    image_pattern: str
    frame_ranges: tuple[tuple[int, int], ...]
    calibration_file: str
    space_size_mm: tuple[float, float, float]
    space_center_mm: tuple[float, float, float]

    @property
    def eval_frames(self) -> list[int]:
        return [f for a, b in self.frame_ranges for f in range(a, b + 1)]

    @property
    def camera_names(self) -> list[str]:
        return [str(k) for k in range(self.num_cameras)]


SHELF = VoxelPoseDatasetSpec(
    "shelf",
    5,
    (1032, 776),
    "Camera{camera}/img_{frame:06d}.png",
    ((300, 600),),
    "calibration_shelf.json",
    (8000.0, 8000.0, 2000.0),
    (450.0, -320.0, 800.0),
)
CAMPUS = VoxelPoseDatasetSpec(
    "campus",
    3,
    (360, 288),
    "Camera{camera}/campus4-c{camera}-{frame:05d}.png",
    ((350, 470), (650, 750)),
    "calibration_campus.json",
    (12000.0, 12000.0, 2000.0),
    (3000.0, 4500.0, 1000.0),
)
DATASETS = {"shelf": SHELF, "campus": CAMPUS}


def get_spec(name: str) -> VoxelPoseDatasetSpec:
    if name not in DATASETS:
        raise DatasetError(f"unknown dataset '{name}'; choose one of {sorted(DATASETS)}")
    return DATASETS[name]


@dataclass(frozen=True, eq=False)
class ActorsGT:
    """3D GT of the evaluation frames.

    Attributes:
        frame_ids: (F,) frame numbers.
        joints_mm: (F,A,14,3) Shelf-14 joints in mm (NaN where absent).
        valid: (F,A) actor present.
        actor_names: (A,) names.
    """

    frame_ids: np.ndarray
    joints_mm: np.ndarray
    valid: np.ndarray
    actor_names: tuple[str, ...]

    def select(self, frame_ids) -> "ActorsGT":
        """Restrict to the given frames (all must be present)."""
        pos = {int(f): i for i, f in enumerate(self.frame_ids)}
        missing = [int(f) for f in frame_ids if int(f) not in pos]
        if missing:
            raise DatasetError(f"GT has no frames {missing[:5]}{'…' if len(missing) > 5 else ''}")
        idx = [pos[int(f)] for f in frame_ids]
        return ActorsGT(self.frame_ids[idx], self.joints_mm[idx], self.valid[idx], self.actor_names)


def _cell_items(obj) -> list:
    """Flatten MATLAB cell arrays (object ndarrays, possibly nested 1×N / N×1) into a list."""
    arr = np.asarray(obj, dtype=object)
    while arr.dtype == object and arr.size == 1 and isinstance(arr.item(), np.ndarray) and arr.item().dtype == object:
        arr = arr.item()
    return list(arr.reshape(-1))


def read_actors_gt_mat(path: str | Path, frame_ids: list[int] | None = None) -> ActorsGT:
    """Read ``actorsGT.mat`` (``actor3D``: per actor, per frame, a 14×3 array in metres or empty).

    Args:
        path: the .mat file.
        frame_ids: frames to keep (0-based frame numbers indexing ``actor3D``); default all.
    """
    from scipy.io import loadmat

    path = Path(path)
    try:
        mat = loadmat(str(path))
    except (OSError, ValueError, NotImplementedError) as exc:
        raise DatasetError(f"{path}: cannot read MATLAB file ({exc})") from None
    if "actor3D" not in mat:
        raise DatasetError(f"{path}: no 'actor3D' variable (is this Shelf/Campus actorsGT.mat?)")
    actors = [_cell_items(a) for a in _cell_items(mat["actor3D"])]
    num_frames = min(len(a) for a in actors)
    frames = list(range(num_frames)) if frame_ids is None else [int(f) for f in frame_ids]
    if frames and max(frames) >= num_frames:
        raise DatasetError(f"{path}: actor3D has {num_frames} frames, frame {max(frames)} requested")
    joints = np.full((len(frames), len(actors), 14, 3), np.nan)
    valid = np.zeros((len(frames), len(actors)), bool)
    for a, per_frame in enumerate(actors):
        for i, f in enumerate(frames):
            pose = np.asarray(per_frame[f], dtype=np.float64)
            if pose.size == 0:
                continue
            if pose.size != 42:
                raise DatasetError(f"{path}: actor {a} frame {f} has {pose.shape}, expected 14×3")
            joints[i, a] = pose.reshape(14, 3) * 1000.0
            valid[i, a] = True
    names = tuple(f"Actor{a + 1}" for a in range(len(actors)))
    return ActorsGT(np.asarray(frames, np.int64), joints, valid, names)


def read_gt_npz(path: str | Path) -> ActorsGT:
    """Read the fixture ``gt.npz`` (metres, Shelf-14 + mid-hip) into mm Shelf-14."""
    path = Path(path)
    with np.load(path, allow_pickle=False) as data:
        for key in ("joints", "valid", "frame_ids"):
            if key not in data.files:
                raise DatasetError(f"{path}: GT file lacks '{key}'")
        units = str(data["units"]) if "units" in data.files else "m"
        scale = {"m": 1000.0, "mm": 1.0}.get(units)
        if scale is None:
            raise DatasetError(f"{path}: field 'units' is '{units}', expected 'm' or 'mm'")
        names = (
            tuple(str(n) for n in data["actor_names"])
            if "actor_names" in data.files
            else tuple(f"Actor{a + 1}" for a in range(data["joints"].shape[1]))
        )
        return ActorsGT(
            data["frame_ids"].astype(np.int64), data["joints"][:, :, :14] * scale, data["valid"].astype(bool), names
        )


class VoxelPoseDataset:
    """A Shelf or Campus folder."""

    def __init__(self, root: str | Path, spec: VoxelPoseDatasetSpec) -> None:
        self.root = Path(root)
        self.spec = spec
        if not self.root.is_dir():
            raise DatasetError(f"{self.root}: {spec.name} folder not found")

    def image_path(self, camera: int, frame: int) -> Path:
        return self.root / self.spec.image_pattern.format(camera=camera, frame=frame)

    def load_rig(self) -> CameraRig:
        """Cameras ``"0".."N-1"`` in world mm (VoxelPose JSON)."""
        from calib.io_voxelpose import load_voxelpose_calibration

        candidates = [self.root / self.spec.calibration_file, self.root / "calibration_voxelpose.json"]
        for path in candidates:
            if path.is_file():
                return load_voxelpose_calibration(path, image_size=self.spec.image_size)
        raise DatasetError(f"{self.root}: no calibration file ({', '.join(p.name for p in candidates)})")

    def load_gt(self) -> ActorsGT:
        """GT of the evaluation frames from ``actorsGT.mat`` or a fixture ``gt.npz``."""
        return load_ground_truth(self.root, self.spec)


def load_ground_truth(path: str | Path, spec: VoxelPoseDatasetSpec) -> ActorsGT:
    """GT of ``spec``'s evaluation frames from a folder (``actorsGT.mat`` or ``gt.npz``) or a file."""
    path = Path(path)
    if not path.exists():
        raise DatasetError(f"{path}: {spec.name} folder or GT file not found (pass --gt with the {spec.name} folder)")
    if path.is_dir():
        for name in ("actorsGT.mat", "gt.npz"):
            if (path / name).is_file():
                path = path / name
                break
        else:
            raise DatasetError(f"{path}: no actorsGT.mat or gt.npz ({spec.name} ground truth)")
    if path.suffix == ".mat":
        return read_actors_gt_mat(path, spec.eval_frames)
    if path.suffix == ".npz":
        return read_gt_npz(path).select(spec.eval_frames)
    raise DatasetError(f"{path}: unsupported GT file (use actorsGT.mat or gt.npz)")


class OpenPoseCandidates:
    """OpenPose BODY_25 detections with PAF scores (``shared/data/shelf/detections.npz``).

    Candidates of (camera c, frame index f, joint j) are ``xy[o:o+n]``, ``score[o:o+n]`` with
    ``o = cand_offset[c,f,j]``, ``n = cand_count[c,f,j]``. PAF matrix k (joints ``paf_pairs[k]``)
    is ``paf_score[o:o+n_a*n_b].reshape(n_a, n_b)`` with ``o = paf_offset[c,f,k]``.
    """

    def __init__(self, path: str | Path) -> None:
        path = Path(path)
        try:
            with np.load(path, allow_pickle=False) as data:
                self._d = {k: data[k] for k in data.files}
        except (OSError, ValueError) as exc:
            raise DatasetError(f"{path}: cannot read detections ({exc})") from None
        for key in (
            "cand_xy",
            "cand_score",
            "cand_offset",
            "cand_count",
            "paf_score",
            "paf_offset",
            "paf_pairs",
            "frame_ids",
        ):
            if key not in self._d:
                raise DatasetError(f"{path}: detections file lacks '{key}'")
        self.path = path
        self.frame_ids = self._d["frame_ids"].astype(np.int64)
        self.paf_pairs = self._d["paf_pairs"].astype(np.int64)
        self.joint_names = tuple(str(n) for n in self._d.get("joint_names", []))
        self.num_cameras, self.num_frames, self.num_joints = self._d["cand_offset"].shape

    def frame_index(self, frame_id: int) -> int:
        idx = np.flatnonzero(self.frame_ids == frame_id)
        if not idx.size:
            raise DatasetError(f"{self.path}: no frame {frame_id} (frames {self.frame_ids[0]}..{self.frame_ids[-1]})")
        return int(idx[0])

    def candidates(self, camera: int, frame_index: int, joint: int) -> tuple[np.ndarray, np.ndarray]:
        """Pixel positions (n,2) and heat-map scores (n,) of one joint's candidates."""
        o = int(self._d["cand_offset"][camera, frame_index, joint])
        n = int(self._d["cand_count"][camera, frame_index, joint])
        return self._d["cand_xy"][o : o + n].astype(np.float64), self._d["cand_score"][o : o + n].astype(np.float64)

    def paf(self, camera: int, frame_index: int, k: int, power: float = 0.2) -> np.ndarray:
        """(n_a, n_b) affinity of candidates of ``paf_pairs[k]``; ``power`` as the C++ reader (0.2)."""
        a, b = self.paf_pairs[k]
        na = int(self._d["cand_count"][camera, frame_index, a])
        nb = int(self._d["cand_count"][camera, frame_index, b])
        o = int(self._d["paf_offset"][camera, frame_index, k])
        scores = self._d["paf_score"][o : o + na * nb].astype(np.float64).reshape(na, nb)
        return scores**power if power != 1.0 else scores
