"""Training data for the self-supervised stages: one multi-view SSV dataset fed by sources.

A *source* gives, per (sequence, frame, camera), an RGB image and pseudo labels (a
:class:`training.pseudo_labels.store.PseudoLabelSet`). :class:`SSVDataset` turns any source into
tensors of three view sets with shared-per-sample augmentation (built by
:class:`training.datasets.ssv.SSVSampleBuilder`, which returns the affines so projections stay
consistent with the warped images). Sources:

* :class:`SyntheticScenes`: the synthetic world (capture.synthetic); its pseudo labels come from
  the simulated 2D detector (or, for the upper-bound experiment, exact 2D projections). 3D truth
  is only exposed through :meth:`SyntheticScenes.ground_truth`, used by evaluation.
* :class:`ImageFolderSource`: any pseudo-label store whose entries name image files (Panoptic,
  Shelf/Campus, a user's footage: :mod:`training.ssl.footage` points its labels at the frames).
"""

from __future__ import annotations

import hashlib
import json
from collections import OrderedDict
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch

from calib.camera import CameraRig
from engine.preprocess import MEAN_RGB, STD_RGB
from training.datasets.ssv import SSVSampleBuilder
from training.errors import DatasetError
from training.pseudo_labels.store import LabelEntry, PseudoLabelSet, ViewLabels

ImageLoader = Callable[[str, int, str], np.ndarray]


