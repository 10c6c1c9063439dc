"""Intrinsics from synthetic board views rendered through a known distorted camera."""

from __future__ import annotations

import numpy as np
import pytest

from calib.board_render import BoardRenderer, board_pose_facing, random_board_poses
from calib.boards import BoardSpec, detect_board
from calib.camera import CalibrationError, Camera
from calib.intrinsics import (
    calibrate_intrinsics,
    collect_detections,
    coverage_fraction,
    coverage_image,
    load_intrinsics,
    save_intrinsics,
    select_frames,
)

SPEC = BoardSpec.parse("charuco:9x6:40:30:DICT_5X5_100")
TRUE = Camera(
    "cam0",
    640,
    480,
    np.array([[620.0, 0.0, 322.0], [0.0, 615.0, 238.0], [0.0, 0.0, 1.0]]),
    [-0.28, 0.11, 0.0012, -0.0009, -0.02],
    np.eye(3),
    np.zeros(3),
)


@pytest.fixture(scope="module")
def renderer() -> BoardRenderer:
    return BoardRenderer(TRUE, SPEC)


@pytest.fixture(scope="module")
def folder(tmp_path_factory, renderer):
    """16 sharp noisy views + 2 blurred + 2 without the board, as PNGs."""
    import cv2

    rng = np.random.default_rng(7)
    root = tmp_path_factory.mktemp("intr") / "cam0"
    root.mkdir()
    for i, pose in enumerate(random_board_poses(TRUE, SPEC, 16, rng, (450.0, 800.0))):
        cv2.imwrite(str(root / f"{i:03d}.png"), renderer.render(pose, noise_std=2.0, rng=rng))
    for i in range(2):
        pose = board_pose_facing(TRUE, SPEC, (320, 240), 500.0)
        cv2.imwrite(str(root / f"blur{i}.png"), renderer.render(pose, blur_sigma_px=4.0, noise_std=2.0, rng=rng))
        cv2.imwrite(str(root / f"empty{i}.png"), np.full((480, 640), 120, np.uint8))
    return root


@pytest.fixture(scope="module")
def detections(folder):
    return collect_detections(folder, SPEC, "cam0")


def _max_distortion_difference(a: Camera, b: Camera, border_px: float = 40.0) -> float:
    """Max px difference of the lens distortion displacement over the image of ``b`` (less a border:
    the extreme corners are extrapolated from the board views)."""
    from calib.projection import distort_normalized, undistort_points

    u, v = np.meshgrid(np.linspace(border_px, 640 - border_px, 16), np.linspace(border_px, 480 - border_px, 12))
    xy = undistort_points(np.stack([u.ravel(), v.ravel()], 1), b)
    disp = [(distort_normalized(xy, c.dist) - xy) * c.f for c in (a, b)]
    return float(np.abs(disp[0] - disp[1]).max())


def test_recovers_intrinsics_within_tight_tolerances(detections):
    assert len(detections.detections) >= 14
    assert len(detections.not_found) + len(detections.blurred) == 4  # blurred and empty frames are not used
    chosen = select_frames(detections.detections, max_frames=12, spec=SPEC)
    result = calibrate_intrinsics(chosen, SPEC, detections.image_size, "cam0")
    K = result.camera.K
    assert abs(K[0, 0] / 620.0 - 1) < 0.003 and abs(K[1, 1] / 615.0 - 1) < 0.003
    assert abs(K[0, 2] - 322.0) < 2.0 and abs(K[1, 2] - 238.0) < 2.0
    assert _max_distortion_difference(result.camera, TRUE) < 0.35
    assert result.rms_px < 0.3
    assert "cam0" in result.summary()


def test_a_corrupted_view_is_dropped(detections):
    from calib.boards import BoardDetection

    views = select_frames(detections.detections, max_frames=10, spec=SPEC)
    bad = views[3]
    warped = bad.corners_px + np.random.default_rng(0).normal(0.0, 4.0, bad.corners_px.shape)  # mis-detection
    views[3] = BoardDetection(bad.ids, warped, bad.image_size, bad.blur_px, "corrupted")
    result = calibrate_intrinsics(views, SPEC, detections.image_size, "cam0")
    assert result.rejected_views == ("corrupted",) and "corrupted" not in result.views
    assert abs(result.camera.K[0, 0] / 620.0 - 1) < 0.003 and result.rms_px < 0.3
    assert "dropped outlier views" in result.summary()


def test_frame_selection_keeps_coverage(detections):
    chosen = select_frames(detections.detections, max_frames=6, spec=SPEC)
    assert len(chosen) == 6
    first_six = detections.detections[:6]
    assert coverage_fraction(chosen) >= coverage_fraction(first_six)
    img = coverage_image(chosen, (640, 480))
    assert img.shape == (480, 640, 3) and img.max() == 255


def test_too_few_views_is_an_error_naming_the_camera(detections):
    with pytest.raises(CalibrationError, match=r"camera 'cam0'.*only 3 usable board views.*tilt"):
        calibrate_intrinsics(detections.detections[:3], SPEC, (640, 480), "cam0")


