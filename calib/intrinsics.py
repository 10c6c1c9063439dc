"""Per-camera intrinsics from board views: frame reading, blur rejection, coverage-driven frame
selection, pinhole + Brown–Conrady calibration with sanity checks, coverage picture, YAML I/O.

Typical use::

    dets = collect_detections(source="calib/cam0", spec=spec, camera_name="cam0")
    chosen = select_frames(dets.detections, max_frames=40)
    result = calibrate_intrinsics(chosen, spec, dets.image_size, "cam0")
    print(result.summary())

Every degenerate input (no frames, board never seen, every frame blurred, too few or too similar
views, high residual) raises :class:`calib.camera.CalibrationError` that names the camera and
source and says what to do; a bad calibration is never returned silently.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from calib.boards import BoardDetection, BoardSpec, corners_collinear, detect_board, estimate_blur_px, to_gray
from calib.camera import CalibrationError, Camera

log = logging.getLogger(__name__)

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
VIDEO_EXTENSIONS = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v")


# ---------------------------------------------------------------------------- reading frames
def iter_frames(source: str | Path, step: int = 1) -> Iterator[tuple[str, np.ndarray]]:
    """Yield ``(label, image)`` from an image folder (sorted by name) or a video file.

    Args:
        source: a folder of images or a video file.
        step: keep every ``step``-th frame (video) or image (folder).
    """
    import cv2

    path = Path(source)
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS)
        if not files:
            raise CalibrationError(f"{path}: no images ({', '.join(IMAGE_EXTENSIONS)}) in this folder")
        for f in files[:: max(step, 1)]:
            img = cv2.imread(str(f), cv2.IMREAD_GRAYSCALE)
            if img is None:
                log.warning("%s: unreadable image, skipped", f)
                continue
            yield f.name, img
        return
    if not path.is_file():
        raise CalibrationError(f"{path}: no such image folder or video file")
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        raise CalibrationError(f"{path}: OpenCV cannot open this video (try converting it to mp4 or a folder of PNGs)")
    try:
        index = 0
        while True:
            ok, frame = cap.read()
            if not ok:
                break
            if index % max(step, 1) == 0:
                yield f"{path.name}#{index:06d}", to_gray(frame)
            index += 1
    finally:
        cap.release()


@dataclass
class DetectionSet:
    """Board detections of one camera plus why other frames were rejected."""

    camera_name: str
    source: str
    image_size: tuple[int, int] | None = None
    detections: list[BoardDetection] = field(default_factory=list)
    not_found: list[str] = field(default_factory=list)
    blurred: list[str] = field(default_factory=list)
    blur_of_unfound_px: list[float] = field(default_factory=list)
    max_blur_px: float = 2.5

    @property
    def frames_read(self) -> int:
        return len(self.detections) + len(self.not_found) + len(self.blurred)

    def require_detections(self, spec: BoardSpec) -> None:
        """Raise a CalibrationError explaining why no frame is usable (no-op when some are)."""
        if self.detections:
            return
        where = f"camera '{self.camera_name}' ({self.source})"
        if self.frames_read == 0:
            raise CalibrationError(f"{where}: no frames could be read")
        blurry_unfound = sum(b > self.max_blur_px for b in self.blur_of_unfound_px)
        if self.blurred or blurry_unfound > len(self.not_found) // 2:
            raise CalibrationError(
                f"{where}: no usable frame out of {self.frames_read}: {len(self.blurred)} rejected as blurred and "
                f"{len(self.not_found)} without a detectable board (median blur of those "
                f"{np.median(self.blur_of_unfound_px or [0.0]):.1f} px, limit {self.max_blur_px:g} px). Hold the "
                "board still, add light or shorten the exposure, and check the focus"
            )
        raise CalibrationError(
            f"{where}: the board ({spec.describe()}) was never found in {self.frames_read} frames. Check that "
            "the board spec matches the printed board (squares, not inner corners; dictionary), that the "
            "whole board is in view and well lit"
        )


def collect_detections(
    source: str | Path, spec: BoardSpec, camera_name: str, step: int = 1, max_blur_px: float = 2.5, min_corners: int = 8
) -> DetectionSet:
    """Detect the board in every ``step``-th frame of ``source`` and reject blurred frames.

    Args:
        source: image folder or video of this camera.
        spec: the printed board.
        camera_name: for messages and results.
        step: frame stride.
        max_blur_px: frames whose estimated blur sigma (see :func:`calib.boards.estimate_blur_px`)
            exceeds this are rejected (corners of blurred boards are biased).
        min_corners: fewer detected corners count as "not found".
    """
    out = DetectionSet(camera_name, str(source), max_blur_px=max_blur_px)
    for label, img in iter_frames(source, step):
        size = (img.shape[1], img.shape[0])
        if out.image_size is None:
            out.image_size = size
        elif size != out.image_size:
            raise CalibrationError(
                f"camera '{camera_name}' ({source}): frame {label} is {size[0]}x{size[1]} "
                f"but earlier frames are {out.image_size[0]}x{out.image_size[1]}; one "
                "camera per folder/video, one resolution"
            )
        det = detect_board(img, spec, min_corners=min_corners, source=label)
        if det is None:
            out.not_found.append(label)
            out.blur_of_unfound_px.append(estimate_blur_px(img))
        elif det.blur_px > max_blur_px:
            out.blurred.append(label)
        else:
            out.detections.append(det)
    log.info(
        "camera %s: %d frames, %d with the board, %d blurred, %d without board",
        camera_name,
        out.frames_read,
        len(out.detections),
        len(out.blurred),
        len(out.not_found),
    )
    return out


# ---------------------------------------------------------------------------- frame selection
def _cells(det: BoardDetection, grid: tuple[int, int]) -> set[int]:
    w, h = det.image_size
    cx = np.clip((det.corners_px[:, 0] / w * grid[0]).astype(int), 0, grid[0] - 1)
    cy = np.clip((det.corners_px[:, 1] / h * grid[1]).astype(int), 0, grid[1] - 1)
    return set((cy * grid[0] + cx).tolist())


def _tilt_signature(det: BoardDetection, spec: BoardSpec) -> np.ndarray:
    """Normalised homography's perspective terms: distinguishes board tilts cheaply."""
    import cv2

    obj = spec.board_points_mm()[det.ids, :2]
    H, _ = cv2.findHomography(obj, det.corners_px)
    if H is None:
        return np.zeros(2)
    return H[2, :2] / H[2, 2] * spec.square_mm * max(spec.squares_x, spec.squares_y)