class SyntheticScenes:
    """Frames of several seeded synthetic scenes seen by one rig.

    Args:
        rig: the cameras.
        seeds: one world per seed; sequence names are ``synth<seed>``.
        frames_per_scene, frame_interval: frames ``0, n, 2n, ...`` of each scene.
        people, fps: world settings.
        volume_center_mm, volume_size_mm: capture volume (the root net's room).
        render_cache: rendered frames kept in memory (all views of a frame per entry).
    """

    def __init__(
        self,
        rig: CameraRig,
        seeds: Sequence[int],
        frames_per_scene: int,
        frame_interval: int,
        people: int,
        fps: float,
        volume_center_mm: Sequence[float],
        volume_size_mm: Sequence[float],
        render_cache: int = 8,
    ):
        from capture.synthetic.world import SyntheticWorld

        self.rig = rig
        self.seeds = tuple(int(s) for s in seeds)
        self.worlds = {
            self.sequence(s): SyntheticWorld(
                rig,
                num_people=people,
                seed=s,
                fps=fps,
                volume_center_mm=volume_center_mm,
                volume_size_mm=volume_size_mm,
            )
            for s in self.seeds
        }
        self.frames = [(self.sequence(s), i * frame_interval) for s in self.seeds for i in range(frames_per_scene)]
        self._view = {name: v for v, name in enumerate(rig.names)}
        self._renders: OrderedDict[tuple[str, int], tuple[list[np.ndarray], list[np.ndarray]]] = OrderedDict()
        self._render_cache = int(render_cache)
        self.key = dict(
            rig=list(rig.names),
            seeds=list(self.seeds),
            frames=frames_per_scene,
            interval=frame_interval,
            people=people,
            fps=fps,
            center=[float(c) for c in volume_center_mm],
            size=[float(s) for s in volume_size_mm],
        )

    @staticmethod
    def sequence(seed: int) -> str:
        return f"synth{int(seed)}"

    @property
    def cameras(self) -> list[str]:
        return list(self.rig.names)

    def images_bgr(self, sequence: str, frame: int) -> list[np.ndarray]:
        """All views of a frame, BGR uint8 (cached)."""
        return self._rendered(sequence, frame)[0]

    def _rendered(self, sequence: str, frame: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
        import cv2

        key = (sequence, int(frame))
        hit = self._renders.get(key)
        if hit is None:
            bgr = self.worlds[sequence].render(int(frame))
            hit = (bgr, [cv2.cvtColor(img, cv2.COLOR_BGR2RGB) for img in bgr])  # contiguous RGB: fast warps
            self._renders[key] = hit
            while len(self._renders) > self._render_cache:
                self._renders.popitem(last=False)
        return hit

    def image_rgb(self, sequence: str, frame: int, camera: str) -> np.ndarray:
        """One view as RGB uint8 (the :data:`ImageLoader` signature)."""
        return self._rendered(sequence, frame)[1][self._view[camera]]

    def ground_truth(self, sequence: str, frame: int) -> np.ndarray:
        """(G,15,3) mm joints of the people present (evaluation only, never training)."""
        people = self.worlds[sequence].people(int(frame))
        return np.asarray(people.joints_mm[people.present], dtype=np.float64)

    def pseudo_labels(
        self, kind: str = "detector", variant: str = "soft", detector_seed: int = 0, cache_dir: str | Path | None = None
    ) -> PseudoLabelSet:
        """Per (frame, camera) labels: simulated detector (``kind='detector'``) or exact 2D (``'exact'``).

        Exact labels are the true projections of joints inside the image (occluded ones
        included), for persons with at least one such joint: the supervised-2D upper bound.
        With ``cache_dir`` the set is stored as NPZ keyed by the scene settings.
        """
        if kind not in ("detector", "exact"):
            raise DatasetError(f"synthetic labels: kind '{kind}' must be 'detector' or 'exact'")
        path = None
        if cache_dir is not None:
            tag = json.dumps(dict(self.key, kind=kind, variant=variant, det_seed=detector_seed), sort_keys=True)
            path = Path(cache_dir) / f"labels_{hashlib.sha1(tag.encode()).hexdigest()[:12]}.npz"
            if path.is_file():
                return PseudoLabelSet.load(path)
        entries: list[LabelEntry] = []
        for seq, frame in self.frames:
            world = self.worlds[seq]
            truth = world.truth(frame)
            if kind == "detector":
                per_view = [
                    ViewLabels(d.joints_2d.astype(np.float32), d.scores.astype(np.float32), d.visible.astype(bool))
                    for d in world.detect(frame, None, detector_seed, variant, truth)
                ]
            else:
                per_view = []
                for v in range(len(self.rig)):
                    keep = truth.present & truth.in_image[v].any(-1)
                    vis = truth.in_image[v][keep]
                    joints = np.where(vis[..., None], np.nan_to_num(truth.joints_2d[v][keep]), 0.0).astype(np.float32)
                    per_view.append(ViewLabels(joints, vis.astype(np.float32), vis))
            for cam, (name, labels) in zip(self.rig, zip(self.rig.names, per_view)):
                entries.append(LabelEntry(seq, frame, name, labels, "", (cam.width, cam.height)))
        out = PseudoLabelSet(
            entries,
            variant if kind == "detector" else "unknown",
            f"synthetic {kind} {variant} seeds {list(self.seeds)}",
        )
        if path is not None:
            out.save(path)
        return out


class ImageFolderSource:
    """Images named by a pseudo-label store's ``image`` field (relative to ``root``), read with OpenCV.

    With ``image_sizes`` (camera -> (w, h) px) an image stored at another size (a downscaled frame
    cache) is resized back to its camera's calibrated size, the frame the labels' pixels refer to.
    """

    def __init__(self, labels: PseudoLabelSet, root: str | Path, image_sizes: dict[str, tuple[int, int]] | None = None):
        self.labels = labels
        self.root = Path(root)
        self._paths = {e.key: e.image for e in labels}
        self.image_sizes = dict(image_sizes or {})

    def image_rgb(self, sequence: str, frame: int, camera: str) -> np.ndarray:
        import cv2

        rel = self._paths.get((sequence, int(frame), camera), "")
        if not rel:
            raise DatasetError(
                f"pseudo labels: no image path for {sequence} frame {frame} camera {camera}; "
                "import the labels with image paths"
            )
        img = cv2.imread(str(self.root / rel), cv2.IMREAD_COLOR)
        if img is None:
            raise DatasetError(f"{self.root / rel}: cannot read image (check --data root)")
        size = self.image_sizes.get(camera)
        if size is not None and (img.shape[1], img.shape[0]) != tuple(size):
            img = cv2.resize(img, tuple(size), interpolation=cv2.INTER_LINEAR)
        return img[..., ::-1]


def normalise_images(images_rgb: np.ndarray) -> torch.Tensor:
    """(...,H,W,3) RGB uint8 -> (...,3,H,W) float32 ImageNet-normalised."""
    x = torch.from_numpy(np.ascontiguousarray(images_rgb)).movedim(-1, -3).float()
    std = torch.tensor(STD_RGB).reshape(3, 1, 1)
    mean = torch.tensor(MEAN_RGB).reshape(3, 1, 1)
    return x.mul_(1.0 / 255.0).sub_(mean).div_(std)


class SSVDataset(torch.utils.data.Dataset):
    """Three view sets per sample as tensors (SPEC.md §4.8), for every stage.

    Items (``K`` = 3 view sets, set index 2 un-augmented; ``G`` = max_people):
    ``images (K,V,3,H,W)`` normalised, ``heatmaps (K,V,J,h,w)``, ``weights (K,V,J)``,
    ``affines (K,V,2,3)`` original px -> input px, ``joints (K,V,G,J,2)`` input px,
    ``visible (K,V,G,J)``, ``num_person (K,V)``, ``index ()``.

    Args:
        labels: pseudo labels.
        image_loader: ``(sequence, frame, camera) -> RGB uint8``.
        rig: cameras in view order.
        input_size, heatmap_size: network sizes (w, h).
        max_people: persons per view.
        rotation_factor_deg, scale_factor, photometric: augmentation.
        seed: base seed; the sample's randomness is ``(seed, epoch, index)``.
        frames: restrict to these (sequence, frame) pairs.
        target_centre: ``trunc`` (SPEC) or ``exact`` target heatmaps.
    """

    def __init__(
        self,
        labels: PseudoLabelSet,
        image_loader: ImageLoader,
        rig: CameraRig,
        input_size: tuple[int, int],
        heatmap_size: tuple[int, int],
        max_people: int = 10,
        rotation_factor_deg: float = 45.0,
        scale_factor: float = 0.35,
        photometric: bool = False,
        seed: int = 0,
        target_centre: str = "trunc",
    ):
        self.builder = SSVSampleBuilder(
            labels,
            rig.names,
            rig.image_sizes,
            input_size=input_size,
            heatmap_size=heatmap_size,
            max_people=max_people,
            rotation_factor_deg=rotation_factor_deg,
            scale_factor=scale_factor,
            photometric=photometric,
            image_loader=image_loader,
            target_centre=target_centre,
        )
        self.seed = int(seed)
        self.epoch = 0

    def __len__(self) -> int:
        return len(self.builder)

    def set_epoch(self, epoch: int) -> None:
        """New augmentation draws each epoch (call before iterating)."""
        self.epoch = int(epoch)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        rng = np.random.default_rng((self.seed, self.epoch, int(index)))
        sample = self.builder.build(int(index), rng)
        sets = sample.sets

        def stack(name: str) -> np.ndarray:
            return np.stack([getattr(s, name) for s in sets])

        return {
            "images": normalise_images(stack("images")),
            "heatmaps": torch.from_numpy(stack("heatmaps")),
            "weights": torch.from_numpy(stack("weights")),
            "affines": torch.from_numpy(stack("affines").astype(np.float32)),
            "joints": torch.from_numpy(stack("joints")),
            "visible": torch.from_numpy(stack("visible")),
            "num_person": torch.from_numpy(stack("num_person")),
            "index": torch.tensor(sample.index),
        }