def test_poor_coverage_is_an_error(detections):
    views = select_frames(detections.detections, max_frames=12, spec=SPEC)
    coverage = coverage_fraction(views)
    assert 0.5 < coverage < 0.95
    with pytest.raises(CalibrationError, match=rf"cover only {100 * coverage:.0f}% of the image.*corners"):
        calibrate_intrinsics(views, SPEC, (640, 480), "cam0", min_coverage=0.95)


def test_collinear_corner_sets_are_not_used(detections):
    from calib.boards import BoardDetection

    lines = []
    for d in detections.detections[:8]:  # keep only the first row of corners of every view
        row = d.ids < SPEC.squares_x - 1
        lines.append(BoardDetection(d.ids[row], d.corners_px[row], d.image_size, d.blur_px, d.source))
    with pytest.raises(
        CalibrationError,
        match=r"camera 'cam0'.*only 0 usable board views \(of 8, \d with all "
        r"corners on one line\)",
    ):
        calibrate_intrinsics(lines, SPEC, (640, 480), "cam0")


def test_fronto_parallel_views_are_rejected(renderer):
    rng = np.random.default_rng(3)
    dets = []
    for i in range(8):  # all facing the camera at one distance: focal length is not observable
        pose = board_pose_facing(TRUE, SPEC, (rng.uniform(250, 390), rng.uniform(190, 290)), 600.0)
        dets.append(detect_board(renderer.render(pose, noise_std=2.0, rng=rng), SPEC, source=f"f{i}"))
    with pytest.raises(CalibrationError, match="too similar"):
        calibrate_intrinsics(dets, SPEC, (640, 480), "cam0", fix_k3=True)


def test_board_never_seen_names_folder_and_fix(tmp_path):
    import cv2

    for i in range(3):
        cv2.imwrite(str(tmp_path / f"{i}.png"), np.random.default_rng(i).integers(0, 255, (120, 160), np.uint8))
    dets = collect_detections(tmp_path, SPEC, "camX")
    with pytest.raises(CalibrationError, match=rf"camera 'camX' \({tmp_path}\).*never found in 3 frames"):
        dets.require_detections(SPEC)


def test_all_frames_blurred_is_reported_as_blur(tmp_path, renderer):
    import cv2

    rng = np.random.default_rng(5)
    for i, pose in enumerate(random_board_poses(TRUE, SPEC, 3, rng, (450.0, 600.0), max_tilt_deg=10.0)):
        cv2.imwrite(str(tmp_path / f"{i}.png"), renderer.render(pose, blur_sigma_px=4.5, noise_std=1.0, rng=rng))
    dets = collect_detections(tmp_path, SPEC, "cam0")
    with pytest.raises(CalibrationError, match="blur"):
        dets.require_detections(SPEC)


def test_sharpness_limit_rejects_detected_but_blurred_frames(folder):
    strict = collect_detections(folder, SPEC, "cam0", max_blur_px=0.5)  # sharper than any real image
    assert not strict.detections and strict.blurred


def test_missing_source_is_an_error(tmp_path):
    with pytest.raises(CalibrationError, match="no such image folder or video"):
        collect_detections(tmp_path / "nope", SPEC, "cam0")


def test_intrinsics_file_round_trip(tmp_path, detections):
    result = calibrate_intrinsics(select_frames(detections.detections, 10, spec=SPEC), SPEC, (640, 480), "cam0")
    cams = load_intrinsics(save_intrinsics([result], tmp_path / "intrinsics.yaml"))
    np.testing.assert_allclose(cams["cam0"].K, result.camera.K)
    np.testing.assert_allclose(cams["cam0"].dist, result.camera.dist)
    with pytest.raises(CalibrationError, match="not an intrinsics file"):
        (tmp_path / "other.yaml").write_text("cameras: {}\n")
        load_intrinsics(tmp_path / "other.yaml")


def test_video_source_and_checkerboard_board(tmp_path):
    """A checkerboard filmed as an MJPG video (lossy) still calibrates; every 2nd frame is used."""
    import cv2

    spec = BoardSpec.parse("checkerboard:10x7:30")
    renderer = BoardRenderer(TRUE, spec)
    rng = np.random.default_rng(21)
    path = tmp_path / "cam0.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (640, 480))
    assert writer.isOpened()
    for pose in random_board_poses(TRUE, spec, 16, rng, (550.0, 850.0), max_tilt_deg=35.0, margin=0.3):
        writer.write(cv2.cvtColor(renderer.render(pose, noise_std=1.0, rng=rng), cv2.COLOR_GRAY2BGR))
    writer.release()
    dets = collect_detections(path, spec, "cam0", step=2)
    assert dets.frames_read == 8 and len(dets.detections) >= 6
    assert dets.detections[0].source.startswith("cam0.avi#")
    result = calibrate_intrinsics(dets.detections, spec, dets.image_size, "cam0", source=str(path))
    # fewer, lossy views than the main test: 1 % on the focal length
    assert abs(result.camera.K[0, 0] / 620.0 - 1) < 0.01 and abs(result.camera.K[1, 1] / 615.0 - 1) < 0.01
    assert _max_distortion_difference(result.camera, TRUE) < 1.0
