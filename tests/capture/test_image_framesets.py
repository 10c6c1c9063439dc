"""Pairing image folders into framesets by frame number (issue 23 items 6 and 12b)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from capture.image_framesets import decode_image, frame_key, jpeg_truncated, pair_image_folder
from capture.source import SourceError

CAMS = ("00_03", "00_06", "cam1")


def _touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x")
    return path


@pytest.mark.parametrize(
    "stem, camera, key",
    [
        ("00_03_00000012", "00_03", 12),  # Panoptic / synth: the camera prefix's digits are not the frame
        ("000012", "cam1", 12),  # calibrate board --render-rig
        ("img_000300", "Camera1", 300),  # Shelf
        ("cam01_0007", "cam01", 7),
        ("cam01", "cam01", "cam01"),  # the camera name alone: no frame number
        ("left", "cam1", "left"),
    ],
)
def test_frame_key(stem, camera, key):
    assert frame_key(stem, camera) == key


def test_panoptic_tree_pairs_by_frame_number_at_any_level(tmp_path):
    seq = tmp_path / "out" / "synth_000"
    for cam in CAMS:
        for k in range(3):
            _touch(seq / "hdImgs" / cam / f"{cam}_{k:08d}.jpg")
    for folder in (tmp_path / "out", seq, seq / "hdImgs"):  # synth --out DIR, the sequence, hdImgs
        pairing = pair_image_folder(folder, CAMS)
        assert pairing.root == seq / "hdImgs" and pairing.layout == "per-camera"
        assert [f.frame for f in pairing.framesets] == [0, 1, 2]
        assert all(f.complete for f in pairing.framesets) and not pairing.incomplete()
        assert pairing.framesets[1].paths[1].name == "00_06_00000001.jpg"


def test_missing_and_extra_frames_are_reported_per_camera(tmp_path):
    for cam in CAMS:
        for k in (1, 2, 10):
            if not (cam == "00_06" and k == 2):
                _touch(tmp_path / cam / f"frame_{k}.png")
    _touch(tmp_path / "00_03" / "frame_11.png")
    _touch(tmp_path / "00_03" / "notes.txt")  # not an image: ignored
    pairing = pair_image_folder(tmp_path, CAMS)
    assert [f.frame for f in pairing.framesets] == [1, 2, 10, 11]  # numeric order, not text order
    assert [(f.frame, pairing.missing(f)) for f in pairing.incomplete()] == [(2, ["00_06"]), (11, ["00_06", "cam1"])]


def test_single_frameset_layout_and_errors(tmp_path):
    for cam in CAMS[:2]:
        _touch(tmp_path / "one" / f"{cam}.JPG")
    pairing = pair_image_folder(tmp_path / "one", CAMS)
    assert pairing.layout == "single" and len(pairing.framesets) == 1
    assert pairing.missing(pairing.framesets[0]) == ["cam1"]
    with pytest.raises(SourceError, match="not a folder"):
        pair_image_folder(tmp_path / "nope", CAMS)
    (tmp_path / "empty" / "other").mkdir(parents=True)
    with pytest.raises(
        SourceError, match=r"no image folder or file named after the cameras.*sub-folders found: \['other'\]"
    ):
        pair_image_folder(tmp_path / "empty", CAMS)
    for seq in ("a", "b"):
        (tmp_path / "two" / seq / "hdImgs").mkdir(parents=True)
    with pytest.raises(SourceError, match=r"holds 2 Panoptic sequences \['a', 'b'\]; pass one"):
        pair_image_folder(tmp_path / "two", CAMS)
    _touch(tmp_path / "dup" / "cam1" / "a_5.jpg")
    _touch(tmp_path / "dup" / "cam1" / "b_005.jpg")
    with pytest.raises(SourceError, match=r"a_5\.jpg and b_005\.jpg are both frame 5"):
        pair_image_folder(tmp_path / "dup", CAMS)


def test_truncated_and_corrupt_images_are_named(tmp_path):
    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, (120, 160, 3), dtype=np.uint8)
    good = tmp_path / "good.jpg"
    cv2.imwrite(str(good), image)
    data = good.read_bytes()
    assert not jpeg_truncated(data)
    decoded, problem = decode_image(good)
    assert problem is None and decoded.shape == (120, 160, 3)
    # Bytes after the end marker (some cameras append data) do not make it truncated.
    (tmp_path / "tail.jpg").write_bytes(data + b"trailer")
    assert decode_image(tmp_path / "tail.jpg")[1] is None
    cut = tmp_path / "cut.jpg"
    cut.write_bytes(data[: len(data) * 2 // 3])
    assert cv2.imread(str(cut)) is not None  # what OpenCV alone does: a half-grey image, exit 0
    assert decode_image(cut) == (None, "is a truncated JPEG (no end-of-image marker after the last scan)")
    png = tmp_path / "p.png"
    cv2.imwrite(str(png), image)
    (tmp_path / "cut.png").write_bytes(png.read_bytes()[:-40])
    assert decode_image(tmp_path / "cut.png")[1] == "is a truncated PNG (no IEND chunk at the end)"
    (tmp_path / "junk.jpg").write_bytes(b"not an image at all")
    assert decode_image(tmp_path / "junk.jpg")[1] == "cannot be decoded as an image"
    (tmp_path / "empty.jpg").write_bytes(b"")
    assert decode_image(tmp_path / "empty.jpg")[1] == "is empty"
