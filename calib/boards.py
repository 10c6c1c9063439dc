"""Calibration boards: specs (ChArUco, checkerboard), detection, blur test, printable PNG/PDF.

Board frame (OpenCV's): x along the squares' columns, y along the rows (down on the printout),
z into the board; units mm. Inner corner ``id`` has object point ``board_points_mm()[id]``.

A spec is a frozen dataclass, so it loads from YAML with :mod:`calib.configkit`
(``configkit.load(BoardSpec, "board.yaml")``) or from a short string
(``BoardSpec.parse("charuco:7x5:40:30:DICT_5X5_100")``, ``"checkerboard:9x6:25"``).
``cv2`` (and ``cv2.aruco``) are imported only inside the functions that need them.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from calib.camera import CalibrationError
from calib.configkit import ConfigError, require

# Dictionary name -> number of markers it holds (pure Python, so specs validate without cv2).
ARUCO_DICTIONARIES: dict[str, int] = {
    **{f"DICT_{b}X{b}_{n}": n for b in (4, 5, 6, 7) for n in (50, 100, 250, 1000)},
    "DICT_ARUCO_ORIGINAL": 1024,
    "DICT_APRILTAG_16h5": 30,
    "DICT_APRILTAG_25h9": 35,
    "DICT_APRILTAG_36h10": 2320,
    "DICT_APRILTAG_36h11": 587,
    "DICT_ARUCO_MIP_36h12": 250,
}


@dataclass(frozen=True)
class BoardSpec:
    """A printed calibration board.

    Attributes:
        kind: ``charuco`` (needed for multi-camera extrinsics: corners have ids) or ``checkerboard``.
        squares_x: number of squares along x (columns); inner corners are ``squares_x - 1``.
        squares_y: number of squares along y (rows).
        square_mm: side of one square as printed, in mm (sets the unit of every extrinsic).
        marker_mm: side of an ArUco marker in mm (ChArUco only), smaller than ``square_mm``.
        dictionary: ArUco dictionary name (ChArUco only), e.g. ``DICT_5X5_100``.
        legacy_pattern: ChArUco boards printed with OpenCV < 4.6 and an even row count.
    """

    kind: Literal["charuco", "checkerboard"] = "charuco"
    squares_x: int = 7
    squares_y: int = 5
    square_mm: float = 40.0
    marker_mm: float = 30.0
    dictionary: str = "DICT_5X5_100"
    legacy_pattern: bool = False

    def __post_init__(self) -> None:
        require(
            self.squares_x >= 3 and self.squares_y >= 3,
            "squares_x/squares_y",
            f"need at least 3x3 squares, got {self.squares_x}x{self.squares_y}",
        )
        require(self.square_mm > 0, "square_mm", f"must be > 0 mm, got {self.square_mm}")
        if self.kind == "charuco":
            require(
                0 < self.marker_mm < self.square_mm,
                "marker_mm",
                f"must be in (0, square_mm={self.square_mm}), got {self.marker_mm}",
            )
            require(
                self.dictionary in ARUCO_DICTIONARIES,
                "dictionary",
                f"unknown ArUco dictionary '{self.dictionary}'; use one of {sorted(ARUCO_DICTIONARIES)}",
            )
            need = (self.squares_x * self.squares_y) // 2
            require(
                ARUCO_DICTIONARIES[self.dictionary] >= need,
                "dictionary",
                f"{self.dictionary} holds {ARUCO_DICTIONARIES[self.dictionary]} markers but a "
                f"{self.squares_x}x{self.squares_y} board needs {need}; pick a larger dictionary",
            )

    # ------------------------------------------------------------------ construction
    @classmethod
    def parse(cls, text: str) -> "BoardSpec":
        """Parse ``charuco:COLSxROWS:SQUARE_MM:MARKER_MM[:DICT]`` or ``checkerboard:COLSxROWS:SQUARE_MM``.

        COLS and ROWS count squares (not inner corners).
        """
        parts = text.strip().split(":")
        usage = (
            "expected 'charuco:7x5:40:30[:DICT_5X5_100]' or 'checkerboard:9x6:25' "
            "(squares, not inner corners; sizes in mm)"
        )
        try:
            kind = parts[0].lower()
            cols, rows = (int(v) for v in parts[1].lower().split("x"))
            square = float(parts[2])
            if kind == "charuco":
                marker = float(parts[3])
                dictionary = parts[4] if len(parts) > 4 else cls.dictionary
                if len(parts) > 5:
                    raise ValueError
                return cls("charuco", cols, rows, square, marker, dictionary)
            if kind == "checkerboard" and len(parts) == 3:
                return cls("checkerboard", cols, rows, square, marker_mm=0.5 * square)
        except ConfigError as exc:
            raise ConfigError(f"board spec '{text}': {exc}") from None
        except (IndexError, ValueError):
            pass
        raise ConfigError(f"board spec '{text}': {usage}")

    def describe(self) -> str:
        """Short human-readable description (used in captions and reports)."""
        size = f"{self.squares_x}x{self.squares_y} squares of {self.square_mm:g} mm"
        if self.kind == "charuco":
            return f"ChArUco {size}, markers {self.marker_mm:g} mm, {self.dictionary}"
        return f"checkerboard {size}"

    @property
    def num_corners(self) -> int:
        """Number of inner corners."""
        return (self.squares_x - 1) * (self.squares_y - 1)

    @property
    def size_mm(self) -> tuple[float, float]:
        """Printed board width, height in mm (without margin)."""
        return self.squares_x * self.square_mm, self.squares_y * self.square_mm

    def board_points_mm(self) -> np.ndarray:
        """(N,3) inner-corner object points in the board frame, row-major (id = row*(cols-1)+col)."""
        nx, ny = self.squares_x - 1, self.squares_y - 1
        col, row = np.meshgrid(np.arange(nx), np.arange(ny))
        pts = np.stack(
            [(col.ravel() + 1) * self.square_mm, (row.ravel() + 1) * self.square_mm, np.zeros(nx * ny)], axis=1
        )
        return pts.astype(np.float64)

    def cv_board(self):
        """The ``cv2.aruco.CharucoBoard`` of a ChArUco spec."""
        import cv2

        if self.kind != "charuco":
            raise ConfigError(f"board kind '{self.kind}' has no ArUco board; use kind: charuco")
        dictionary = cv2.aruco.getPredefinedDictionary(getattr(cv2.aruco, self.dictionary))
        board = cv2.aruco.CharucoBoard(
            (self.squares_x, self.squares_y), float(self.square_mm), float(self.marker_mm), dictionary
        )
        board.setLegacyPattern(bool(self.legacy_pattern))
        return board


@dataclass(frozen=True, eq=False)
class BoardDetection:
    """Board corners found in one image.

    Attributes:
        ids: (N,) inner-corner ids (index into ``BoardSpec.board_points_mm()``).
        corners_px: (N,2) sub-pixel corner positions (x right, y down, pixel centres at integers).
        image_size: (width, height) of the image.
        blur_px: estimated Gaussian blur sigma of the board region in px (see :func:`estimate_blur_px`).
        source: where the image came from (file/frame), for messages.
    """

    ids: np.ndarray
    corners_px: np.ndarray
    image_size: tuple[int, int]
    blur_px: float
    source: str = "<image>"

    def __len__(self) -> int:
        return int(self.ids.shape[0])


def to_gray(image: np.ndarray) -> np.ndarray:
    """(H,W) uint8 grey image from a grey or BGR(A) image."""
    import cv2

    image = np.asarray(image)
    if image.ndim == 3:
        code = cv2.COLOR_BGRA2GRAY if image.shape[2] == 4 else cv2.COLOR_BGR2GRAY
        image = cv2.cvtColor(image, code)
    if image.dtype != np.uint8:
        image = np.clip(image, 0, 255).astype(np.uint8)
    return image


def estimate_blur_px(gray: np.ndarray, corners_px: np.ndarray | None = None) -> float:
    """Estimate the Gaussian blur sigma (px) of the sharpest edges in the (board) region.

    A black/white step of contrast ``A`` blurred by a Gaussian of sigma ``s`` has a peak gradient of
    ``A / (s * sqrt(2 pi))``; so ``s ~ contrast / (sqrt(2 pi) * peak gradient)``. Contrast and peak
    gradient are robust percentiles over the bounding box of ``corners_px`` (the whole image when
    None), which makes the measure independent of exposure and board size. A sharp image gives
    ~0.5-1 px; motion or focus blur gives more.
    """
    import cv2

    gray = np.asarray(gray)
    if corners_px is not None and len(corners_px) >= 2:
        h, w = gray.shape[:2]
        lo = np.floor(corners_px.min(axis=0)).astype(int) - 4
        hi = np.ceil(corners_px.max(axis=0)).astype(int) + 5
        gray = gray[max(lo[1], 0) : min(hi[1], h), max(lo[0], 0) : min(hi[0], w)]
    g = gray.astype(np.float32)
    gx = cv2.Sobel(g, cv2.CV_32F, 1, 0, ksize=3) / 8.0
    gy = cv2.Sobel(g, cv2.CV_32F, 0, 1, ksize=3) / 8.0
    grad = np.sqrt(gx * gx + gy * gy)
    contrast = float(np.percentile(g, 98) - np.percentile(g, 2))
    peak = float(np.percentile(grad, 99.5))
    if contrast < 10.0 or peak <= 1e-6:
        return float("inf")
    return contrast / (np.sqrt(2.0 * np.pi) * peak)


def corners_collinear(points: np.ndarray, tol: float = 0.02) -> bool:
    """True when 2D/3D points (N,D) lie (nearly) on one line: PnP and calibration cannot use them."""
    points = np.asarray(points, dtype=np.float64)
    if len(points) < 3:
        return True
    centred = points - points.mean(axis=0)
    s = np.linalg.svd(centred, compute_uv=False)
    return bool(s[0] <= 0 or s[1] / s[0] < tol)


def detect_board(
    image: np.ndarray, spec: BoardSpec, min_corners: int = 6, source: str = "<image>"
) -> BoardDetection | None:
    """Find the board's inner corners in one image.

    Args:
        image: (H,W) grey or (H,W,3) BGR uint8 image.
        spec: the board.
        min_corners: fewer corners than this count as "not seen".
        source: label for messages.
    Returns:
        The detection, or None when the board is not found (or too few/collinear corners).
    """
    gray = to_gray(image)
    if spec.kind == "charuco":
        ids, corners = _detect_charuco(gray, spec)
    else:
        ids, corners = _detect_checkerboard(gray, spec)
    if ids is None or len(ids) < min_corners:
        return None
    if corners_collinear(spec.board_points_mm()[ids, :2]):
        return None
    h, w = gray.shape
    return BoardDetection(ids, corners, (w, h), estimate_blur_px(gray, corners), source)


def _detect_charuco(gray: np.ndarray, spec: BoardSpec):
    import cv2

    detector = cv2.aruco.CharucoDetector(spec.cv_board())
    corners, ids, _, _ = detector.detectBoard(gray)
    if ids is None or corners is None or len(ids) == 0:
        return None, None
    return ids.reshape(-1).astype(np.int64), corners.reshape(-1, 2).astype(np.float64)


def _detect_checkerboard(gray: np.ndarray, spec: BoardSpec):
    import cv2

    pattern = (spec.squares_x - 1, spec.squares_y - 1)
    found, corners = cv2.findChessboardCornersSB(gray, pattern, flags=cv2.CALIB_CB_NORMALIZE_IMAGE)
    if not found:
        found, corners = cv2.findChessboardCorners(
            gray, pattern, flags=cv2.CALIB_CB_ADAPTIVE_THRESH | cv2.CALIB_CB_NORMALIZE_IMAGE
        )
        if not found:
            return None, None
        criteria = (cv2.TERM_CRITERIA_EPS + cv2.TERM_CRITERIA_MAX_ITER, 50, 1e-3)
        corners = cv2.cornerSubPix(gray, corners, (5, 5), (-1, -1), criteria)
    corners = corners.reshape(-1, 2).astype(np.float64)
    return np.arange(len(corners), dtype=np.int64), corners


# ---------------------------------------------------------------------- printable boards
def board_image(spec: BoardSpec, px_per_mm: float, margin_mm: float = 10.0) -> np.ndarray:
    """(H,W) uint8 image of the board at ``px_per_mm`` with a white margin.

    The board's top-left square corner is at pixel ``(margin_mm * px_per_mm - 0.5)`` in both axes,
    so board point (x_mm, y_mm) is at pixel ``((x_mm + margin_mm) * px_per_mm - 0.5, ...)``.
    """
    width_mm, height_mm = spec.size_mm
    bw, bh = int(round(width_mm * px_per_mm)), int(round(height_mm * px_per_mm))
    if spec.kind == "charuco":
        board = spec.cv_board().generateImage((bw, bh), marginSize=0, borderBits=1)
    else:
        xs = (np.arange(bw) + 0.5) / px_per_mm // spec.square_mm
        ys = (np.arange(bh) + 0.5) / px_per_mm // spec.square_mm
        board = np.where((xs[None, :] + ys[:, None]) % 2 == 0, 0, 255).astype(np.uint8)
    m = int(round(margin_mm * px_per_mm))
    return np.pad(board, ((m, m), (m, m)), constant_values=255)


def write_board_png(spec: BoardSpec, path: str | Path, dpi: float = 300.0, margin_mm: float = 10.0) -> Path:
    """Write a PNG of the board at ``dpi`` (print it at 100 % scale)."""
    import cv2

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), board_image(spec, dpi / 25.4, margin_mm)):
        raise CalibrationError(f"{path}: could not write the board PNG (check the folder and extension)")
    return path


def write_board_pdf(spec: BoardSpec, path: str | Path, dpi: float = 300.0, margin_mm: float = 10.0) -> Path:
    """Write a one-page PDF whose page is exactly the board plus margin (print at "actual size").

    A minimal hand-written PDF 1.4: one Flate-compressed 8-bit grey image XObject drawn at its
    physical size, and a caption in Helvetica stating the spec and the square size to verify.
    """
    img = board_image(spec, dpi / 25.4, margin_mm)
    h, w = img.shape
    caption_pt = 14.0
    page_w = w / dpi * 72.0
    page_h = h / dpi * 72.0 + caption_pt + 6.0
    caption = (
        (f"{spec.describe()} - print at 100% (actual size); measure one square: {spec.square_mm:g} mm")
        .replace("\\", "/")
        .replace("(", "[")
        .replace(")", "]")
    )
    content = (
        f"q {page_w:.4f} 0 0 {h / dpi * 72.0:.4f} 0 {caption_pt + 6.0:.4f} cm /Im0 Do Q\n"
        f"BT /F1 8 Tf 6 6 Td ({caption}) Tj ET\n"
    ).encode("latin-1")
    data = zlib.compress(img.tobytes(), 6)
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        (
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 {page_w:.4f} {page_h:.4f}] "
            f"/Resources << /XObject << /Im0 4 0 R >> /Font << /F1 6 0 R >> >> /Contents 5 0 R >>"
        ).encode(),
        (
            f"<< /Type /XObject /Subtype /Image /Width {w} /Height {h} /ColorSpace /DeviceGray "
            f"/BitsPerComponent 8 /Filter /FlateDecode /Length {len(data)} >>\nstream\n"
        ).encode()
        + data
        + b"\nendstream",
        f"<< /Length {len(content)} >>\nstream\n".encode() + content + b"endstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for i, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{i} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += b"".join(f"{o:010d} 00000 n \n".encode() for o in offsets)
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(bytes(out))
    return path
