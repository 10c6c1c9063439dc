"""BVH (Biovision hierarchy) export of one tracked person of a recorded take.

The hierarchy is the Panoptic-15 tree rooted at ``mid_hip``; leaves (nose, wrists, ankles) are
End Sites. Coordinates are y up (OpenSim/BVH convention, ``app.export.ZUP_TO_YUP``). The rest
pose faces +Z with the person's left on +X: legs straight down, arms in a T-pose, and the torso
shape (hips, neck, shoulders, nose around ``mid_hip``/``neck``) taken from the take itself, in a
canonical frame. OFFSETs are the person's median bone lengths over the take.

Per frame, each joint's rotation (local, ZXY Euler in degrees) is the one that takes its rest
child direction(s) to the observed ones: the shortest-arc rotation for a single child (no twist
about the bone), a Kabsch fit to all child bones for ``mid_hip`` and ``neck``. Single-child bones
are therefore reproduced exactly in direction (and in length when the person's bone lengths are
constant); multi-child joints are a least-squares compromise when the torso is not rigid.

The MOTION is resampled to a uniform grid at the take's median record interval (nearest record),
so a take with dropped records still plays at its real speed. A frame whose record lacks the
person (absent, or a joint missing) holds the person's last pose (their first pose before they
appear); BVH has no comment syntax that every importer accepts, so this is documented in
docs/stream_format.md rather than written into the file.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.spatial.transform import Rotation

from calib.common.errors import BvhError
from app.export import ZUP_TO_YUP
from calib.common.skeleton import PANOPTIC15, Skeleton

UNITS_PER_MM = {"mm": 1.0, "cm": 0.1, "m": 0.001}
EULER_ORDER = "ZXY"  # BVH channel order: R = Rz @ Rx @ Ry (intrinsic)
_ROT_CHANNELS = " ".join(f"{a}rotation" for a in EULER_ORDER)

# Multi-child joints: canonical frame of their rest shape, as (up from, up to), (left from, left to).
CANONICAL_FRAMES = {
    "mid_hip": (("mid_hip", "neck"), ("r_hip", "l_hip")),
    "neck": (("mid_hip", "neck"), ("r_shoulder", "l_shoulder")),
}
# Single-child joints: rest direction of their child bone (x = left, y = up, z = forward).
LIMB_REST_DIRS = {
    "l_shoulder": (1.0, 0.0, 0.0),
    "l_elbow": (1.0, 0.0, 0.0),
    "r_shoulder": (-1.0, 0.0, 0.0),
    "r_elbow": (-1.0, 0.0, 0.0),
    "l_hip": (0.0, -1.0, 0.0),
    "l_knee": (0.0, -1.0, 0.0),
    "r_hip": (0.0, -1.0, 0.0),
    "r_knee": (0.0, -1.0, 0.0),
}


@dataclass(frozen=True)
class BvhTree:
    """A skeleton as a rooted tree.

    Attributes:
        names: joint names, skeleton order.
        root: index of the root joint.
        parent: (J,) parent index, -1 for the root.
        children: per joint, its child indices.
        order: depth-first order of the joints (the BVH file order).
    """

    names: tuple[str, ...]
    root: int
    parent: tuple[int, ...]
    children: tuple[tuple[int, ...], ...]
    order: tuple[int, ...]

    @property
    def channel_joints(self) -> tuple[int, ...]:
        """Joints with rotation channels (every non-leaf), in file order."""
        return tuple(j for j in self.order if self.children[j])


def skeleton_tree(skeleton: Skeleton = PANOPTIC15) -> BvhTree:
    """The skeleton's edges as a tree rooted at ``skeleton.root``."""
    J = skeleton.num_joints
    adj: list[list[int]] = [[] for _ in range(J)]
    for a, b in skeleton.edges:
        adj[a].append(b)
        adj[b].append(a)
    parent = [-2] * J
    parent[skeleton.root] = -1
    children: list[list[int]] = [[] for _ in range(J)]
    order: list[int] = []
    stack = [skeleton.root]
    while stack:
        j = stack.pop()
        order.append(j)
        for c in sorted(adj[j], reverse=True):
            if parent[c] == -2:
                parent[c] = j
                children[j].append(c)
                stack.append(c)
    loose = [skeleton.joints[j] for j in range(J) if parent[j] == -2]
    if loose:
        raise BvhError(f"skeleton {skeleton.name}: joints {loose} are not connected to the root")
    kids = tuple(tuple(sorted(c)) for c in children)
    return BvhTree(skeleton.joints, skeleton.root, tuple(parent), kids, tuple(order))


