"""Multi-camera extrinsics from a ChArUco board seen by several cameras at once.

Pipeline (all units mm, from the board's ``square_mm``):

1. board pose in every camera that sees it (PnP, IPPE + LM refinement), outliers dropped;
2. pairwise relative poses from frames two cameras share (robust rotation/translation average);
3. a maximum spanning tree over "frames shared" chains every camera to a reference camera;
4. a joint bundle adjustment of all camera poses and all board poses
   (``scipy.optimize.least_squares``, sparse Jacobian structure, trimmed for outliers; intrinsics fixed);
5. the world frame: the board of one frame lying on the floor (z up, origin at its first corner)
   or a camera (z = the camera's up, y = its viewing direction), shifted by ``origin_mm``.

Reports per-camera reprojection RMS and per-pair two-view triangulation RMS.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np

from calib.boards import BoardDetection, BoardSpec, corners_collinear
from calib.camera import CalibrationError, Camera, CameraRig
from calib.projection import distort_normalized, undistort_points

log = logging.getLogger(__name__)

# Board face-up on the floor: board x -> world x, board y -> world -y, board z (into board) -> world -z.
BOARD_TO_FLOOR = np.diag([1.0, -1.0, -1.0])
# Board hung upright on a wall: board x -> world x, board y (down the print) -> world -z,
# board z (into the wall) -> world y.
BOARD_TO_WALL = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]])
# Camera frame -> "camera world": x right, y forward (optical axis), z up (= -camera y).
CAMERA_TO_UPRIGHT = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]])


@dataclass(frozen=True)
class WorldFrame:
    """How to place the world frame.

    Attributes:
        reference: ``board`` (the board of frame ``board_frame`` lies on the floor, face up; world
            origin at its first inner corner, x along its columns, z up), ``wall`` (that board hangs
            upright on a wall, printed side out: origin at its first inner corner, x along its
            columns, z up, y into the wall) or ``camera`` (world = camera ``camera`` with z = its up
            direction and y its viewing direction).
        board_frame: frame index for ``board``/``wall`` (default 0: start recordings with the board
            in place).
        camera: camera name for ``camera``; None means the BA reference camera.
        origin_mm: the point (in the frame above) that becomes the world origin.
    """

    reference: str = "board"
    board_frame: int = 0
    camera: str | None = None
    origin_mm: tuple[float, float, float] = (0.0, 0.0, 0.0)

    def __post_init__(self) -> None:
        if self.reference not in ("board", "wall", "camera"):
            raise CalibrationError(
                f"world frame: reference must be 'board', 'wall' or 'camera', got '{self.reference}'"
            )


@dataclass(frozen=True, eq=False)
class ExtrinsicsResult:
    """Calibrated rig with its error report.

    Attributes:
        rig: cameras with K/dist from the intrinsics and R/t_mm in the chosen world frame.
        per_camera_rms_px: {camera: RMS reprojection error after the bundle adjustment}.
        per_camera_corners: {camera: number of corners used}.
        per_pair_rms_px: {(cam_a, cam_b): (RMS px of two-view triangulation reprojection, corners)}.
        reference: the BA reference camera.
        frames_used: indices of frames seen by at least two cameras.
        board_poses_w: {frame: (R_wb (3,3), t_wb_mm (3,))} refined board poses in the world.
    """

    rig: CameraRig
    per_camera_rms_px: dict[str, float]
    per_camera_corners: dict[str, int]
    per_pair_rms_px: dict[tuple[str, str], tuple[float, int]]
    reference: str
    frames_used: tuple[int, ...]
    board_poses_w: dict[int, tuple[np.ndarray, np.ndarray]]

    def report(self) -> str:
        """Multi-line human-readable report."""
        lines = [
            f"extrinsics: {len(self.rig)} cameras, {len(self.frames_used)} frames seen by >= 2 cameras, "
            f"BA reference {self.reference}",
            "per camera (reprojection RMS after bundle adjustment):",
        ]
        for cam in self.rig:
            c = cam.center_mm
            lines.append(
                f"  {cam.name:>12}: {self.per_camera_rms_px[cam.name]:.3f} px over "
                f"{self.per_camera_corners[cam.name]} corners; centre ({c[0]:.0f}, {c[1]:.0f}, {c[2]:.0f}) mm"
            )
        lines.append("per pair (two-view triangulation, reprojection RMS):")
        for (a, b), (rms, n) in sorted(self.per_pair_rms_px.items()):
            lines.append(f"  {a} - {b}: {rms:.3f} px over {n} corners")
        return "\n".join(lines)


# --------------------------------------------------------------------------- small SE(3) helpers
def _rotvec_to_matrix(rv: np.ndarray) -> np.ndarray:
    from scipy.spatial.transform import Rotation

    return Rotation.from_rotvec(rv).as_matrix()


def _matrix_to_rotvec(R: np.ndarray) -> np.ndarray:
    from scipy.spatial.transform import Rotation

    return Rotation.from_matrix(R).as_rotvec()


def _inv(T: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    R, t = T
    return R.T, -R.T @ t


def _compose(A, B):
    """A ∘ B (apply B first)."""
    return A[0] @ B[0], A[0] @ B[1] + A[1]


def _robust_mean_pose(poses: Sequence[tuple[np.ndarray, np.ndarray]], max_deg: float = 5.0):
    """Average of (R, t) samples after dropping rotations far from the medoid."""
    from scipy.spatial.transform import Rotation

    rots = Rotation.from_matrix(np.stack([p[0] for p in poses]))
    ts = np.stack([p[1] for p in poses])
    if len(poses) > 2:
        dist = np.array([(rots[i].inv() * rots).magnitude().sum() for i in range(len(poses))])
        medoid = rots[int(np.argmin(dist))]
        keep = np.rad2deg((medoid.inv() * rots).magnitude()) < max_deg
        t_med = np.median(ts, axis=0)
        keep &= np.linalg.norm(ts - t_med, axis=1) < max(3.0 * np.median(np.linalg.norm(ts - t_med, axis=1)), 1.0)
        if keep.sum() >= 1:
            rots, ts = rots[np.nonzero(keep)[0]], ts[keep]
    return rots.mean().as_matrix(), ts.mean(axis=0)


def project_with(points_c: np.ndarray, K: np.ndarray, dist: np.ndarray) -> np.ndarray:
    """Camera-frame points (N,3) -> pixels (N,2) with per-row or shared K (…,3,3) and dist (…,5)."""
    xy = points_c[:, :2] / points_c[:, 2:3]
    xy_d = distort_normalized(xy, np.asarray(dist).T if np.ndim(dist) == 2 else dist)
    K = np.broadcast_to(K, (len(points_c), 3, 3))
    u = K[:, 0, 0] * xy_d[:, 0] + K[:, 0, 1] * xy_d[:, 1] + K[:, 0, 2]
    v = K[:, 1, 1] * xy_d[:, 1] + K[:, 1, 2]
    return np.stack([u, v], axis=1)


# --------------------------------------------------------------------------- step 1: PnP
def board_pose_pnp(det: BoardDetection, spec: BoardSpec, camera: Camera) -> tuple[np.ndarray, np.ndarray, float]:
    """Board->camera pose (R (3,3), t_mm (3,)) of one detection and its RMS reprojection error (px)."""
    import cv2

    obj = spec.board_points_mm()[det.ids]
    img = det.corners_px
    ok, rvecs, tvecs, errs = cv2.solvePnPGeneric(obj, img, camera.K, camera.dist, flags=cv2.SOLVEPNP_IPPE)
    if not ok or len(rvecs) == 0:
        return np.eye(3), np.zeros(3), np.inf
    best = int(np.argmin(np.ravel(errs)))
    rvec, tvec = cv2.solvePnPRefineLM(obj, img, camera.K, camera.dist, rvecs[best], tvecs[best])
    R = cv2.Rodrigues(rvec)[0]
    t = np.ravel(tvec)
    uv = project_with(obj @ R.T + t, camera.K, camera.dist)
    return R, t, float(np.sqrt(np.mean(np.sum((uv - img) ** 2, axis=1))))


# --------------------------------------------------------------------------- main entry
def calibrate_extrinsics(
    cameras: Sequence[Camera],
    detections: Mapping[str, Sequence[BoardDetection | None]],
    spec: BoardSpec,
    world: WorldFrame = WorldFrame(),
    reference: str | None = None,
    min_corners: int = 6,
    max_pnp_rms_px: float = 3.0,
    min_shared_frames: int = 2,
    outlier_px: float = 2.0,
    max_nfev: int = 200,
    source: str = "<detections>",
) -> ExtrinsicsResult:
    """Calibrate all cameras' poses from synchronised board detections.

    Args:
        cameras: cameras with calibrated intrinsics (their R/t are ignored).
        detections: {camera name: per-frame detection or None}; all lists have the same length F
            (frame f of every camera was captured at the same instant).
        spec: the board (must be ChArUco: corners need ids to match across cameras).
        world: where to put the world frame.
        reference: BA reference camera (default: the best-connected camera).
        min_corners: detections with fewer corners are ignored.
        max_pnp_rms_px: single-view board poses worse than this are ignored (bad detections).
        min_shared_frames: a camera pair needs this many shared frames to be chained.
        outlier_px: after a first bundle-adjustment pass, corners whose error exceeds
            ``max(outlier_px, 4 x median)`` are dropped and the problem is solved again.
        max_nfev: iteration budget per pass.
        source: folder name for messages.
    Raises:
        CalibrationError: board not ChArUco, frame counts differ, a camera never sees the board or
            shares too few frames with the others, or the world board frame is not usable.
    """
    if spec.kind != "charuco":
        raise CalibrationError(
            f"{source}: multi-camera extrinsics need a ChArUco board (corner ids are matched "
            f"across cameras); got a {spec.kind}. Print one with `selfpose3d calibrate board`"
        )
    cams = {c.name: c for c in cameras}
    missing = [n for n in cams if n not in detections]
    if missing:
        raise CalibrationError(f"{source}: no detections for camera(s) {missing}")
    counts = {n: len(detections[n]) for n in cams}
    if len(set(counts.values())) != 1:
        raise CalibrationError(
            f"{source}: cameras have different frame counts {counts}; extrinsics need "
            "synchronised frames (the same number of frames per camera, frame i = same instant)"
        )
    if len(cams) < 2:
        raise CalibrationError(f"{source}: extrinsics need at least 2 cameras, got {list(cams)}")

    poses_cb = _single_view_poses(cams, detections, spec, min_corners, max_pnp_rms_px, source)
    ref, cam_from_ref = _chain_cameras(cams, poses_cb, reference, min_shared_frames, source)
    frames = sorted({f for (_, f) in poses_cb if sum((c, f) in poses_cb for c in cams) >= 2})
    board_in_ref = {}
    for f in frames:
        samples = [_compose(_inv(cam_from_ref[c]), poses_cb[(c, f)]) for c in cams if (c, f) in poses_cb]
        board_in_ref[f] = _robust_mean_pose(samples)
    cam_from_ref, board_in_ref, residuals = _bundle_adjust(
        cams, detections, spec, ref, cam_from_ref, board_in_ref, poses_cb, outlier_px, max_nfev
    )
    world_from_ref = _world_transform(world, ref, cam_from_ref, board_in_ref, poses_cb, cams, spec, source)
    ref_from_world = _inv(world_from_ref)
    rig_cams = []
    for name, cam in cams.items():
        R, t = _compose(cam_from_ref[name], ref_from_world)
        rig_cams.append(cam.replace(R=R, t_mm=t, source=f"{source} (calibrate extrinsics)"))
    rig = CameraRig(tuple(rig_cams))
    per_cam_rms = {
        n: float(np.sqrt(2.0 * np.mean(residuals[n] ** 2))) if len(residuals[n]) else float("nan") for n in cams
    }
    per_cam_n = {n: len(residuals[n]) // 2 for n in cams}
    boards_w = {f: _compose(world_from_ref, board_in_ref[f]) for f in frames}
    pairs = pair_triangulation_rms(rig, detections, min_corners)
    return ExtrinsicsResult(rig, per_cam_rms, per_cam_n, pairs, ref, tuple(frames), boards_w)


def _single_view_poses(cams, detections, spec, min_corners, max_pnp_rms_px, source):
    poses = {}
    for name, cam in cams.items():
        seen = 0
        for f, det in enumerate(detections[name]):
            if det is None or len(det) < min_corners or corners_collinear(spec.board_points_mm()[det.ids, :2]):
                continue
            seen += 1
            R, t, rms = board_pose_pnp(det, spec, cam)
            if rms <= max_pnp_rms_px and t[2] > 0:
                poses[(name, f)] = (R, t)
            else:
                log.warning("camera %s frame %d: board pose RMS %.2f px, ignored", name, f, rms)
        if seen == 0:
            raise CalibrationError(
                f"{source}: camera '{name}' never sees the board (with >= {min_corners} corners) in "
                f"{len(detections[name])} frames; point it at the board area or move the board "
                "into its view while another camera also sees it"
            )
    return poses


def _chain_cameras(cams, poses_cb, reference, min_shared, source):
    names = list(cams)
    rel: dict[tuple[str, str], tuple] = {}
    shared: dict[tuple[str, str], int] = {}
    frames_of = {n: {f for (c, f) in poses_cb if c == n} for n in names}
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            common = sorted(frames_of[a] & frames_of[b])
            shared[(a, b)] = shared[(b, a)] = len(common)
            if len(common) >= min_shared:
                samples = [_compose(poses_cb[(b, f)], _inv(poses_cb[(a, f)])) for f in common]  # b <- a
                rel[(b, a)] = _robust_mean_pose(samples)
                rel[(a, b)] = _inv(rel[(b, a)])
    if reference is None:
        reference = max(names, key=lambda n: (sum(shared.get((n, m), 0) for m in names if m != n), -names.index(n)))
    elif reference not in cams:
        raise CalibrationError(f"{source}: reference camera '{reference}' is not one of {names}")
    cam_from_ref = {reference: (np.eye(3), np.zeros(3))}
    while len(cam_from_ref) < len(names):  # Prim: attach the outside camera sharing the most frames
        best = max(
            ((shared[(a, b)], a, b) for a in cam_from_ref for b in names if b not in cam_from_ref and (b, a) in rel),
            default=None,
        )
        if best is None:
            lost = [n for n in names if n not in cam_from_ref]
            raise CalibrationError(
                f"{source}: camera(s) {lost} never see the board in the same frame as the calibrated camera(s) "
                f"{sorted(cam_from_ref)} (at least {_frames_text(min_shared)} needed). Record frames where "
                "the board is visible to one of them and one of the others at the same time"
            )
        _, a, b = best
        cam_from_ref[b] = _compose(rel[(b, a)], cam_from_ref[a])
    return reference, cam_from_ref


def _frames_text(n: int) -> str:
    return f"{n} shared frame{'s' if n != 1 else ''}"


# --------------------------------------------------------------------------- step 4: bundle adjustment
def _bundle_adjust(cams, detections, spec, ref, cam_from_ref, board_in_ref, poses_cb, outlier_px, max_nfev):
    """Joint refinement of camera poses (all but ``ref``) and board poses; trimmed least squares."""
    from scipy.optimize import least_squares
    from scipy.sparse import lil_matrix
    from scipy.spatial.transform import Rotation

    names = list(cams)
    free = [n for n in names if n != ref]
    frames = sorted(board_in_ref)
    obj = spec.board_points_mm()
    pts, uvs, cam_idx, frame_idx = [], [], [], []
    for ci, n in enumerate(names):
        for fi, f in enumerate(frames):
            if (n, f) not in poses_cb:  # not seen, or its single-view pose was rejected
                continue
            det = detections[n][f]
            pts.append(obj[det.ids])
            uvs.append(det.corners_px)
            cam_idx += [ci] * len(det)
            frame_idx += [fi] * len(det)
    X_b, uv = np.concatenate(pts), np.concatenate(uvs)
    cam_idx, frame_idx = np.asarray(cam_idx), np.asarray(frame_idx)
    K = np.stack([cams[n].K for n in names])[cam_idx]
    dist = np.stack([cams[n].dist for n in names])[cam_idx]
    n_cam = 6 * len(free)
    free_slot = np.array([free.index(n) if n in free else -1 for n in names])  # camera -> parameter block

    def pose_vec(T):
        return np.concatenate([_matrix_to_rotvec(T[0]), T[1]])

    x = np.concatenate([pose_vec(cam_from_ref[n]) for n in free] + [pose_vec(board_in_ref[f]) for f in frames])

    def unpack(x):
        cam_p = np.zeros((len(names), 6))
        cam_p[free_slot >= 0] = x[:n_cam].reshape(-1, 6)
        return cam_p, x[n_cam:].reshape(-1, 6)

    def residuals(x, keep):
        cam_p, frame_p = unpack(x)
        fp, cp = frame_p[frame_idx[keep]], cam_p[cam_idx[keep]]
        X_r = Rotation.from_rotvec(fp[:, :3]).apply(X_b[keep]) + fp[:, 3:]
        X_c = Rotation.from_rotvec(cp[:, :3]).apply(X_r) + cp[:, 3:]
        return (project_with(X_c, K[keep], dist[keep]) - uv[keep]).ravel()

    def sparsity(keep):
        rows = np.arange(int(keep.sum()))
        blocks = free_slot[cam_idx[keep]]
        S = lil_matrix((2 * len(rows), len(x)), dtype=np.int8)
        on_free = blocks >= 0
        for k in range(6):
            for r2 in (0, 1):
                S[2 * rows + r2, n_cam + 6 * frame_idx[keep] + k] = 1
                S[2 * rows[on_free] + r2, 6 * blocks[on_free] + k] = 1
        return S

    keep = np.ones(len(uv), bool)
    cost0 = 0.5 * np.sum(residuals(x, keep) ** 2)
    for _ in range(2):  # solve, drop gross outliers (mis-detected corners), solve again if any
        x = least_squares(
            residuals,
            x,
            args=(keep,),
            jac_sparsity=sparsity(keep),
            x_scale="jac",
            method="trf",
            xtol=1e-9,
            ftol=1e-9,
            max_nfev=max_nfev,
        ).x
        err = np.linalg.norm(residuals(x, np.ones(len(uv), bool)).reshape(-1, 2), axis=1)
        inliers = err <= max(outlier_px, 4.0 * float(np.median(err)))
        if np.array_equal(inliers, keep):
            break
        keep = inliers
    cam_p, frame_p = unpack(x)
    new_cams = {n: (_rotvec_to_matrix(cam_p[i, :3]), cam_p[i, 3:].copy()) for i, n in enumerate(names)}
    new_boards = {f: (_rotvec_to_matrix(frame_p[i, :3]), frame_p[i, 3:].copy()) for i, f in enumerate(frames)}
    res = residuals(x, keep).reshape(-1, 2)
    per_cam = {n: res[cam_idx[keep] == i].ravel() for i, n in enumerate(names)}
    log.info(
        "bundle adjustment: %d corners (%d outliers dropped), %d parameters, cost %.3g -> %.3g",
        len(uv),
        int((~keep).sum()),
        len(x),
        cost0,
        0.5 * np.sum(res**2),
    )
    return new_cams, new_boards, per_cam


# --------------------------------------------------------------------------- step 5: world frame
def _world_transform(world: WorldFrame, ref, cam_from_ref, board_in_ref, poses_cb, cams, spec, source):
    """(R, t) mapping reference-camera coordinates to world coordinates."""
    offset = np.asarray(world.origin_mm, dtype=np.float64)
    if world.reference == "camera":
        name = world.camera or ref
        if name not in cams:
            raise CalibrationError(f"{source}: world camera '{name}' is not one of {list(cams)}")
        R = CAMERA_TO_UPRIGHT @ cam_from_ref[name][0]
        t = CAMERA_TO_UPRIGHT @ cam_from_ref[name][1] - offset
        return R, t
    frame = world.board_frame
    if frame not in board_in_ref:
        best = sorted(board_in_ref, key=lambda f: -sum((c, f) in poses_cb for c in cams))[:10]
        raise CalibrationError(
            f"{source}: the world is set by the board of frame {frame} (on the {world.reference}), "
            "but fewer than two cameras see it there. Record the first frame with the board in "
            f"place in view of several cameras, pick another frame with --world-frame "
            f"(frames seen by the most cameras: {best}), or use --world camera:NAME"
        )
    R_rb, t_rb = board_in_ref[frame]
    board_from_ref = _inv((R_rb, t_rb))
    first_corner_b = spec.board_points_mm()[0]
    M = BOARD_TO_WALL if world.reference == "wall" else BOARD_TO_FLOOR
    return M @ board_from_ref[0], M @ (board_from_ref[1] - first_corner_b) - offset


# --------------------------------------------------------------------------- report helpers
def triangulate_two_view(uv_a: np.ndarray, uv_b: np.ndarray, cam_a: Camera, cam_b: Camera) -> np.ndarray:
    """Vectorised linear triangulation of N points from two views: (N,2), (N,2) px -> (N,3) world mm."""
    rows = []
    for uv, cam in ((uv_a, cam_a), (uv_b, cam_b)):
        xy = undistort_points(uv, cam)
        P = np.concatenate([cam.R, cam.t_mm[:, None]], axis=1)
        rows.append(xy[:, 0:1] * P[2] - P[0])
        rows.append(xy[:, 1:2] * P[2] - P[1])
    A = np.stack(rows, axis=1)  # (N,4,4)
    _, _, vt = np.linalg.svd(A)
    X = vt[:, -1]
    return X[:, :3] / X[:, 3:4]


def pair_triangulation_rms(
    rig: CameraRig, detections: Mapping[str, Sequence[BoardDetection | None]], min_corners: int = 6
) -> dict[tuple[str, str], tuple[float, int]]:
    """{(a, b): (RMS px, corners)}: corners both cameras saw, triangulated from the pair and reprojected."""
    from calib.projection import project_points

    out = {}
    names = rig.names
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            errs = []
            for da, db in zip(detections[a], detections[b]):
                if da is None or db is None or len(da) < min_corners or len(db) < min_corners:
                    continue
                common, ia, ib = np.intersect1d(da.ids, db.ids, return_indices=True)
                if len(common) == 0:
                    continue
                X = triangulate_two_view(da.corners_px[ia], db.corners_px[ib], rig[a], rig[b])
                errs.append(project_points(X, rig[a]) - da.corners_px[ia])
                errs.append(project_points(X, rig[b]) - db.corners_px[ib])
            if errs:
                e = np.concatenate(errs)
                out[(a, b)] = (float(np.sqrt(np.mean(np.sum(e**2, axis=1)))), len(e) // 2)
    return out
