"""Anthropometrics and forward kinematics on the Panoptic-15 skeleton (world z up, mm).

A :class:`Body` holds one person's segment lengths (drawn from stature and sex with individual
variation, after Drillis & Contini's segment/stature ratios). A pose is a :class:`PoseParams`
vector of joint angles plus a ground position and heading; :func:`forward_kinematics` turns it
into the 15 joints with the feet on the floor. Joint limits are enforced by :func:`clamp_pose`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from calib.common.skeleton import PANOPTIC15

NUM_JOINTS = PANOPTIC15.num_joints
# Joint indices (PANOPTIC15 order).
NECK, NOSE, MID_HIP = 0, 1, 2
L_SHO, L_ELB, L_WRI, L_HIP, L_KNE, L_ANK = 3, 4, 5, 6, 7, 8
R_SHO, R_ELB, R_WRI, R_HIP, R_KNE, R_ANK = 9, 10, 11, 12, 13, 14

# Pose parameter layout (radians unless noted). Index names keep the motion code readable.
POSE_FIELDS = (
    "x_mm",
    "y_mm",
    "yaw",  # ground position of the pelvis, heading (0 = +x)
    "trunk_pitch",
    "trunk_roll",
    "head_yaw",
    "head_pitch",
    "l_sho_flex",
    "l_sho_abd",
    "l_elbow",
    "r_sho_flex",
    "r_sho_abd",
    "r_elbow",
    "l_hip_flex",
    "l_hip_abd",
    "l_knee",
    "r_hip_flex",
    "r_hip_abd",
    "r_knee",
)
POSE_INDEX = {name: i for i, name in enumerate(POSE_FIELDS)}
POSE_DIM = len(POSE_FIELDS)

# Joint limits (lo, hi) per angle field; flexion positive = limb moves forward / knee & elbow bend.
JOINT_LIMITS = {
    "trunk_pitch": (-0.3, 1.45),
    "trunk_roll": (-0.35, 0.35),
    "head_yaw": (-1.2, 1.2),
    "head_pitch": (-0.6, 0.8),
    "l_sho_flex": (-0.9, 3.0),
    "l_sho_abd": (-0.2, 2.8),
    "l_elbow": (0.0, 2.5),
    "r_sho_flex": (-0.9, 3.0),
    "r_sho_abd": (-0.2, 2.8),
    "r_elbow": (0.0, 2.5),
    "l_hip_flex": (-0.5, 2.2),
    "l_hip_abd": (-0.25, 0.8),
    "l_knee": (0.0, 2.4),
    "r_hip_flex": (-0.5, 2.2),
    "r_hip_abd": (-0.25, 0.8),
    "r_knee": (0.0, 2.4),
}
_LIMIT_IDX = np.array([POSE_INDEX[k] for k in JOINT_LIMITS])
_LIMIT_LO = np.array([v[0] for v in JOINT_LIMITS.values()])
_LIMIT_HI = np.array([v[1] for v in JOINT_LIMITS.values()])


@dataclass(frozen=True)
class Body:
    """One person's segment lengths in mm (all derived from ``stature_mm``).

    Attributes:
        stature_mm: standing height.
        female: sex used for the proportions.
        torso_mm: mid-hip to neck.
        shoulder_half_mm, hip_half_mm: half distances between the shoulder / hip joints.
        upper_arm_mm, forearm_mm, thigh_mm, shin_mm: limb segment lengths.
        ankle_height_mm: ankle joint height above the floor when standing.
        head_radius_mm: head sphere radius (rendering).
        neck_to_nose_up_mm, neck_to_nose_fwd_mm: nose offset from the neck in the head frame.
    """

    stature_mm: float
    female: bool
    torso_mm: float
    shoulder_half_mm: float
    hip_half_mm: float
    upper_arm_mm: float
    forearm_mm: float
    thigh_mm: float
    shin_mm: float
    ankle_height_mm: float
    head_radius_mm: float
    neck_to_nose_up_mm: float
    neck_to_nose_fwd_mm: float

    @property
    def bone_lengths_mm(self) -> dict[str, float]:
        """Named segment lengths (for checks and reports)."""
        return {
            "torso": self.torso_mm,
            "upper_arm": self.upper_arm_mm,
            "forearm": self.forearm_mm,
            "thigh": self.thigh_mm,
            "shin": self.shin_mm,
            "shoulder_width": 2 * self.shoulder_half_mm,
            "hip_width": 2 * self.hip_half_mm,
        }


# Mean stature (mm) and sd by sex (adult populations), and the plausible clip range.
_STATURE = {False: (1755.0, 70.0), True: (1625.0, 65.0)}
_STATURE_RANGE_MM = (1480.0, 1980.0)
# Segment / stature ratios (Drillis & Contini), tuned so that joint-to-joint distances match
# CMU Panoptic's joint definitions (e.g. its neck sits above the shoulder line, shoulders narrower).
_RATIOS = {
    "torso": 0.262,
    "upper_arm": 0.186,
    "forearm": 0.146,
    "thigh": 0.245,
    "shin": 0.246,
    "ankle": 0.039,
    "head_r": 0.062,
    "nose_up": 0.108,
    "nose_fwd": 0.058,
}
_SHOULDER_HALF = {False: 0.094, True: 0.088}
_HIP_HALF = {False: 0.057, True: 0.063}


def sample_body(rng: np.random.Generator, female: bool | None = None) -> Body:
    """Draw one adult body: stature from the sex's distribution, each segment varied by ~3 %."""
    if female is None:
        female = bool(rng.random() < 0.5)
    mean, sd = _STATURE[female]
    stature = float(np.clip(rng.normal(mean, sd), *_STATURE_RANGE_MM))

    def seg(ratio: float) -> float:
        return float(stature * ratio * np.clip(rng.normal(1.0, 0.03), 0.92, 1.08))

    return Body(
        stature_mm=stature,
        female=female,
        torso_mm=seg(_RATIOS["torso"]),
        shoulder_half_mm=seg(_SHOULDER_HALF[female]),
        hip_half_mm=seg(_HIP_HALF[female]),
        upper_arm_mm=seg(_RATIOS["upper_arm"]),
        forearm_mm=seg(_RATIOS["forearm"]),
        thigh_mm=seg(_RATIOS["thigh"]),
        shin_mm=seg(_RATIOS["shin"]),
        ankle_height_mm=stature * _RATIOS["ankle"],
        head_radius_mm=seg(_RATIOS["head_r"]),
        neck_to_nose_up_mm=seg(_RATIOS["nose_up"]),
        neck_to_nose_fwd_mm=seg(_RATIOS["nose_fwd"]),
    )