def select_frames(
    detections: Sequence[BoardDetection],
    max_frames: int = 40,
    grid: tuple[int, int] = (8, 6),
    spec: BoardSpec | None = None,
) -> list[BoardDetection]:
    """Greedy frame selection for coverage: each pick adds the most not-yet-covered image cells
    (then, with ``spec``, the most different board tilt); keeps at most ``max_frames``.

    Cost is O(max_frames x len(detections)), so whole videos can be passed in.
    """
    remaining = list(detections)
    if len(remaining) <= max_frames:
        return remaining
    n = len(remaining)
    masks = np.zeros((n, grid[0] * grid[1]), bool)  # (N,cells)
    for i, d in enumerate(remaining):
        masks[i, list(_cells(d, grid))] = True
    corners = np.array([len(d) for d in remaining], dtype=np.float64)
    tilts = np.stack([_tilt_signature(d, spec) for d in remaining]) if spec is not None else None
    min_tilt_gap = np.zeros(n)  # distance of each frame's tilt to the nearest chosen one
    covered = np.zeros(grid[0] * grid[1], bool)
    available = np.ones(n, bool)
    chosen: list[int] = []
    while len(chosen) < max_frames:
        score = (masks & ~covered).sum(axis=1) * 1000.0 + corners + 100.0 * min_tilt_gap
        best = int(np.argmax(np.where(available, score, -np.inf)))
        chosen.append(best)
        available[best] = False
        covered |= masks[best]
        if tilts is not None:
            gap = np.linalg.norm(tilts - tilts[best], axis=1)
            min_tilt_gap = gap if len(chosen) == 1 else np.minimum(min_tilt_gap, gap)
    return [remaining[i] for i in sorted(chosen)]


def coverage_fraction(detections: Sequence[BoardDetection], grid: tuple[int, int] = (8, 6)) -> float:
    """Fraction of the image's grid cells that hold at least one detected corner."""
    covered: set[int] = set()
    for d in detections:
        covered |= _cells(d, grid)
    return len(covered) / float(grid[0] * grid[1])


