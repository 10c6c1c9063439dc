"""The one heatmap codec: round trip, numpy == torch, and train/infer parity of its callers."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from calib.common.heatmaps import HeatmapCodec, subpixel_offset
from engine.detections import detection_codec, render_input_heatmaps
from training.shelf.trainer import render_detections
from training.targets import dataset_target_heatmaps, render_heatmaps, target_codec


@pytest.mark.parametrize("window", ["none", "ceil", "floor"])
def test_encode_then_decode_returns_the_sub_pixel_keypoint_and_its_score(window):
    rng = np.random.default_rng(7)
    worst_px, worst_score = 0.0, 0.0
    for _ in range(60):
        W, H = int(rng.integers(24, 200)), int(rng.integers(24, 140))
        sigma = float(rng.uniform(1.0, 4.0))
        codec = HeatmapCodec((W, H), sigma, window=window, centre="exact")
        margin = 2.0
        pos = rng.uniform([margin, margin], [W - 1 - margin, H - 1 - margin], size=(1, 4, 2))  # (P=1,J=4,2)
        score = rng.uniform(0.2, 1.0, size=(1, 4))
        hm = codec.encode(pos, score)  # (J,H,W)
        xy, s = codec.decode(hm)
        worst_px = max(worst_px, float(np.abs(xy - pos[0]).max()))
        worst_score = max(worst_score, float(np.abs(s - score[0]).max()))
    assert worst_px < 0.05, worst_px
    assert worst_score < 1e-3, worst_score


def test_decode_without_refinement_is_the_argmax_and_parabola_matches_the_reference_formula():
    codec = HeatmapCodec((40, 30), 2.0)
    hm = codec.encode(np.array([[[10.3, 12.0]]]), np.ones((1, 1)))
    xy, s = codec.decode(hm, refine="none")
    assert xy.tolist() == [[10.0, 12.0]] and s[0] == pytest.approx(hm[0, 12, 10])
    l, c, r = hm[0, 12, 9:12]
    assert subpixel_offset(l, c, r, "parabola")[0] == pytest.approx(0.5 * (l - r) / (l - 2 * c + r))
    assert subpixel_offset(1.0, 0.5, 1.0, "parabola") == (0.0, 1.0)  # a minimum: no offset


SETTINGS = list(
    itertools.product(["none", "floor", "ceil"], ["trunc", "round"], ["exact", "anchor"], ["max", "sum"], [False, True])
)


@pytest.mark.parametrize("window,anchor,centre,combine,clip", SETTINGS)
def test_numpy_and_torch_encode_the_same_heatmaps(window, anchor, centre, combine, clip):
    rng = np.random.default_rng(3)
    codec = HeatmapCodec((50, 36), 2.5, window=window, anchor=anchor, centre=centre, combine=combine, clip=clip)
    pos = rng.uniform(-8, 58, size=(2, 3, 5, 2))  # (B,P,J,2), some outside the heatmap
    amp = rng.uniform(-0.2, 1.0, size=(2, 3, 5))  # some absent (<= 0)
    a = codec.encode(pos, amp)
    b = codec.encode(torch.tensor(pos, dtype=torch.float64), torch.tensor(amp, dtype=torch.float64))
    assert a.shape == (2, 5, 36, 50) and a.dtype == np.float32
    np.testing.assert_allclose(a, b.numpy(), atol=1e-6)
    assert a.max() > 0.3


def test_every_renderer_is_one_setting_of_the_codec():
    rng = np.random.default_rng(5)
    joints = rng.uniform(0, 960, size=(3, 15, 2)) * [1, 0.53]
    vis = rng.random((3, 15)) > 0.2
    for centre in ("trunc", "exact"):
        hm, _ = dataset_target_heatmaps(joints, vis, (960, 512), (240, 128), centre=centre)
        np.testing.assert_array_equal(hm, target_codec((240, 128), 3.0, centre).encode(joints / 4.0, vis))
    centers = torch.tensor(joints / 4.0, dtype=torch.float32)
    summed = render_heatmaps(centers, (240, 128))
    np.testing.assert_allclose(
        summed.numpy(),
        np.clip(HeatmapCodec((240, 128), 3.0, combine="sum").encode(joints / 4.0, np.ones((3, 15))), 0, 1),
        atol=1e-5,
    )  # float32 sum vs float64


def test_detection_route_heatmaps_at_inference_equal_the_training_targets():
    """The Shelf trainer's synthetic detections (torch, training) and the detection route
    (numpy, inference) render the same 2D input alike: equal inside the inference's ceil(3σ)
    window; outside it only the training Gaussians' tails (< exp(-4.5)) remain."""
    rng = np.random.default_rng(11)
    W, H = 64, 48
    uv = rng.uniform(2, [W - 2, H - 2], size=(1, 2, 3, 15, 2))  # (B,V,P,J,2) heatmap px
    score = rng.uniform(0.1, 1.0, size=(1, 2, 3, 15))
    train = render_detections(torch.tensor(uv, dtype=torch.float32), torch.tensor(score, dtype=torch.float32), (W, H))[
        0
    ]
    identity = np.tile(np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]), (2, 1, 1))  # original px = heatmap px
    per_view = [np.concatenate([uv[0, v], score[0, v, ..., None]], -1) for v in range(2)]
    infer = render_input_heatmaps(per_view, identity, (W, H))
    tail = np.exp(-0.5 * np.ceil(3 * 3.0) ** 2 / 3.0**2)  # the largest value the window cuts off
    assert np.abs(train.numpy() - infer).max() <= tail + 1e-6
    single = render_input_heatmaps([p[:1] for p in per_view], identity, (W, H))  # one person per view
    inside = single > 0
    train1 = render_detections(
        torch.tensor(uv[:, :, :1], dtype=torch.float32), torch.tensor(score[:, :, :1], dtype=torch.float32), (W, H)
    )[0].numpy()
    np.testing.assert_allclose(train1[inside], single[inside], atol=1e-6)
    assert 0 < train1[~inside].max() <= tail + 1e-6
    # with the inference window the training renderer reproduces inference exactly
    windowed = detection_codec((W, H)).encode(torch.tensor(uv[0], dtype=torch.float64), torch.tensor(score[0]))
    np.testing.assert_allclose(windowed.numpy(), infer, atol=1e-6)


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="window"):
        HeatmapCodec((8, 8), window="square")
    with pytest.raises(ValueError, match="sigma"):
        HeatmapCodec((8, 8), sigma_px=0.0)