def clamp_pose(pose: np.ndarray) -> np.ndarray:
    """Clip the angle fields of pose vectors (...,POSE_DIM) to :data:`JOINT_LIMITS` (copy)."""
    out = np.array(pose, dtype=np.float64, copy=True)
    out[..., _LIMIT_IDX] = np.clip(out[..., _LIMIT_IDX], _LIMIT_LO, _LIMIT_HI)
    return out


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v)


def _perp(v: np.ndarray, d: np.ndarray, fallback: np.ndarray) -> np.ndarray:
    """Unit component of ``v`` orthogonal to unit ``d`` (``fallback`` if degenerate)."""
    w = v - (v @ d) * d
    n = np.linalg.norm(w)
    if n < 1e-6:
        w = fallback - (fallback @ d) * d
        n = np.linalg.norm(w)
    return w / n


def _limb(
    start: np.ndarray,
    flex: float,
    abd: float,
    bend: float,
    len1: float,
    len2: float,
    down: np.ndarray,
    fwd: np.ndarray,
    out: np.ndarray,
    bend_sign: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Two-segment limb: returns (middle joint, end joint).

    ``flex`` swings the limb from ``down`` toward ``fwd``; ``abd`` lifts it sideways toward
    ``out``; ``bend`` folds the second segment (toward the front for arms, ``bend_sign`` = +1;
    toward the back for legs, ``bend_sign`` = -1).
    """
    sagittal = np.cos(flex) * down + np.sin(flex) * fwd
    d1 = _unit(np.cos(abd) * sagittal + np.sin(abd) * out)
    # Direction in which the hinge folds: perpendicular to d1 in the limb's sagittal plane.
    fold = bend_sign * (np.cos(flex) * fwd - np.sin(flex) * down)
    n = _perp(fold, d1, -down)
    d2 = np.cos(bend) * d1 + np.sin(bend) * n
    mid = start + len1 * d1
    return mid, mid + len2 * d2


def forward_kinematics(body: Body, pose: np.ndarray) -> np.ndarray:
    """Joints of one person.

    Args:
        body: segment lengths.
        pose: (POSE_DIM,) pose vector (see :data:`POSE_FIELDS`); angles are clamped to limits.
    Returns:
        (15,3) world joints in mm, Panoptic-15 order, lowest ankle at ``ankle_height_mm``.
    """
    p = clamp_pose(pose)
    g = {name: p[i] for name, i in POSE_INDEX.items()}
    up = np.array([0.0, 0.0, 1.0])
    fwd = np.array([np.cos(g["yaw"]), np.sin(g["yaw"]), 0.0])
    left = np.array([-fwd[1], fwd[0], 0.0])
    # Trunk frame: pitched forward about the left axis, then rolled about its own forward axis.
    tp, tr = g["trunk_pitch"], g["trunk_roll"]
    t_up = np.cos(tp) * up + np.sin(tp) * fwd
    t_fwd = np.cos(tp) * fwd - np.sin(tp) * up
    t_left = np.cos(tr) * left + np.sin(tr) * t_up
    t_up = np.cos(tr) * t_up - np.sin(tr) * left

    j = np.zeros((NUM_JOINTS, 3))
    j[MID_HIP] = 0.0
    j[NECK] = body.torso_mm * t_up
    j[L_HIP] = body.hip_half_mm * left
    j[R_HIP] = -body.hip_half_mm * left
    sho_drop = 0.06 * body.torso_mm * t_up
    j[L_SHO] = j[NECK] + body.shoulder_half_mm * t_left - sho_drop
    j[R_SHO] = j[NECK] - body.shoulder_half_mm * t_left - sho_drop
    # Head frame: trunk frame turned by head yaw (about t_up) and pitch (nod forward).
    hy, hp = g["head_yaw"], g["head_pitch"]
    h_fwd = np.cos(hy) * t_fwd + np.sin(hy) * t_left
    h_up = np.cos(hp) * t_up + np.sin(hp) * h_fwd
    h_fwd = np.cos(hp) * h_fwd - np.sin(hp) * t_up
    j[NOSE] = j[NECK] + body.neck_to_nose_up_mm * h_up + body.neck_to_nose_fwd_mm * h_fwd

    for side, sign, (sho, elb, wri) in (("l", 1.0, (L_SHO, L_ELB, L_WRI)), ("r", -1.0, (R_SHO, R_ELB, R_WRI))):
        j[elb], j[wri] = _limb(
            j[sho],
            g[f"{side}_sho_flex"],
            g[f"{side}_sho_abd"],
            g[f"{side}_elbow"],
            body.upper_arm_mm,
            body.forearm_mm,
            -t_up,
            t_fwd,
            sign * t_left,
            +1.0,
        )
    for side, sign, (hip, kne, ank) in (("l", 1.0, (L_HIP, L_KNE, L_ANK)), ("r", -1.0, (R_HIP, R_KNE, R_ANK))):
        j[kne], j[ank] = _limb(
            j[hip],
            g[f"{side}_hip_flex"],
            g[f"{side}_hip_abd"],
            g[f"{side}_knee"],
            body.thigh_mm,
            body.shin_mm,
            -up,
            fwd,
            sign * left,
            -1.0,
        )
    # Feet on the floor: the lower ankle sits at ankle height.
    lift = body.ankle_height_mm - min(j[L_ANK, 2], j[R_ANK, 2])
    j += np.array([g["x_mm"], g["y_mm"], lift])
    return j


def neutral_pose(x_mm: float = 0.0, y_mm: float = 0.0, yaw: float = 0.0) -> np.ndarray:
    """(POSE_DIM,) relaxed standing pose at a ground position."""
    p = np.zeros(POSE_DIM)
    p[POSE_INDEX["x_mm"]], p[POSE_INDEX["y_mm"]], p[POSE_INDEX["yaw"]] = x_mm, y_mm, yaw
    for side in "lr":
        p[POSE_INDEX[f"{side}_sho_abd"]] = 0.12
        p[POSE_INDEX[f"{side}_elbow"]] = 0.15
        p[POSE_INDEX[f"{side}_hip_abd"]] = 0.04
        p[POSE_INDEX[f"{side}_knee"]] = 0.03
    return p