def coverage_image(
    detections: Sequence[BoardDetection], image_size: tuple[int, int], grid: tuple[int, int] = (8, 6)
) -> np.ndarray:
    """(H,W,3) BGR picture: covered grid cells shaded green, every detected corner drawn."""
    import cv2

    w, h = image_size
    img = np.full((h, w, 3), 40, np.uint8)
    counts = np.zeros(grid[::-1], int)
    for d in detections:
        for c in _cells(d, grid):
            counts[c // grid[0], c % grid[0]] += 1
    for (r, c), n in np.ndenumerate(counts):
        x0, x1 = int(c * w / grid[0]), int((c + 1) * w / grid[0])
        y0, y1 = int(r * h / grid[1]), int((r + 1) * h / grid[1])
        shade = (40, 40 + 18 * int(min(n, 10)), 40) if n else (40, 40, 110)
        cv2.rectangle(img, (x0, y0), (x1 - 1, y1 - 1), shade, -1)
        cv2.rectangle(img, (x0, y0), (x1 - 1, y1 - 1), (90, 90, 90), 1)
    for d in detections:
        for x, y in d.corners_px:
            cv2.circle(img, (int(round(x)), int(round(y))), 2, (255, 255, 255), -1, cv2.LINE_AA)
    return img


# ---------------------------------------------------------------------------- calibration
@dataclass(frozen=True, eq=False)
class IntrinsicsResult:
    """One camera's intrinsics with its quality figures.

    Attributes:
        camera: the calibrated camera (R = I, t = 0: intrinsics only).
        rms_px: overall RMS reprojection error in px.
        per_view_rms_px: (M,) RMS per used view.
        views: labels of the views used.
        coverage: fraction of image grid cells with corners (0..1).
        focal_std_px: (2,) 1-sigma uncertainty of fx, fy from OpenCV.
        board_poses: M (rvec (3,), tvec_mm (3,)) board->camera poses of the used views.
        rejected_views: labels of views dropped as outliers (per-view RMS > 3x the median).
    """

    camera: Camera
    rms_px: float
    per_view_rms_px: np.ndarray
    views: tuple[str, ...]
    coverage: float
    focal_std_px: np.ndarray
    board_poses: tuple[tuple[np.ndarray, np.ndarray], ...] = ()
    rejected_views: tuple[str, ...] = ()

    def summary(self) -> str:
        """One line for reports."""
        c = self.camera
        return (
            f"{c.name}: {c.width}x{c.height} fx={c.K[0, 0]:.1f} fy={c.K[1, 1]:.1f} cx={c.K[0, 2]:.1f} "
            f"cy={c.K[1, 2]:.1f} dist={np.array2string(c.dist, precision=4)} RMS={self.rms_px:.3f} px "
            f"({len(self.views)} views, worst {self.per_view_rms_px.max():.3f} px, coverage "
            f"{100 * self.coverage:.0f}%, fx +-{self.focal_std_px[0]:.1f} px"
            + (f", dropped outlier views {list(self.rejected_views)}" if self.rejected_views else "")
            + ")"
        )


def calibrate_intrinsics(
    detections: Sequence[BoardDetection],
    spec: BoardSpec,
    image_size: tuple[int, int],
    camera_name: str,
    min_views: int = 6,
    max_rms_px: float = 1.5,
    max_focal_rel_std: float = 0.01,
    min_coverage: float = 0.5,
    fix_k3: bool = False,
    source: str = "<detections>",
) -> IntrinsicsResult:
    """Pinhole + Brown–Conrady (k1 k2 p1 p2 k3) intrinsics from board views (OpenCV calibrateCamera).

    Args:
        detections: board detections of one camera (e.g. from :func:`select_frames`).
        spec: the board.
        image_size: (width, height).
        camera_name: for the result and messages.
        min_views: fewer usable (non-collinear) views is an error.
        max_rms_px: a larger overall RMS is an error (wrong board spec, rolling shutter, blur...).
        max_focal_rel_std: a larger relative uncertainty of fx is an error (views lack tilt).
        min_coverage: a smaller fraction of the image's 8x6 grid cells holding corners is an error
            (the distortion towards the edges would be extrapolated, often wildly).
        fix_k3: keep k3 = 0 (narrow lenses, few views).
        source: folder/video name for messages.
    Raises:
        CalibrationError: naming the camera and source, with what to do.
    """
    where = f"camera '{camera_name}' ({source})"
    obj_all = spec.board_points_mm().astype(np.float32)
    collinear = [d for d in detections if len(d) >= 6 and corners_collinear(obj_all[d.ids, :2])]
    usable = [d for d in detections if len(d) >= 6 and not corners_collinear(obj_all[d.ids, :2])]
    if len(usable) < min_views:
        why = f", {len(collinear)} with all corners on one line" if collinear else ""
        raise CalibrationError(
            f"{where}: only {len(usable)} usable board views (of {len(detections)}{why}); need at least "
            f"{min_views}. Record more views with the whole board visible, at different positions covering "
            "the image and tilted 30-45 degrees in several directions"
        )
    coverage = coverage_fraction(usable)
    if coverage < min_coverage:
        raise CalibrationError(
            f"{where}: board corners cover only {100 * coverage:.0f}% of the image (need {100 * min_coverage:.0f}%); "
            "the lens distortion towards the edges would be guessed. Move the board into the image corners "
            "and along the edges (see the coverage picture)"
        )
    rms, K, dist, rvecs, tvecs, std_int, per_view = _calibrate(usable, obj_all, image_size, fix_k3)
    # One round of outlier-view rejection: a view far worse than the others (a mis-detection or a
    # blur the sharpness test missed) is dropped and the camera calibrated again.
    per_view = np.ravel(per_view)
    bad = per_view > max(3.0 * float(np.median(per_view)), 1.0)
    rejected = tuple(d.source for d, b in zip(usable, bad) if b)
    if rejected and len(usable) - len(rejected) >= min_views:
        log.info("%s: dropping outlier views %s (RMS %s px)", where, rejected, np.round(per_view[bad], 2))
        usable = [d for d, b in zip(usable, bad) if not b]
        rms, K, dist, rvecs, tvecs, std_int, per_view = _calibrate(usable, obj_all, image_size, fix_k3)
    else:
        rejected = ()
    dist = np.asarray(dist, dtype=np.float64).ravel()[:5]
    focal_std = np.asarray(std_int, dtype=np.float64).ravel()[:2]
    if not np.all(np.isfinite(K)) or not np.all(np.isfinite(dist)):
        raise CalibrationError(f"{where}: calibration diverged; record more varied views")
    if focal_std[0] / K[0, 0] > max_focal_rel_std:
        raise CalibrationError(
            f"{where}: focal length is poorly determined (fx = {K[0, 0]:.0f} +- {focal_std[0]:.0f} px): the "
            "board views are too similar (nearly fronto-parallel or all in one place). Tilt the board "
            "30-45 degrees left/right/up/down and move it near the image corners"
        )
    if rms > max_rms_px:
        raise CalibrationError(
            f"{where}: RMS reprojection error {rms:.2f} px exceeds {max_rms_px} px. Check the board spec "
            f"({spec.describe()}) against the print (measure a square), that the board is flat, and that "
            "frames are sharp (worst views: "
            f"{', '.join(usable[i].source for i in np.argsort(-np.ravel(per_view))[:3])})"
        )
    w, h = image_size
    camera = Camera(camera_name, w, h, K, dist, np.eye(3), np.zeros(3), source=source)
    poses = tuple((np.ravel(r).astype(np.float64), np.ravel(t).astype(np.float64)) for r, t in zip(rvecs, tvecs))
    return IntrinsicsResult(
        camera,
        float(rms),
        np.ravel(per_view).astype(np.float64),
        tuple(d.source for d in usable),
        coverage_fraction(usable),
        focal_std,
        poses,
        rejected,
    )


def _calibrate(views: Sequence[BoardDetection], obj_all: np.ndarray, image_size: tuple[int, int], fix_k3: bool):
    """cv2.calibrateCameraExtended on board views -> rms, K, dist, rvecs, tvecs, std_intrinsics, per-view RMS."""
    import cv2

    obj = [obj_all[d.ids] for d in views]
    img = [d.corners_px.astype(np.float32).reshape(-1, 1, 2) for d in views]
    flags = cv2.CALIB_FIX_K3 if fix_k3 else 0
    criteria = (cv2.TERM_CRITERIA_COUNT + cv2.TERM_CRITERIA_EPS, 100, 1e-9)
    rms, K, dist, rvecs, tvecs, std_int, _, per_view = cv2.calibrateCameraExtended(
        obj, img, tuple(int(v) for v in image_size), None, None, flags=flags, criteria=criteria
    )
    return rms, K, dist, rvecs, tvecs, std_int, per_view


# ---------------------------------------------------------------------------- intrinsics file
def save_intrinsics(results: Sequence[IntrinsicsResult], path: str | Path) -> Path:
    """Write ``intrinsics.yaml``: per camera width, height, K, dist and quality figures.

    This file only carries intrinsics (no poses); ``selfpose3d calibrate extrinsics`` reads it.
    """
    import yaml

    data = {
        "kind": "selfpose3d-intrinsics",
        "version": 1,
        "cameras": {
            r.camera.name: {
                "width": r.camera.width,
                "height": r.camera.height,
                "K": r.camera.K.tolist(),
                "dist": r.camera.dist.tolist(),
                "rms_px": round(r.rms_px, 4),
                "views": len(r.views),
                "coverage": round(r.coverage, 3),
            }
            for r in results
        },
    }
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def load_intrinsics(path: str | Path) -> dict[str, Camera]:
    """Read ``intrinsics.yaml`` (see :func:`save_intrinsics`) -> {name: Camera with R = I, t = 0}."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise CalibrationError(f"{path}: intrinsics file not found (run `selfpose3d calibrate intrinsics` first)")
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict) or data.get("kind") != "selfpose3d-intrinsics":
        raise CalibrationError(f"{path}: not an intrinsics file (expected 'kind: selfpose3d-intrinsics')")
    cams = {}
    for name, c in (data.get("cameras") or {}).items():
        try:
            cams[str(name)] = Camera(
                str(name), c["width"], c["height"], c["K"], c["dist"], np.eye(3), np.zeros(3), source=str(path)
            )
        except (KeyError, TypeError) as exc:
            raise CalibrationError(f"{path}: camera '{name}': missing or bad field {exc}") from None
    if not cams:
        raise CalibrationError(f"{path}: no cameras listed")
    return cams
