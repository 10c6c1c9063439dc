"""Synthetic people and motion: anthropometrics, joint limits, determinism, collisions, entries/exits."""

from __future__ import annotations

import numpy as np
import pytest

from capture.synthetic import body as B
from capture.synthetic.motion import MotionModel, MotionSettings
from calib.common.skeleton import PANOPTIC15


def test_bodies_are_anthropometrically_plausible(rng):
    bodies = [B.sample_body(rng) for _ in range(400)]
    stature = np.array([b.stature_mm for b in bodies])
    female = np.array([b.female for b in bodies])
    assert 1480 <= stature.min() and stature.max() <= 1980
    assert 0.3 < female.mean() < 0.7
    assert stature[~female].mean() - stature[female].mean() > 80  # men are taller on average
    for b in bodies:
        assert 0.16 < b.upper_arm_mm / b.stature_mm < 0.21
        assert 0.22 < b.thigh_mm / b.stature_mm < 0.27
    # Bone lengths vary between people (not one template scaled).
    ratios = np.array([b.forearm_mm / b.upper_arm_mm for b in bodies])
    assert ratios.std() > 0.02


def test_forward_kinematics_matches_body_and_panoptic_joint_spacing(rng):
    body = B.sample_body(rng, female=False)
    j = B.forward_kinematics(body, B.neutral_pose(100.0, -200.0, 0.3))
    assert j.shape == (15, 3)
    assert np.isclose(min(j[B.L_ANK, 2], j[B.R_ANK, 2]), body.ankle_height_mm)
    assert np.isclose(np.linalg.norm(j[B.L_SHO] - j[B.L_ELB]), body.upper_arm_mm)
    assert np.isclose(np.linalg.norm(j[B.R_KNE] - j[B.R_ANK]), body.shin_mm)
    assert np.allclose(j[B.MID_HIP, :2], [100.0, -200.0])
    # Head above neck above hips above knees (standing), left side on the left (+90° from heading).
    assert j[B.NOSE, 2] > j[B.NECK, 2] > j[B.MID_HIP, 2] > j[B.L_KNE, 2]
    left = np.array([-np.sin(0.3), np.cos(0.3)])
    assert (j[B.L_SHO, :2] - j[B.R_SHO, :2]) @ left > 0
    # Distances in the range of real CMU Panoptic GT (neck-nose 190-270, neck-hip 420-490 mm).
    assert 170 < np.linalg.norm(j[B.NECK] - j[B.NOSE]) < 290
    assert 400 < np.linalg.norm(j[B.NECK] - j[B.MID_HIP]) < 520


def test_joint_limits_are_enforced():
    pose = B.neutral_pose()
    pose[B.POSE_INDEX["l_knee"]] = -1.0  # hyper-extension
    pose[B.POSE_INDEX["r_elbow"]] = 4.0
    clamped = B.clamp_pose(pose)
    assert clamped[B.POSE_INDEX["l_knee"]] == B.JOINT_LIMITS["l_knee"][0]
    assert clamped[B.POSE_INDEX["r_elbow"]] == B.JOINT_LIMITS["r_elbow"][1]


@pytest.fixture(scope="module")
def crowd():
    settings = MotionSettings(
        num_people=4, walk_radius_mm=1800.0, entries_exits=True, stay_s=(6.0, 12.0), absence_s=(0.5, 1.5)
    )
    return MotionModel(settings, seed=7, chunk_steps=200, max_cached_chunks=3)


def test_motion_is_deterministic_and_frame_rate_independent(crowd):
    other = MotionModel(crowd.settings, seed=7)
    for t in (0.0, 1.0, 3.3, 7.9):
        a, b = crowd.joints_at(t), other.joints_at(t)
        assert np.array_equal(a[0], b[0]) and np.allclose(a[2], b[2], equal_nan=True)
    # 30 fps frame 60 and 15 fps frame 30 are the same instant.
    assert np.allclose(crowd.joints_at(60 / 30)[2], other.joints_at(30 / 15)[2], equal_nan=True)
    different = MotionModel(crowd.settings, seed=8).joints_at(2.0)[2]
    assert not np.allclose(np.nan_to_num(different), np.nan_to_num(crowd.joints_at(2.0)[2]))


def test_random_access_after_cache_eviction_is_exact(crowd):
    late = crowd.joints_at(25.0)[2]  # simulates far ahead, evicting early chunks
    early = crowd.joints_at(0.5)[2]  # re-simulated from its checkpoint
    fresh = MotionModel(crowd.settings, seed=7)
    assert np.allclose(early, fresh.joints_at(0.5)[2], equal_nan=True)
    assert np.allclose(late, fresh.joints_at(25.0)[2], equal_nan=True)


