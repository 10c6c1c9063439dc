"""The one heatmap codec: 2D keypoints (heatmap px, amplitude) <-> Gaussian heatmaps.

Every place that turns 2D joints into heatmaps uses :class:`HeatmapCodec`: the detection route at
inference (:func:`engine.detections.render_input_heatmaps`), the backbone's training targets
(:func:`training.targets.dataset_target_heatmaps`, SPEC §4.8), the SSL rendered heatmaps
(:func:`training.targets.render_heatmaps`, SPEC §3.3 step 4) and the Shelf trainer's synthetic
detections (:func:`training.shelf.trainer.render_detections`). The Gaussian, its window and the
combination over people are defined once here, in array-module-generic code: numpy arrays give
numpy (float64 arithmetic, float32 out), torch tensors give torch (input dtype, differentiable).

A joint at heatmap position (x, y) with amplitude a > 0 contributes, on pixel (X, Y),
``a · exp(-((X-cx)/σ)²/2) · exp(-((Y-cy)/σ)²/2)`` where (cx, cy) is (x, y) (``centre="exact"``)
or the window's anchor pixel (``centre="anchor"``, SPEC §4.8), and only where
``|X-ax| <= r`` and ``|Y-ay| <= r`` around the anchor pixel (ax, ay) (``window`` sets r; "none"
means the whole heatmap). The anchor is ``trunc(x)`` (toward zero, as ``int()``) or
``floor(x + 0.5)``. People are combined by ``max`` or ``sum``; ``clip`` clips to [0, 1].
Amplitude <= 0 means absent.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

Window = Literal["none", "floor", "ceil"]


def _is_torch(a: Any) -> bool:
    return type(a).__module__.startswith("torch")


class _NumpyOps:
    """The handful of array operations the codec needs, numpy flavour (float64 arithmetic)."""

    exp, floor, trunc, abs = np.exp, np.floor, np.trunc, np.abs
    einsum = staticmethod(np.einsum)

    @staticmethod
    def grid(n: int, like: np.ndarray) -> np.ndarray:
        return np.arange(n, dtype=np.float64)

    @staticmethod
    def amax(a: np.ndarray, axis: int) -> np.ndarray:
        return a.max(axis=axis)

    @staticmethod
    def clip01(a: np.ndarray) -> np.ndarray:
        return np.clip(a, 0.0, 1.0)


class _TorchOps:
    """The same operations on torch tensors (input dtype and device, differentiable)."""

    def __init__(self) -> None:
        import torch

        self.torch = torch
        self.exp, self.floor, self.trunc, self.abs, self.einsum = (
            torch.exp,
            torch.floor,
            torch.trunc,
            torch.abs,
            torch.einsum,
        )

    def grid(self, n: int, like):
        return self.torch.arange(n, device=like.device, dtype=like.dtype)

    @staticmethod
    def amax(a, axis: int):
        return a.amax(dim=axis)

    @staticmethod
    def clip01(a):
        return a.clamp(0.0, 1.0)


@dataclass(frozen=True)
class HeatmapCodec:
    """Encode keypoints as Gaussian heatmaps and decode heatmaps to sub-pixel keypoints.

    Attributes:
        heatmap_wh: heatmap (W, H) in px.
        sigma_px: Gaussian σ in heatmap px.
        window: half-width r of the window around the anchor pixel: "floor" = int(truncate·σ)
            (SPEC §4.8: 9 px, a 19×19 window, for σ = 3), "ceil" = ceil(truncate·σ), "none" = no window.
        truncate: window half-width in σ.
        anchor: the window's centre pixel: "trunc" (``int(x)``) or "round" (``floor(x + 0.5)``).
        centre: the Gaussian's peak: "exact" (the keypoint, sub-pixel) or "anchor" (the anchor pixel).
        combine: how people add up: "max" or "sum".
        clip: clip the result to [0, 1].
    """

    heatmap_wh: tuple[int, int]
    sigma_px: float = 3.0
    window: Window = "none"
    truncate: float = 3.0
    anchor: Literal["trunc", "round"] = "trunc"
    centre: Literal["exact", "anchor"] = "exact"
    combine: Literal["max", "sum"] = "max"
    clip: bool = False

    def __post_init__(self) -> None:
        for name, allowed in (
            ("window", ("none", "floor", "ceil")),
            ("anchor", ("trunc", "round")),
            ("centre", ("exact", "anchor")),
            ("combine", ("max", "sum")),
        ):
            if getattr(self, name) not in allowed:
                raise ValueError(f"HeatmapCodec.{name} must be one of {allowed}, got {getattr(self, name)!r}")
        if not self.sigma_px > 0:
            raise ValueError(f"HeatmapCodec.sigma_px must be > 0, got {self.sigma_px}")

    @property
    def radius_px(self) -> int | None:
        """Window half-width in heatmap px (None: no window)."""
        if self.window == "none":
            return None
        reach = self.truncate * self.sigma_px
        return int(reach) if self.window == "floor" else int(math.ceil(reach))

    # ---------------------------------------------------------------------------------- encode

    def _anchor(self, ops, pos):
        return ops.trunc(pos) if self.anchor == "trunc" else ops.floor(pos + 0.5)

    def axis_factors(self, keypoints_hm, amplitude):
        """The separable factors of every keypoint's Gaussian: the one definition of the codec.

        Args:
            keypoints_hm: (...,2) heatmap px (numpy or torch).
            amplitude: (...) peaks (<= 0: absent).
        Returns:
            gx (...,W) and gy (...,H), with ``gx ⊗ gy`` the keypoint's heatmap (amplitude in gy).
        """
        ops = _TorchOps() if _is_torch(keypoints_hm) else _NumpyOps()
        W, H = self.heatmap_wh
        xs, ys = ops.grid(W, keypoints_hm), ops.grid(H, keypoints_hm)
        x, y = keypoints_hm[..., 0:1], keypoints_hm[..., 1:2]
        cx, cy = (self._anchor(ops, x), self._anchor(ops, y)) if self.centre == "anchor" else (x, y)
        gx = ops.exp(-0.5 * ((xs - cx) / self.sigma_px) ** 2)
        gy = ops.exp(-0.5 * ((ys - cy) / self.sigma_px) ** 2)
        r = self.radius_px
        if r is not None:
            ax, ay = self._anchor(ops, x), self._anchor(ops, y)
            gx = gx * (ops.abs(xs - ax) <= r)
            gy = gy * (ops.abs(ys - ay) <= r)
        amp = amplitude * (amplitude > 0)
        return gx, gy * amp[..., None]

    def encode(self, keypoints_hm, amplitude):
        """Keypoints -> heatmaps.

        Args:
            keypoints_hm: (...,P,J,2) heatmap px; numpy or torch.
            amplitude: (...,P,J) peak per keypoint (score, 1, or a person mask); <= 0: absent.
        Returns:
            (...,J,H,W): numpy float32 for numpy input; torch in the input's dtype (differentiable
            w.r.t. positions and amplitudes) for torch input.
        """
        if not _is_torch(keypoints_hm):
            return self._encode_numpy(np.asarray(keypoints_hm, np.float64), np.asarray(amplitude, np.float64))
        ops = _TorchOps()
        amplitude = ops.torch.as_tensor(amplitude).to(keypoints_hm.dtype)
        gx, gy = self.axis_factors(keypoints_hm, amplitude)  # (...,P,J,W), (...,P,J,H)
        if self.combine == "sum":
            out = ops.einsum("...pjh,...pjw->...jhw", gy, gx)
        else:
            out = gy[..., :, None] * gx[..., None, :]  # (...,P,J,H,W)
            out = out.amax(dim=-4) if out.shape[-4] else out.sum(-4)
        return ops.clip01(out) if self.clip else out

    def _encode_numpy(self, keypoints_hm: np.ndarray, amplitude: np.ndarray) -> np.ndarray:
        """Numpy encode: the same factors, pasted only where they are non-zero (the window) per
        present keypoint, which is what makes it fast enough for DataLoader workers."""
        W, H = self.heatmap_wh
        lead, (P, J) = keypoints_hm.shape[:-3], keypoints_hm.shape[-3:-1]
        B = int(np.prod(lead, dtype=np.int64))
        pos = keypoints_hm.reshape(B, P, J, 2)
        amp = np.broadcast_to(amplitude, keypoints_hm.shape[:-1]).reshape(B, P, J)
        out = np.zeros((B, J, H, W), np.float32)
        gx, gy = self.axis_factors(pos, amp)  # (B,P,J,W), (B,P,J,H) float64
        r = self.radius_px
        if r is not None:
            anchors = self._anchor(_NumpyOps, pos).astype(np.int64)
        paste = np.maximum if self.combine == "max" else np.add
        for b, p, j in np.argwhere(amp > 0).tolist():
            if r is None:
                x0, x1, y0, y1 = 0, W, 0, H
            else:
                ax, ay = anchors[b, p, j].tolist()
                x0, x1, y0, y1 = max(ax - r, 0), min(ax + r + 1, W), max(ay - r, 0), min(ay + r + 1, H)
                if x0 >= x1 or y0 >= y1:
                    continue  # the window lies outside the heatmap
            patch = out[b, j, y0:y1, x0:x1]
            paste(patch, gy[b, p, j, y0:y1, None] * gx[b, p, j, None, x0:x1], out=patch, casting="same_kind")
        if self.clip:
            np.clip(out, 0.0, 1.0, out=out)
        return out.reshape(*lead, J, H, W)

    # ---------------------------------------------------------------------------------- decode

    def decode(
        self, heatmaps, refine: Literal["gaussian", "parabola", "none"] = "gaussian"
    ) -> tuple[np.ndarray, np.ndarray]:
        """Heatmaps -> per-channel maximum with sub-pixel refinement.

        Args:
            heatmaps: (...,H,W) numpy or torch (decoded in numpy).
            refine: "gaussian" fits a parabola to the log of the maximum and its 4-neighbours (exact for
                an untruncated Gaussian), "parabola" to the values, "none" keeps the integer argmax.
        Returns:
            keypoints (...,2) heatmap px (x, y) float64 and score (...,) float64: the refined peak
            value for "gaussian", else the value at the maximum.
        """
        hm = heatmaps.detach().cpu().numpy() if _is_torch(heatmaps) else np.asarray(heatmaps)
        lead, (H, W) = hm.shape[:-2], hm.shape[-2:]
        flat = hm.reshape(-1, H, W).astype(np.float64)
        idx = flat.reshape(len(flat), -1).argmax(-1)
        iy, ix = np.unravel_index(idx, (H, W))
        n = np.arange(len(flat))
        peak = flat[n, iy, ix]
        xy, score = np.stack([ix, iy], -1).astype(np.float64), peak.copy()
        if refine != "none":
            for axis, (i, size) in enumerate(((ix, W), (iy, H))):
                inner = (i > 0) & (i < size - 1)
                lo, hi = np.clip(i - 1, 0, size - 1), np.clip(i + 1, 0, size - 1)
                left = flat[n, iy, lo] if axis == 0 else flat[n, lo, ix]
                right = flat[n, iy, hi] if axis == 0 else flat[n, hi, ix]
                off, gain = subpixel_offset(left, peak, right, refine)
                xy[:, axis] += np.where(inner, off, 0.0)
                score = score * np.where(inner, gain, 1.0)
        if refine != "gaussian":
            score = peak
        return xy.reshape(*lead, 2), score.reshape(lead)


def subpixel_offset(left, centre, right, method: Literal["gaussian", "parabola"] = "gaussian"):
    """Sub-pixel offset in [-0.5, 0.5] of a 1D peak from its two neighbours (0 if not a maximum).

    Args:
        left, centre, right: samples (arrays or floats) at -1, 0, +1 around the maximum.
        method: "gaussian" fits the parabola to the logs (exact for a Gaussian), "parabola" to the values.
    Returns:
        (offset, gain): the offset and, for "gaussian", the factor from the centre sample to the
        fitted peak (1 for "parabola").
    """
    l, c, r = (np.asarray(v, np.float64) for v in (left, centre, right))
    if method == "gaussian":
        ok = (l > 0) & (c > 0) & (r > 0)
        tiny = np.finfo(np.float64).tiny
        l, c, r = (np.log(np.maximum(v, tiny)) for v in (l, c, r))
    else:
        ok = np.ones(np.broadcast(l, c, r).shape, bool)
    den = l - 2.0 * c + r
    ok = ok & (den < 0)
    off = np.where(ok, np.clip(0.5 * (l - r) / np.where(ok, den, -1.0), -0.5, 0.5), 0.0)
    gain = np.exp(-0.25 * (l - r) * off) if method == "gaussian" else np.ones_like(off)
    gain = np.where(ok, gain, 1.0)
    if off.ndim == 0:
        return float(off), float(gain)
    return off, gain