def _unit(v: np.ndarray) -> np.ndarray:
    """Unit vectors along the last axis (NaN for zero vectors)."""
    n = np.linalg.norm(v, axis=-1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return v / np.where(n > 1e-9, n, np.nan)


def _canonical_frames(pos: np.ndarray, idx: dict[str, int], joint: str) -> np.ndarray:
    """(F,3,3) rotation whose columns are the (left, up, forward) axes of a multi-child joint."""
    (u0, u1), (l0, l1) = CANONICAL_FRAMES[joint]
    up = _unit(pos[:, idx[u1]] - pos[:, idx[u0]])
    left = pos[:, idx[l1]] - pos[:, idx[l0]]
    left = _unit(left - np.sum(left * up, axis=-1, keepdims=True) * up)
    return np.stack([left, up, np.cross(left, up)], axis=-1)


def rest_offsets(tree: BvhTree, pos: np.ndarray) -> np.ndarray:
    """Rest-pose OFFSETs (J,3) from a y-up trajectory (F,J,3) (NaN frames ignored).

    Lengths are median bone lengths; directions are :data:`LIMB_REST_DIRS` for single-child
    joints and the median shape in the joint's canonical frame for multi-child joints.
    """
    idx = {n: i for i, n in enumerate(tree.names)}
    offsets = np.zeros((len(tree.names), 3))
    for j in tree.order:
        kids = tree.children[j]
        if not kids:
            continue
        if len(kids) == 1:
            dirs = {kids[0]: np.asarray(LIMB_REST_DIRS[tree.names[j]])}
        else:
            frames = _canonical_frames(pos, idx, tree.names[j])
            local = np.einsum("fji,fkj->fki", frames, pos[:, list(kids)] - pos[:, j : j + 1])  # (F,K,3)
            dirs = dict(zip(kids, _unit(np.nanmedian(local, axis=0))))
        for c, d in dirs.items():
            length = np.nanmedian(np.linalg.norm(pos[:, c] - pos[:, j], axis=-1))
            offsets[c] = length * d
    return offsets


def _shortest_arc(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(F,3,3) shortest-arc rotations taking the direction ``a`` (3,) to the directions ``b`` (F,3)."""
    a = _unit(a)
    b = _unit(b)
    axis = np.cross(a, b)
    s = np.linalg.norm(axis, axis=-1)
    c = b @ a
    angle = np.arctan2(s, c)
    # Antiparallel: any axis perpendicular to a.
    perp = np.cross(a, [1.0, 0.0, 0.0] if abs(a[0]) < 0.9 else [0.0, 1.0, 0.0])
    axis = np.where((s < 1e-9)[:, None], perp, axis)
    rotvec = _unit(axis) * angle[:, None]
    rotvec[(s < 1e-9) & (c > 0)] = 0.0
    out = np.full((len(b), 3, 3), np.nan)
    ok = np.isfinite(rotvec).all(axis=-1)
    if ok.any():
        out[ok] = Rotation.from_rotvec(rotvec[ok]).as_matrix()
    return out


def _kabsch(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(F,3,3) rotations R minimising sum_k |R a_k - b_k|^2 for rest vectors a (K,3), observed b (F,K,3)."""
    h = np.einsum("ki,fkj->fij", a, b)  # (F,3,3) cross-covariance
    out = np.full((len(b), 3, 3), np.nan)
    ok = np.isfinite(h).all(axis=(1, 2))
    if ok.any():
        u, _, vt = np.linalg.svd(h[ok])
        d = np.sign(np.linalg.det(np.swapaxes(vt, 1, 2) @ np.swapaxes(u, 1, 2)))
        fix = np.ones((ok.sum(), 3))
        fix[:, 2] = d
        out[ok] = np.swapaxes(vt, 1, 2) @ (fix[:, :, None] * np.swapaxes(u, 1, 2))
    return out


def local_rotations(tree: BvhTree, pos: np.ndarray, offsets: np.ndarray) -> dict[int, np.ndarray]:
    """Local rotation (F,3,3) of every channel joint that maps its rest child offsets onto the
    observed child bones of the y-up trajectory ``pos`` (F,J,3); NaN where the fit is undefined."""
    F = len(pos)
    glob: dict[int, np.ndarray] = {}
    local: dict[int, np.ndarray] = {}
    for j in tree.channel_joints:
        p = tree.parent[j]
        g_parent = glob[p] if p >= 0 else np.broadcast_to(np.eye(3), (F, 3, 3))
        kids = list(tree.children[j])
        observed = np.einsum("fji,fkj->fki", g_parent, pos[:, kids] - pos[:, j : j + 1])  # parent frame
        if len(kids) == 1:
            local[j] = _shortest_arc(offsets[kids[0]], observed[:, 0])
        else:
            local[j] = _kabsch(offsets[kids], observed)
        glob[j] = g_parent @ local[j]
    return local


def _hold(values: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Replace invalid frames by the last valid one (the first valid one before it)."""
    if not valid.any():
        raise BvhError("no frame with a complete pose to export")
    src = np.maximum.accumulate(np.where(valid, np.arange(len(valid)), -1))
    src[src < 0] = np.flatnonzero(valid)[0]
    return values[src]


def uniform_frames(times_s: np.ndarray) -> tuple[float, np.ndarray]:
    """Frame time (median record interval, s) and, per uniform frame, the nearest record index."""
    times_s = np.asarray(times_s, float)
    if len(times_s) < 2:
        raise BvhError(f"a take of {len(times_s)} frame(s) has no frame rate; record at least 2 frames")
    dt = np.diff(times_s)
    if not (dt > 0).all():
        k = int(np.flatnonzero(dt <= 0)[0])
        raise BvhError(
            f"record {k + 1}: capture time does not increase ({times_s[k]:.6f} s -> "
            f"{times_s[k + 1]:.6f} s); the take's records must be in capture order"
        )
    frame_time = float(np.median(dt))
    n = int(round((times_s[-1] - times_s[0]) / frame_time)) + 1
    grid = times_s[0] + frame_time * np.arange(n)
    right = np.clip(np.searchsorted(times_s, grid), 1, len(times_s) - 1)
    nearest = np.where(grid - times_s[right - 1] <= times_s[right] - grid, right - 1, right)
    return frame_time, nearest


@dataclass(frozen=True)
class BvhMotion:
    """One person ready to write: rest offsets, root positions and local Euler angles.

    Attributes:
        tree: the hierarchy.
        offsets: (J,3) rest offsets in ``units``.
        root_pos: (F,3) root position per frame in ``units``, y up.
        euler_deg: (F,C,3) ZXY Euler angles of the channel joints (``tree.channel_joints`` order).
        frame_time_s: seconds per frame.
        held: (F,) True where the pose is held (person absent or pose incomplete in that frame).
        units: "mm", "cm" or "m".
    """

    tree: BvhTree
    offsets: np.ndarray
    root_pos: np.ndarray
    euler_deg: np.ndarray
    frame_time_s: float
    held: np.ndarray
    units: str


def solve_motion(
    joints_mm: np.ndarray, frame_time_s: float, units: str = "mm", skeleton: Skeleton = PANOPTIC15
) -> BvhMotion:
    """A BVH motion from one person's trajectory.

    Args:
        joints_mm: (F,J,3) world mm, z up, NaN where the person is absent (held frames).
        frame_time_s: seconds per frame (> 0).
        units: output length unit, one of :data:`UNITS_PER_MM`.
    """
    if units not in UNITS_PER_MM:
        raise BvhError(f"units '{units}': use one of {sorted(UNITS_PER_MM)}")
    joints_mm = np.asarray(joints_mm, float)
    if joints_mm.ndim != 3 or joints_mm.shape[1:] != (skeleton.num_joints, 3):
        raise BvhError(f"joints: expected (F,{skeleton.num_joints},3) for {skeleton.name}, got {joints_mm.shape}")
    if not frame_time_s > 0:
        raise BvhError(f"frame time must be > 0 s, got {frame_time_s}")
    tree = skeleton_tree(skeleton)
    pos = joints_mm @ ZUP_TO_YUP.T * UNITS_PER_MM[units]
    valid = np.isfinite(pos).all(axis=(1, 2))
    if not valid.any():
        raise BvhError("the person has no frame with all joints; nothing to export")
    offsets = rest_offsets(tree, pos[valid])
    local = local_rotations(tree, pos, offsets)
    rot = np.stack([local[j] for j in tree.channel_joints], axis=1)  # (F,C,3,3)
    valid &= np.isfinite(rot).all(axis=(1, 2, 3))
    rot = _hold(rot, valid)
    root_pos = _hold(pos[:, tree.root], valid)
    F, C = rot.shape[:2]
    euler = Rotation.from_matrix(rot.reshape(-1, 3, 3)).as_euler(EULER_ORDER, degrees=True).reshape(F, C, 3)
    euler = np.unwrap(euler, axis=0, period=360.0)  # no 360-degree jumps between frames
    return BvhMotion(tree, offsets, root_pos, euler, float(frame_time_s), ~valid, units)


def format_bvh(motion: BvhMotion) -> str:
    """The BVH text of a motion."""
    tree, off = motion.tree, motion.offsets
    lines = ["HIERARCHY"]

    def block(j: int, depth: int) -> None:
        pad = "  " * depth
        if j == tree.root:
            lines.extend(
                [
                    f"ROOT {tree.names[j]}",
                    "{",
                    "  OFFSET 0.000000 0.000000 0.000000",
                    f"  CHANNELS 6 Xposition Yposition Zposition {_ROT_CHANNELS}",
                ]
            )
        else:
            lines.extend(
                [
                    f"{pad}JOINT {tree.names[j]}",
                    f"{pad}{{",
                    f"{pad}  OFFSET {off[j, 0]:.6f} {off[j, 1]:.6f} {off[j, 2]:.6f}",
                    f"{pad}  CHANNELS 3 {_ROT_CHANNELS}",
                ]
            )
        for c in tree.children[j]:
            if tree.children[c]:
                block(c, depth + 1)
            else:  # leaf joint: an End Site at its offset
                lines.extend(
                    [
                        f"{pad}  End Site",
                        f"{pad}  {{",
                        f"{pad}    OFFSET {off[c, 0]:.6f} {off[c, 1]:.6f} {off[c, 2]:.6f}",
                        f"{pad}  }}",
                    ]
                )
        lines.append(f"{pad}}}")

    block(tree.root, 0)
    F = len(motion.root_pos)
    lines += ["MOTION", f"Frames: {F}", f"Frame Time: {motion.frame_time_s:.8f}"]
    values = np.concatenate([motion.root_pos, motion.euler_deg.reshape(F, -1)], axis=1)
    lines += [" ".join(f"{v:.6f}" for v in row) for row in values]
    return "\n".join(lines) + "\n"


def write_bvh(path: str | Path, motion: BvhMotion) -> Path:
    """Write a motion as a BVH file; returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(format_bvh(motion), encoding="utf-8")
    return path


def check_joint_names(joint_names: list[str] | tuple[str, ...], source: str, skeleton: Skeleton = PANOPTIC15) -> None:
    """BvhError unless the take's joints are the skeleton's joints, in order."""
    if tuple(joint_names) != skeleton.joints:
        raise BvhError(
            f"{source}: BVH export needs the {skeleton.name} joints {list(skeleton.joints)}, "
            f"the take has {list(joint_names)}"
        )


def export_take_bvh(
    times_s: np.ndarray,
    tracks: dict[int, np.ndarray],
    joint_names: list[str],
    out_dir: str | Path,
    stem: str,
    units: str = "mm",
    track_ids: list[int] | None = None,
) -> list[tuple[Path, BvhMotion]]:
    """Write ``<out_dir>/<stem>_id<N>.bvh`` per track (see :func:`app.export.take_tracks`).

    Every file covers the whole take on the same uniform time grid, so several people import
    time-aligned; a person's frames before they appear, in gaps and after they leave hold
    their nearest earlier pose (their first pose before they appear).
    """
    check_joint_names(joint_names, stem)
    frame_time, nearest = uniform_frames(times_s)
    ids = sorted(tracks) if track_ids is None else list(track_ids)
    for tid in ids:
        if tid not in tracks:
            raise BvhError(f"{stem}: no track {tid}; tracks: {sorted(tracks)}")
    out = []
    for tid in ids:
        motion = solve_motion(tracks[tid][nearest], frame_time, units)
        out.append((write_bvh(Path(out_dir) / f"{stem}_id{tid}.bvh", motion), motion))
    return out