def test_people_keep_apart_respect_limits_and_stay_on_the_floor(crowd):
    s = crowd.settings
    min_d, min_hip_z, max_hip_z = np.inf, np.inf, 0.0
    for t in np.arange(0.0, 40.0, 0.1):
        ids, present, poses = crowd.state_at(t)
        assert np.array_equal(B.clamp_pose(poses), poses)  # every angle within its limits
        xy = poses[present][:, [B.POSE_INDEX["x_mm"], B.POSE_INDEX["y_mm"]]]
        for i in range(len(xy)):
            for k in range(i + 1, len(xy)):
                min_d = min(min_d, np.linalg.norm(xy[i] - xy[k]))
    for t in np.arange(0.0, 40.0, 0.5):
        ids, present, joints = crowd.joints_at(t)
        for p in np.flatnonzero(present):
            body = crowd.body(int(ids[p]))
            j = joints[p]
            assert abs(min(j[B.L_ANK, 2], j[B.R_ANK, 2]) - body.ankle_height_mm) < 1e-6
            # Bone lengths are constant for a person.
            assert np.isclose(np.linalg.norm(j[B.L_ELB] - j[B.L_WRI]), body.forearm_mm)
            min_hip_z = min(min_hip_z, j[B.MID_HIP, 2] / body.stature_mm)
            max_hip_z = max(max_hip_z, j[B.MID_HIP, 2] / body.stature_mm)
    assert min_d >= s.min_separation_mm * 0.97  # interpolation between steps may shave a little
    assert max_hip_z > 0.5 and min_hip_z < 0.4  # standing/walking and sitting/crouching both happen


def test_people_enter_and_leave(crowd):
    seen_absent = False
    ids_seen = set()
    for t in np.arange(0.0, 40.0, 0.25):
        ids, present, joints = crowd.joints_at(t)
        seen_absent |= not present.all()
        ids_seen |= set(ids[present].tolist())
        assert np.isnan(joints[~present]).all() and np.isfinite(joints[present]).all()
    assert seen_absent
    assert len(ids_seen) > crowd.settings.num_people  # new people (new ids) entered
    # Entering people start outside the walking disc and walk in.
    radius = np.hypot(*crowd.joints_at(0.0)[2][:, B.MID_HIP, :2].T)
    assert radius.max() < crowd.settings.walk_radius_mm + 1


def test_walking_is_smooth(crowd):
    dt = 1 / 30
    prev = None
    for k in range(300):
        ids, present, joints = crowd.joints_at(k * dt)
        if prev is not None:
            same = (ids == prev[0]) & present & prev[1]
            speed = np.linalg.norm(joints[same] - prev[2][same], axis=-1) / dt  # mm/s per joint
            assert speed.max() < 6000.0  # no teleporting joints (fast arm swings stay < 6 m/s)
        prev = (ids, present, joints)


def test_skeleton_order_is_panoptic15():
    assert B.NUM_JOINTS == PANOPTIC15.num_joints
    assert PANOPTIC15.joints[B.L_WRI] == "l_wrist" and PANOPTIC15.joints[B.R_ANK] == "r_ankle"


def test_people_keep_clear_of_cameras():
    cameras = ((1500.0, 0.0), (-1200.0, 900.0))
    model = MotionModel(
        MotionSettings(
            num_people=4,
            walk_radius_mm=1900.0,
            obstacles_mm=cameras,
            obstacle_clearance_mm=800.0,
            stay_s=(4.0, 8.0),
            absence_s=(0.5, 1.0),
        ),
        seed=3,
    )
    closest = np.inf
    for t in np.arange(0.0, 30.0, 0.1):
        ids, present, poses = model.state_at(t)
        xy = poses[present][:, [B.POSE_INDEX["x_mm"], B.POSE_INDEX["y_mm"]]]
        for c in cameras:
            if len(xy):
                closest = min(closest, np.linalg.norm(xy - np.asarray(c), axis=-1).min())
    assert closest >= 800.0 - 1.0


def test_bodies_do_not_interpenetrate():
    model = MotionModel(MotionSettings(num_people=5, walk_radius_mm=1600.0), seed=3)
    closest = np.inf
    for t in np.arange(0.0, 60.0, 0.25):
        ids, present, joints = model.joints_at(t)
        j = joints[present]
        for a in range(len(j)):
            for b in range(a + 1, len(j)):
                closest = min(closest, np.linalg.norm(j[a][:, None] - j[b][None], axis=-1).min())
    assert closest > 120.0  # joint centres of different people never overlap (limb radii ~25-80 mm)
