"""Wire schema: round trips, strict validation, and a decoder that only ever raises MessageError."""

from __future__ import annotations

import msgpack
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from capture.messages import (
    SCHEMA_VERSION,
    FrameSet,
    MessageError,
    Poses,
    Status,
    View,
    decode,
    encode,
    topic_of,
)
from calib.common.skeleton import PANOPTIC15


def _frameset(rng, encoding="bgr8") -> FrameSet:
    imgs = [rng.integers(0, 255, (6, 8, 3), dtype=np.uint8) for _ in range(2)]
    bufs = imgs if encoding == "bgr8" else [b"\xff\xd8jpegdata", b"\xff\xd8more"]
    views = tuple(
        View(f"cam{i}", 10 + i, 1_000 + i, 8, 6, encoding, memoryview(b).nbytes if encoding == "jpeg" else 144)
        for i, b in enumerate(bufs)
    )
    return FrameSet("lab", 7, 1_000, 2_000, views, tuple(bufs), missing=("cam9",), skew_ms=0.001)


def _poses(rng, P=3) -> Poses:
    return Poses(
        rig="lab",
        seq=4,
        frameset_seq=9,
        t_capture_ns=5,
        t_publish_ns=6,
        skeleton_name=PANOPTIC15.name,
        joints=PANOPTIC15.joints,
        edges=PANOPTIC15.edges,
        poses=rng.normal(size=(P, 15, 4)).astype(np.float32),
        track_ids=np.arange(P),
        timings_ms={"backbone": 3.5},
        extra={"mpjpe_mm": 12.0, "truth": [[1.0, 2.0]]},
    )


def test_frameset_round_trip_is_zero_copy(rng):
    fs = _frameset(rng)
    frames = encode(fs)
    assert frames[0] == b"frames/lab"
    assert frames[2] is fs.buffers[0] or np.shares_memory(frames[2], fs.buffers[0])
    out = decode([bytes(frames[0]), bytes(frames[1]), *frames[2:]])
    assert out.seq == 7 and out.cameras == ["cam0", "cam1"] and out.missing == ("cam9",)
    assert out.views == fs.views
    for i in range(2):
        np.testing.assert_array_equal(out.image(i), fs.buffers[i])
    assert np.shares_memory(out.buffers[0], frames[2])  # decoding did not copy the pixels


def test_jpeg_view_decodes_with_opencv(rng):
    import cv2

    yy, xx = np.mgrid[0:16, 0:24]
    img = np.stack([xx * 10, yy * 15, xx + yy], axis=-1).astype(np.uint8)  # smooth: JPEG keeps it
    ok, jpg = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 95])
    assert ok
    fs = FrameSet("lab", 0, 1, 2, (View("c", 0, 1, 24, 16, "jpeg", jpg.nbytes),), (jpg.tobytes(),))
    out = decode(encode(fs))
    assert out.image(0).shape == (16, 24, 3)
    assert np.abs(out.image(0).astype(int) - img).mean() < 8


def test_poses_and_status_round_trip(rng):
    p = _poses(rng)
    out = decode(encode(p))
    np.testing.assert_array_equal(out.poses, p.poses)
    assert out.joints == PANOPTIC15.joints and out.edges == PANOPTIC15.edges
    assert list(out.track_ids) == [0, 1, 2] and out.extra["mpjpe_mm"] == 12.0
    empty = decode(encode(_poses(rng, P=0)))
    assert empty.poses.shape == (0, 15, 4)
    s = Status(
        "capture-lab",
        "running",
        3,
        fps=29.9,
        latency_ms=1.5,
        dropped=2,
        missing=("cam1",),
        error="",
        cameras={"cam1": "retrying in 2.0 s"},
    )
    assert decode(encode(s)) == s
    assert topic_of("status", "x") == b"status/x"


def _tamper(frames, **changes):
    header = msgpack.unpackb(frames[1], raw=False)
    for key, value in changes.items():
        if value is KeyError:
            header.pop(key)
        else:
            header[key] = value
    return [frames[0], msgpack.packb(header, use_bin_type=True), *frames[2:]]


@pytest.mark.parametrize(
    "changes, match",
    [
        ({"v": SCHEMA_VERSION + 1}, "schema version"),
        ({"kind": "video"}, "unknown kind"),
        ({"seq": -1}, "seq"),
        ({"seq": True}, "seq"),
        ({"seq": KeyError}, "missing field 'seq'"),
        ({"rig": "other"}, "topic does not match"),
        ({"missing": ["cam0"]}, "appears twice"),
        ({"skew_ms": float("nan")}, "skew_ms"),
    ],
)
def test_bad_frameset_header_fields_are_rejected(rng, changes, match):
    frames = _tamper(encode(_frameset(rng)), **changes)
    with pytest.raises(MessageError, match=match):
        decode(frames)


