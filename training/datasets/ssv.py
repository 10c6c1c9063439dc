"""Self-supervised training samples: three augmented view sets per time instant (SPEC.md §4.8).

Built from pseudo labels only (no GT). For a sample, one augmentation per view set is drawn and
shared by all views; sets 1 and 2 are random, set 3 is the un-augmented letter-box. The result
carries, per set, the affines (so the trainer's projections match the warped images), the
augmented pseudo joints, the target heatmaps and weights, and optionally the warped images.
Image decoding and normalisation are left to the caller (``image_loader``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from calib.common.skeleton import PANOPTIC15
from training.augment import base_scale, cutout, rand_augment, sample_view_sets, warp_image
from training.errors import DatasetError
from training.pseudo_labels.store import PseudoLabelSet
from training.targets import dataset_target_heatmaps

ImageLoader = Callable[[str, int, str], np.ndarray]  # (sequence, frame, camera) -> RGB uint8 (H,W,3)


def frames_with_all_views(
    labels: PseudoLabelSet, cameras: Sequence[str], sequences: Sequence[str] | None = None
) -> list[tuple[str, int]]:
    """(sequence, frame) pairs having a label entry for every camera (optionally only ``sequences``)."""
    wanted = None if sequences is None else set(sequences)
    return [
        (s, f)
        for s, f in labels.frames()
        if (wanted is None or s in wanted) and all(labels.has(s, f, c) for c in cameras)
    ]


@dataclass(frozen=True, eq=False)
class ViewSet:
    """One augmented view set of a sample (V views, P = max_people).

    Attributes:
        affines: (V,2,3) original px -> input px.
        rotation_deg: rotation of the set.
        scale: (V,2) per-view scale in 200 px units.
        joints: (V,P,J,2) augmented pseudo joints in input px, zero-padded.
        visible: (V,P,J) bool.
        num_person: (V,) persons per view (≤ P).
        heatmaps: (V,J,h,w) float32 target heatmaps.
        weights: (V,J) float32 target weights.
        images: (V,H,W,3) uint8 warped RGB images or None.
    """

    affines: np.ndarray
    rotation_deg: float
    scale: np.ndarray
    joints: np.ndarray
    visible: np.ndarray
    num_person: np.ndarray
    heatmaps: np.ndarray
    weights: np.ndarray
    images: np.ndarray | None


@dataclass(frozen=True, eq=False)
class SSVSample:
    """A training sample: its frame and the three view sets (sets[2] = un-augmented)."""

    index: int
    sequence: str
    frame: int
    sets: tuple[ViewSet, ViewSet, ViewSet]
    attempts: int


class SSVSampleBuilder:
    """Builds :class:`SSVSample` objects from pseudo labels."""

    def __init__(
        self,
        labels: PseudoLabelSet,
        cameras: Sequence[str],
        image_sizes: np.ndarray,
        sequences: Sequence[str] | None = None,
        input_size: tuple[int, int] = (960, 512),
        heatmap_size: tuple[int, int] = (240, 128),
        max_people: int = 10,
        rotation_factor_deg: float = 45.0,
        scale_factor: float = 0.35,
        photometric: bool = False,
        image_loader: ImageLoader | None = None,
        drop_empty_persons: bool = True,
        target_centre: str = "trunc",
    ) -> None:
        """Args:
        labels: pseudo labels (original image px).
        cameras: camera names in view order.
        image_sizes: (V,2) original width, height px per camera.
        sequences: restrict to these sequences (e.g. the training split).
        input_size, heatmap_size: network input / output (W,H).
        max_people: persons kept per view (upstream drops beyond 10).
        rotation_factor_deg, scale_factor: geometric augmentation (SPEC.md §4.8).
        photometric: RandAugment + Cutout on sets 1 and 2 (stages 3–4); needs ``image_loader``.
        image_loader: returns the original RGB image; without it ``images`` are None.
        drop_empty_persons: ignore detected persons without any visible joint (hard labels
            have them). Upstream counts them, which can reject frames for no reason
            (SPEC.md §6 item 14); ``False`` reproduces that.
        target_centre: ``trunc`` (SPEC) or ``exact`` target Gaussians (:func:`dataset_target_heatmaps`).
        """
        self.labels = labels
        self.cameras = tuple(cameras)
        self.image_sizes = np.asarray(image_sizes, dtype=np.float64).reshape(len(self.cameras), 2)
        self.frames = frames_with_all_views(labels, self.cameras, sequences)
        if not self.frames:
            raise DatasetError(
                f"pseudo labels ({labels.source}): no frame has labels for all cameras {list(self.cameras)}"
            )
        if photometric and image_loader is None:
            raise DatasetError("photometric augmentation needs an image_loader")
        self.input_size = tuple(input_size)
        self.heatmap_size = tuple(heatmap_size)
        self.max_people = max_people
        self.rotation_factor_deg = rotation_factor_deg
        self.scale_factor = scale_factor
        self.photometric = photometric
        self.image_loader = image_loader
        self.drop_empty_persons = drop_empty_persons
        self.target_centre = target_centre
        self.centers = self.image_sizes / 2.0
        self.base_scales = np.stack([base_scale(tuple(s), self.input_size) for s in self.image_sizes])

    def __len__(self) -> int:
        return len(self.frames)

    def view_labels(self, index: int) -> list[tuple[np.ndarray, np.ndarray]]:
        """Per view (joints (N,J,2), visible (N,J)) of a sample, at most ``max_people`` persons."""
        seq, frame = self.frames[index]
        out = []
        for cam in self.cameras:
            lab = self.labels.get(seq, frame, cam)
            keep = lab.visible.any(axis=1) if self.drop_empty_persons else np.ones(len(lab), bool)
            out.append((lab.joints_px[keep][: self.max_people], lab.visible[keep][: self.max_people]))
        return out

    def build(self, index: int, rng: np.random.Generator) -> SSVSample:
        """Draw a valid augmentation for ``index`` (or a resampled index) and build its targets."""
        drawn = sample_view_sets(
            rng,
            index,
            len(self),
            self.view_labels,
            self.centers,
            self.base_scales,
            self.input_size,
            rotation_factor_deg=self.rotation_factor_deg,
            scale_factor=self.scale_factor,
        )
        seq, frame = self.frames[drawn.index]
        originals = [self.image_loader(seq, frame, c) for c in self.cameras] if self.image_loader else None
        sets = tuple(self._view_set(drawn, k, originals, rng) for k in range(3))
        return SSVSample(drawn.index, seq, frame, sets, drawn.attempts)

    def _view_set(self, drawn, k: int, originals, rng: np.random.Generator) -> ViewSet:
        V, P = len(self.cameras), self.max_people
        J = PANOPTIC15.num_joints
        joints = np.zeros((V, P, J, 2), np.float32)
        visible = np.zeros((V, P, J), bool)
        counts = np.zeros(V, np.int64)
        heatmaps, weights = [], []
        for v in range(V):
            j, vis = drawn.joints[k][v], drawn.visible[k][v]
            n = j.shape[0]
            joints[v, :n], visible[v, :n], counts[v] = j, vis, n
            hm, w = dataset_target_heatmaps(j, vis, self.input_size, self.heatmap_size, centre=self.target_centre)
            heatmaps.append(hm)
            weights.append(w)
        images = None
        if originals is not None:
            images = np.stack(
                [warp_image(img, drawn.affines[k, v], self.input_size) for v, img in enumerate(originals)]
            )
            if self.photometric and k < 2:
                images = np.stack([cutout(rand_augment(img, rng), rng) for img in images])
        aug = drawn.augmentations[k]
        return ViewSet(
            drawn.affines[k],
            aug.rotation_deg,
            self.base_scales * aug.scale,
            joints,
            visible,
            counts,
            np.stack(heatmaps),
            np.stack(weights),
            images,
        )
