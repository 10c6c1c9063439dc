"""Board specs, detection, blur estimate, printable PNG/PDF, and the board renderer's accuracy."""

from __future__ import annotations

import re
import zlib

import numpy as np
import pytest

from calib.board_render import BoardRenderer, board_pose_facing
from calib.boards import (
    BoardSpec,
    board_image,
    corners_collinear,
    detect_board,
    estimate_blur_px,
    write_board_pdf,
    write_board_png,
)
from calib.camera import Camera
from calib.configkit import ConfigError, from_dict

CHARUCO = BoardSpec.parse("charuco:9x6:40:30:DICT_5X5_100")


@pytest.fixture(scope="module")
def camera() -> Camera:
    K = np.array([[620.0, 0.0, 322.0], [0.0, 615.0, 238.0], [0.0, 0.0, 1.0]])
    return Camera("c0", 640, 480, K, [-0.28, 0.11, 0.0012, -0.0009, -0.02], np.eye(3), np.zeros(3))


def test_parse_and_yaml_specs_agree():
    from_yaml = from_dict(
        BoardSpec,
        {
            "kind": "charuco",
            "squares_x": 9,
            "squares_y": 6,
            "square_mm": 40,
            "marker_mm": 30,
            "dictionary": "DICT_5X5_100",
        },
    )
    assert from_yaml == CHARUCO
    check = BoardSpec.parse("checkerboard:9x6:25")
    assert (check.kind, check.num_corners, check.square_mm) == ("checkerboard", 40, 25.0)


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("charuco:7x5:40:50", "marker_mm"),  # marker larger than the square
        ("charuco:7x5:40:30:DICT_9X9_1", "dictionary"),  # unknown dictionary
        ("charuco:20x20:40:30:DICT_4X4_50", "needs"),  # dictionary too small for the board
        ("charuco:7:40:30", "expected"),  # malformed
        ("hexagons:7x5:40", "expected"),
    ],
)
def test_bad_specs_name_the_problem(text, fragment):
    with pytest.raises(ConfigError, match=fragment):
        BoardSpec.parse(text)


def test_board_points_match_opencv_charuco_corners():
    ref = CHARUCO.cv_board().getChessboardCorners()
    np.testing.assert_allclose(CHARUCO.board_points_mm(), ref, atol=1e-9)


@pytest.mark.parametrize("spec", [CHARUCO, BoardSpec.parse("checkerboard:9x6:25")])
def test_detects_the_flat_printout_at_the_documented_pixels(spec):
    ppm, margin = 3.0, 10.0
    det = detect_board(board_image(spec, ppm, margin), spec)
    assert det is not None and len(det) == spec.num_corners
    expected = (spec.board_points_mm()[det.ids, :2] + margin) * ppm - 0.5
    if spec.kind == "checkerboard":  # the plain checkerboard has no orientation: accept the 180 deg flip
        flipped = (spec.board_points_mm()[::-1][det.ids, :2] + margin) * ppm - 0.5
        expected = min(expected, flipped, key=lambda e: np.abs(e - det.corners_px).max())
    assert np.abs(det.corners_px - expected).max() < 0.1


def test_png_has_the_physical_size(tmp_path):
    import cv2

    path = write_board_png(CHARUCO, tmp_path / "b.png", dpi=254.0, margin_mm=10.0)  # 10 px per mm
    img = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    assert img.shape == (int((240 + 20) * 10), int((360 + 20) * 10))


def test_pdf_is_well_formed_and_actual_size(tmp_path):
    path = write_board_pdf(CHARUCO, tmp_path / "b.pdf", dpi=150.0)
    data = path.read_bytes()
    assert data.startswith(b"%PDF-1.4") and data.rstrip().endswith(b"%%EOF")
    # xref offsets point at the objects
    xref_at = int(re.search(rb"startxref\n(\d+)", data).group(1))
    offsets = [int(m) for m in re.findall(rb"(\d{10}) 00000 n", data[xref_at:])]
    for i, off in enumerate(offsets, start=1):
        assert data[off:].startswith(f"{i} 0 obj".encode())
    # the image is drawn at the board's physical width: (360 + 2*10) mm in points
    width_pt = float(re.search(rb"q ([\d.]+) 0 0", data).group(1))
    assert width_pt == pytest.approx((360 + 20) / 25.4 * 72.0, rel=2e-3)
    # the embedded image decodes to the board picture
    w = int(re.search(rb"/Width (\d+)", data).group(1))
    h = int(re.search(rb"/Height (\d+)", data).group(1))
    start = data.index(b"stream\n", data.index(b"/Subtype /Image")) + 7
    length = int(re.search(rb"/Length (\d+)", data[data.index(b"/Subtype /Image") :]).group(1))
    pixels = np.frombuffer(zlib.decompress(data[start : start + length]), np.uint8).reshape(h, w)
    assert detect_board(pixels, CHARUCO) is not None


def test_collinear_corners_are_recognised():
    line = np.stack([np.arange(8.0), 2 * np.arange(8.0) + 1], axis=1)
    assert corners_collinear(line)
    assert not corners_collinear(np.array([[0, 0], [1, 0], [0, 1], [1, 1.0]]))


def test_renderer_corners_agree_with_projection_and_blur_is_measured(camera, rng):
    renderer = BoardRenderer(camera, CHARUCO)
    pose = board_pose_facing(camera, CHARUCO, (300, 260), 600.0, tilt_deg=(20.0, -25.0), roll_deg=10.0)
    det = detect_board(renderer.render(pose, noise_std=2.0, rng=rng), CHARUCO)
    ids, uv = renderer.true_corners(pose)
    assert det is not None and len(det) >= 30
    truth = dict(zip(ids.tolist(), uv))
    err = np.array([np.linalg.norm(c - truth[i]) for i, c in zip(det.ids.tolist(), det.corners_px) if i in truth])
    assert np.median(err) < 0.15 and err.max() < 0.6
    blur = [
        estimate_blur_px(renderer.render(pose, blur_sigma_px=s, noise_std=2.0, rng=rng), det.corners_px)
        for s in (0.0, 1.5, 3.0)
    ]
    assert blur[0] < 1.2 < 1.3 < blur[1] < 2.3 < blur[2] < 3.8  # tracks sigma (fine marker cells cap it)