def test_bad_views_and_buffers_are_rejected(rng):
    frames = encode(_frameset(rng))
    with pytest.raises(MessageError, match="2 views with inline pixels but 1 buffers"):
        decode(frames[:3])
    with pytest.raises(MessageError, match="buffer has 143 bytes"):
        decode([*frames[:2], bytes(frames[2])[:-1], frames[3]])
    header = msgpack.unpackb(frames[1], raw=False)
    header["views"][1]["width"] = 9
    with pytest.raises(MessageError, match="needs 162 bytes"):
        decode([frames[0], msgpack.packb(header), *frames[2:]])
    header["views"][1].update(width=8, encoding="png")
    with pytest.raises(MessageError, match="encoding"):
        decode([frames[0], msgpack.packb(header), *frames[2:]])
    with pytest.raises(MessageError, match="must use topic"):
        decode([b"poses/lab", *frames[1:]])


def test_bad_poses_are_rejected(rng):
    frames = encode(_poses(rng))
    with pytest.raises(MessageError, match="needs"):
        decode([*frames[:2], bytes(frames[2])[:-4]])
    with pytest.raises(MessageError, match="track_ids"):
        decode(_tamper(frames, track_ids=[1, 2]))
    with pytest.raises(MessageError, match="edges"):
        decode(_tamper(frames, skeleton={"name": "x", "joints": list(PANOPTIC15.joints), "edges": [[0, 15]]}))
    with pytest.raises(MessageError, match="joints"):
        decode(_tamper(frames, J=14))


def test_encode_refuses_inconsistent_messages(rng):
    fs = _frameset(rng)
    bad = FrameSet("lab", 0, 0, 0, fs.views, (fs.buffers[0][:3], fs.buffers[1]))
    with pytest.raises(MessageError, match="bgr8 image must be"):
        encode(bad)
    with pytest.raises(MessageError, match="state"):
        encode(Status("p", "sleeping", 0))
    with pytest.raises(MessageError, match="name"):
        encode(Status("bad/name", "ready", 0))


def _valid_messages():
    rng = np.random.default_rng(0)
    return [
        encode(_frameset(rng)),
        encode(_frameset(rng, "jpeg")),
        encode(_poses(rng)),
        encode(Status("p", "ready", 1, cameras={"a": "ok"})),
    ]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_fuzzed_messages_only_ever_raise_message_error(data):
    """Mutate valid messages (bytes, headers, frame counts) and random garbage: decode either
    returns a typed message or raises MessageError, nothing else."""
    frames = [
        bytes(f) if not isinstance(f, np.ndarray) else f.tobytes()
        for f in data.draw(st.sampled_from(_valid_messages()))
    ]
    action = data.draw(st.sampled_from(["flip", "truncate", "drop", "extend", "garbage", "header"]))
    if action == "flip":
        i = data.draw(st.integers(0, len(frames) - 1))
        if frames[i]:
            j = data.draw(st.integers(0, len(frames[i]) - 1))
            b = bytearray(frames[i])
            b[j] ^= data.draw(st.integers(1, 255))
            frames[i] = bytes(b)
    elif action == "truncate":
        i = data.draw(st.integers(0, len(frames) - 1))
        frames[i] = frames[i][: data.draw(st.integers(0, len(frames[i])))]
    elif action == "drop":
        del frames[data.draw(st.integers(0, len(frames) - 1))]
    elif action == "extend":
        frames.append(data.draw(st.binary(max_size=64)))
    elif action == "garbage":
        frames = data.draw(st.lists(st.binary(max_size=64), max_size=5))
    else:
        header = msgpack.unpackb(frames[1], raw=False)
        key = data.draw(st.sampled_from(sorted(header)))
        ints = st.integers(-(2**63), 2**64 - 1)  # what msgpack can carry
        header[key] = data.draw(
            st.one_of(
                st.none(),
                st.booleans(),
                ints,
                st.floats(allow_nan=True),
                st.text(max_size=8),
                st.lists(ints, max_size=3),
                st.dictionaries(st.text(max_size=4), ints, max_size=3),
            )
        )
        frames[1] = msgpack.packb(header, use_bin_type=True)
    try:
        out = decode(frames)
    except MessageError:
        return
    assert isinstance(out, (FrameSet, Poses, Status))


def test_reduced_images_for_every_encoding():
    import cv2

    yy, xx = np.mgrid[0:33, 0:48]
    img = np.stack([xx * 5, yy * 7, xx + yy], axis=-1).astype(np.uint8)
    jpg = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 95])[1].tobytes()
    fs = decode(
        encode(
            FrameSet(
                "lab",
                0,
                1,
                2,
                (View("a", 0, 1, 48, 33, "bgr8", img.nbytes), View("b", 0, 1, 48, 33, "jpeg", len(jpg))),
                (img, jpg),
            )
        )
    )
    for r in (2, 4):
        raw, dec = fs.image(0, reduce=r), fs.image(1, reduce=r)
        assert raw.shape == dec.shape == (-(-33 // r), 48 // r, 3)
        np.testing.assert_array_equal(raw, img[::r, ::r])
        assert (
            np.abs(dec.astype(int) - cv2.resize(img, (48 // r, -(-33 // r)), interpolation=cv2.INTER_AREA)).mean() < 10
        )
    with pytest.raises(ValueError, match="reduce"):
        fs.image(0, reduce=3)
