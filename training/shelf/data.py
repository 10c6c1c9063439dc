"""Shelf frames as the engine sees them: OpenPose BODY_25 detections -> Panoptic-15 inputs.

Two views of the same detections (``shared/data/shelf/detections.npz``):

* **input rows** — every candidate of every joint, ungrouped (``engine.detections.candidates_to_rows``),
  which the engine renders into the 15 input heatmaps (VoxelPose's Shelf protocol: one Gaussian per
  candidate, peak = its score, max over candidates). This is what inference consumes.
* **people** — candidates grouped into per-person 2D poses with the part-affinity scores
  (``engine.paf_grouping``), the per-person pseudo labels of the self-supervised pose loss.

Nothing here reads the 3D ground truth.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from calib.camera import CameraRig
from engine.detections import candidates_to_rows, render_input_heatmaps
from calib.common.keypoint_maps import candidates_to_panoptic15, keypoints_to_panoptic15
from engine.paf_grouping import group_people
from training.datasets.shelf_campus import SHELF, OpenPoseCandidates, VoxelPoseDataset
from training.errors import DatasetError


def parse_frames(text: str | None, available: Sequence[int]) -> list[int]:
    """``"450-600"`` / ``"300-449,500"`` / None (all) -> frame ids, each checked against ``available``."""
    available = [int(f) for f in available]
    if not text:
        return available
    out: list[int] = []
    for part in str(text).split(","):
        part = part.strip()
        try:
            a, _, b = part.partition("-")
            lo, hi = int(a), int(b or a)
        except ValueError:
            raise DatasetError(f"frames '{text}': use first-last[,first-last...], e.g. 450-600") from None
        out += list(range(lo, hi + 1))
    missing = sorted(set(out) - set(available))
    if missing:
        raise DatasetError(
            f"frames {missing[:3]}{'...' if len(missing) > 3 else ''} are not in the detections "
            f"({available[0]}..{available[-1]})"
        )
    return out


class ShelfDetections:
    """The Shelf rig and its per-frame detections.

    Args:
        root: folder with ``detections.npz`` and a VoxelPose calibration (``shared/data/shelf``).
        detections: detections file (default ``root/detections.npz``).
    """

    def __init__(self, root: str | Path, detections: str | Path | None = None) -> None:
        self.root = Path(root)
        path = Path(detections) if detections else self.root / "detections.npz"
        if not path.is_file():
            raise DatasetError(
                f"{path}: Shelf detections not found (pass --detections or the data folder, e.g. ../shared/data/shelf)"
            )
        self.rig: CameraRig = VoxelPoseDataset(self.root, SHELF).load_rig()
        self.openpose = OpenPoseCandidates(path)
        if self.openpose.num_cameras != len(self.rig):
            raise DatasetError(f"{path}: {self.openpose.num_cameras} cameras of detections, rig has {len(self.rig)}")
        if self.openpose.num_joints != 25:
            raise DatasetError(f"{path}: {self.openpose.num_joints} joints per candidate set; expected BODY_25 (25)")
        self.frame_ids = [int(f) for f in self.openpose.frame_ids]

    @property
    def num_views(self) -> int:
        return len(self.rig)

    def _candidates(self, camera: int, fi: int) -> list[np.ndarray]:
        out = []
        for j in range(25):
            xy, score = self.openpose.candidates(camera, fi, j)
            out.append(np.concatenate([xy, score[:, None]], axis=1))
        return out

    def input_rows(self, frame_id: int) -> list[np.ndarray]:
        """Per view (M,15,3) Panoptic-15 candidate rows (x, y px, score) for ``predict_detections``."""
        fi = self.openpose.frame_index(frame_id)
        return [
            candidates_to_rows(candidates_to_panoptic15(self._candidates(v, fi), "body25"), 15)
            for v in range(self.num_views)
        ]

    def people(self, frame_id: int, min_joints: int = 5, layout: str = "panoptic15") -> list[np.ndarray]:
        """Per view (N,15,3) Panoptic-15 people grouped with the PAF scores (x, y px, score);
        ``layout="body25"``: the grouped (N,25,3) BODY_25 people themselves."""
        fi = self.openpose.frame_index(frame_id)
        out = []
        for v in range(self.num_views):
            pafs = [self.openpose.paf(v, fi, k) for k in range(len(self.openpose.paf_pairs))]
            body25 = group_people(self._candidates(v, fi), pafs, self.openpose.paf_pairs, min_joints=min_joints)
            out.append((body25 if layout == "body25" else keypoints_to_panoptic15(body25, "body25")).astype(np.float32))
        return out

    def input_heatmaps(
        self, frame_ids: Sequence[int], affine_hm: np.ndarray, heatmap_wh: tuple[int, int], sigma_px: float = 3.0
    ) -> np.ndarray:
        """(F,V,15,h,w) float16 input heatmaps, rendered exactly as ``Predictor.predict_detections`` does."""
        w, h = heatmap_wh
        out = np.zeros((len(frame_ids), self.num_views, 15, h, w), np.float16)
        for i, f in enumerate(frame_ids):
            out[i] = render_input_heatmaps(self.input_rows(f), affine_hm, heatmap_wh, sigma_px)
        return out

    def people_arrays(self, frame_ids: Sequence[int], max_people: int = 8) -> tuple[np.ndarray, np.ndarray]:
        """Padded pseudo labels: joints (F,V,G,15,2) px and scores (F,V,G,15) (0 = absent), G = max_people."""
        joints = np.zeros((len(frame_ids), self.num_views, max_people, 15, 2), np.float32)
        scores = np.zeros((len(frame_ids), self.num_views, max_people, 15), np.float32)
        for i, f in enumerate(frame_ids):
            for v, p in enumerate(self.people(f)):
                n = min(len(p), max_people)
                joints[i, v, :n] = p[:n, :, :2]
                scores[i, v, :n] = p[:n, :, 2]
        return joints, scores
