"""Google MoveNet MultiPose Lightning (bundled ONNX, Apache-2.0), with optional test-time augmentation.

Pipeline per image: letterbox to ``input_long_side_px`` (sides padded to multiples of 32, so any aspect
works: the Pose2Sim footage is 1088x1920 portrait) → MultiPose (up to 6 people, COCO-17) → optional
flipped pass (averaged), optional overlapping tiles (for crowds of more than 6) → keypoints in the
original image's pixels (pixel centres at integers). A crop-and-refine second pass with MoveNet Thunder
was measured and dropped: no gain at 384 px (docs/estimator.md).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np

from engine.estimators.base import MODELS_DIR, Estimator, EstimatorConfig, People2D, register_estimator
from engine.estimators.onnx_model import OnnxModel

MULTIPOSE_FILE = MODELS_DIR / "movenet_multipose.onnx"
MAX_PEOPLE = 6
# COCO-17 index of each joint's mirror image (for the flipped pass).
COCO17_FLIP = np.array([0, 2, 1, 4, 3, 6, 5, 8, 7, 10, 9, 12, 11, 14, 13, 16, 15])


@dataclass(frozen=True)
class Letterbox:
    """Original image → network input: scale, then pad right/bottom to multiples of 32."""

    scale: float  # input px per original px
    content_wh: tuple[int, int]  # resized image (w, h) inside the input
    input_wh: tuple[int, int]  # network input (w, h), multiples of 32

    @classmethod
    def fit(cls, image_wh: tuple[int, int], long_side_px: int) -> "Letterbox":
        w, h = image_wh
        scale = long_side_px / max(w, h)
        cw, ch = max(1, round(w * scale)), max(1, round(h * scale))
        return cls(scale, (cw, ch), (-(-cw // 32) * 32, -(-ch // 32) * 32))

    def apply(self, image: np.ndarray, bgr: bool, flip: bool = False) -> np.ndarray:
        """(H,W,3) uint8 → (1,h_in,w_in,3) int32 RGB network input (optionally mirrored left-right).

        The channel swap and the mirror act on the small resized image, not the camera frame. Large
        downscales first keep every k-th pixel (k = a third of the factor, so the area average still
        spans >= 2.5 pixels): 3.8 instead of 13 ms for a 1088x1920 frame, 1.4 grey levels apart."""
        step = max(1, int(1.0 / (self.scale * 2.5)))
        small = cv2.resize(image[::step, ::step] if step > 1 else image, self.content_wh, interpolation=cv2.INTER_AREA)
        if bgr:
            small = small[:, :, ::-1]
        if flip:
            small = small[:, ::-1]
        out = np.zeros((self.input_wh[1], self.input_wh[0], 3), dtype=np.int32)
        out[: self.content_wh[1], : self.content_wh[0]] = small
        return out[None]

    def to_original(self, yx_norm: np.ndarray) -> np.ndarray:
        """(...,2) normalised (y, x) of the input → (...,2) original (x, y) px, pixel centres at integers."""
        x = yx_norm[..., 1] * self.input_wh[0] / self.scale - 0.5
        y = yx_norm[..., 0] * self.input_wh[1] / self.scale - 0.5
        return np.stack([x, y], axis=-1)


def _bbox_of(kp: np.ndarray, min_score: float) -> np.ndarray:
    """(17,3) keypoints → (4,) x0, y0, x1, y1 of the confident ones (all if none are)."""
    ok = kp[:, 2] >= min_score
    pts = kp[ok, :2] if ok.sum() >= 2 else kp[:, :2]
    return np.concatenate([pts.min(0), pts.max(0)])


def _similarity(a: np.ndarray, b: np.ndarray) -> float:
    """OKS-like similarity of two (17,3) people: mean over jointly visible joints of exp(-d²/2s²)."""
    box = _bbox_of(a, 0.1)
    scale = max(box[2] - box[0], box[3] - box[1], 8.0) * 0.1
    ok = (a[:, 2] > 0.1) & (b[:, 2] > 0.1)
    if ok.sum() < 3:
        return 0.0
    d2 = ((a[ok, :2] - b[ok, :2]) ** 2).sum(-1)
    return float(np.exp(-d2 / (2 * scale**2)).mean())


def _merge(people: list[tuple[np.ndarray, float]], threshold: float = 0.5) -> list[tuple[np.ndarray, float]]:
    """Greedy NMS over people from several passes: the best-scored survives; duplicates are averaged in."""
    order = sorted(people, key=lambda p: -p[1])
    kept: list[list] = []
    for kp, score in order:
        for k in kept:
            if _similarity(k[0], kp) > threshold:
                k[2].append(kp)
                break
        else:
            kept.append([kp, score, [kp]])
    out = []
    for _best, score, group in kept:
        stack = np.stack(group)  # (n,17,3)
        w = stack[:, :, 2:3] + 1e-6
        xy = (stack[:, :, :2] * w).sum(0) / w.sum(0)
        out.append((np.concatenate([xy, stack[:, :, 2:3].mean(0)], axis=1), score))
    return out


class MoveNetMultiPose(Estimator):
    """MoveNet MultiPose Lightning on ONNX Runtime (see the module docstring)."""

    layout = "coco17"

    def __init__(self, config: EstimatorConfig):
        self.config = config
        self.model = OnnxModel(
            Path(config.model_path) if config.model_path else MULTIPOSE_FILE,
            input_shape=(1, None, None, 3),
            output_shape=(1, MAX_PEOPLE, 56),
            threads=config.threads,
            what="MoveNet MultiPose",
        )

    # ------------------------------------------------------------------ passes
    def _run(self, image: np.ndarray, bgr: bool, flip: bool = False) -> list[tuple[np.ndarray, float]]:
        """One MultiPose pass on a whole image → [(17,3) px + score, person score]; with ``flip`` the
        pass sees the mirrored image and its keypoints are in the mirrored frame."""
        h, w = image.shape[:2]
        box = Letterbox.fit((w, h), self.config.input_long_side_px)
        out = self.model.run(box.apply(image, bgr, flip))[0]  # (6,56)
        people = []
        for row in out:
            score = float(row[55])
            if score < self.config.min_person_score:
                continue
            kp = row[:51].reshape(17, 3)
            people.append((np.concatenate([box.to_original(kp[:, :2]), kp[:, 2:3]], axis=1), score))
        return people

    def _run_flipped(self, image: np.ndarray, bgr: bool) -> list[tuple[np.ndarray, float]]:
        w = image.shape[1]
        people = []
        for kp, score in self._run(image, bgr, flip=True):
            kp = kp[COCO17_FLIP].copy()
            kp[:, 0] = (w - 1) - kp[:, 0]
            people.append((kp, score))
        return people

    def _run_tiles(self, image: np.ndarray, bgr: bool) -> list[tuple[np.ndarray, float]]:
        n = self.config.tiles
        h, w = image.shape[:2]
        th, tw = int(np.ceil(h / n * 1.25)), int(np.ceil(w / n * 1.25))
        people = []
        for y0 in np.linspace(0, h - th, n).astype(int):
            for x0 in np.linspace(0, w - tw, n).astype(int):
                for kp, score in self._run(image[y0 : y0 + th, x0 : x0 + tw], bgr):
                    people.append((kp + np.array([x0, y0, 0.0]), score))
        return people

    # ------------------------------------------------------------------ public
    def detect_one(self, image: np.ndarray, bgr: bool = True) -> People2D:
        """People in one (H,W,3) uint8 image."""
        t0 = time.perf_counter()
        people = self._run(image, bgr)
        if self.config.flip:
            people = _merge(people + self._run_flipped(image, bgr))
        if self.config.tiles > 1:
            people = _merge(people + self._run_tiles(image, bgr))
        t1 = time.perf_counter()
        people.sort(key=lambda p: -p[1])
        kps = np.array([p[0] for p in people], dtype=np.float32).reshape(-1, 17, 3)
        kps[kps[:, :, 2] < self.config.min_joint_score] = 0.0
        return People2D(
            keypoints=kps,
            scores=np.array([p[1] for p in people], dtype=np.float32),
            layout=self.layout,
            timings_ms={"estimator": (t1 - t0) * 1e3},
        )

    def detect(self, images: np.ndarray | Sequence[np.ndarray], bgr: bool = True) -> list[People2D]:
        return [self.detect_one(np.asarray(im), bgr) for im in images]


@register_estimator("movenet")
def _build(config: EstimatorConfig) -> Estimator:
    return MoveNetMultiPose(config)
