"""BVH export: write a take, read it back with an independent parser + forward kinematics, and
compare the reconstructed joints with the input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from app.bvh import BvhError, solve_motion, uniform_frames
from app.cli import main
from app.export import ZUP_TO_YUP, JsonlWriter, take_tracks
from capture.messages import Poses
from calib.common.skeleton import PANOPTIC15

NAMES = PANOPTIC15.joints
IDX = {n: i for i, n in enumerate(NAMES)}
# End Sites are named by the joint whose bone ends there.
END_SITE_JOINT = {"neck": "nose", "l_elbow": "l_wrist", "r_elbow": "r_wrist", "l_knee": "l_ankle", "r_knee": "r_ankle"}
SINGLE_CHILD_BONES = [
    ("l_shoulder", "l_elbow"),
    ("l_elbow", "l_wrist"),
    ("r_shoulder", "r_elbow"),
    ("r_elbow", "r_wrist"),
    ("l_hip", "l_knee"),
    ("l_knee", "l_ankle"),
    ("r_hip", "r_knee"),
    ("r_knee", "r_ankle"),
]
HIP_BONES = [("mid_hip", "neck"), ("mid_hip", "l_hip"), ("mid_hip", "r_hip")]
NECK_BONES = [("neck", "nose"), ("neck", "l_shoulder"), ("neck", "r_shoulder")]


# ---------------------------------------------------------------- independent BVH reader + FK
def _elementary(axis: str, deg: np.ndarray) -> np.ndarray:
    """(F,3,3) rotation about x, y or z by ``deg`` degrees (right-handed)."""
    a = np.deg2rad(deg)
    c, s = np.cos(a), np.sin(a)
    one, zero = np.ones_like(a), np.zeros_like(a)
    rows = {
        "X": [[one, zero, zero], [zero, c, -s], [zero, s, c]],
        "Y": [[c, zero, s], [zero, one, zero], [-s, zero, c]],
        "Z": [[c, -s, zero], [s, c, zero], [zero, zero, one]],
    }[axis]
    return np.moveaxis(np.array(rows), -1, 0)


def read_bvh_positions(path: Path, rotation_order: str | None = None) -> tuple[dict[str, np.ndarray], float]:
    """Parse a BVH file and run forward kinematics.

    Returns name -> (F,3) positions (End Sites named after ``END_SITE_JOINT``) and the frame time.
    ``rotation_order`` overrides the file's rotation channel order (to show a wrong one fails).
    """
    tokens = path.read_text().split()
    nodes: list[dict] = []  # name, parent, offset, channels
    stack: list[int] = []
    i = 0
    assert tokens[i] == "HIERARCHY"
    i += 1
    while tokens[i] != "MOTION":
        t = tokens[i]
        if t in ("ROOT", "JOINT"):
            nodes.append({"name": tokens[i + 1], "parent": stack[-1] if stack else -1, "channels": []})
            i += 2
        elif t == "End":
            assert tokens[i + 1] == "Site"
            parent = nodes[stack[-1]]["name"]
            nodes.append({"name": END_SITE_JOINT[parent], "parent": stack[-1], "channels": []})
            i += 2
        elif t == "{":
            stack.append(len(nodes) - 1)
            i += 1
        elif t == "}":
            stack.pop()
            i += 1
        elif t == "OFFSET":
            nodes[stack[-1]]["offset"] = np.array([float(v) for v in tokens[i + 1 : i + 4]])
            i += 4
        elif t == "CHANNELS":
            n = int(tokens[i + 1])
            nodes[stack[-1]]["channels"] = tokens[i + 2 : i + 2 + n]
            i += 2 + n
        else:
            raise AssertionError(f"unexpected token {t!r}")
    assert tokens[i + 1] == "Frames:" and tokens[i + 3 : i + 5] == ["Frame", "Time:"]
    F, frame_time = int(tokens[i + 2]), float(tokens[i + 5])
    n_ch = sum(len(n["channels"]) for n in nodes)
    values = np.array([float(v) for v in tokens[i + 6 :]]).reshape(F, n_ch)

    col = 0
    glob_r: list[np.ndarray] = []
    glob_p: list[np.ndarray] = []
    out = {}
    for node in nodes:
        ch = node["channels"]
        vals = values[:, col : col + len(ch)]
        col += len(ch)
        trans = node["offset"] + sum(
            (vals[:, [k]] * np.eye(3)[" XYZ".index(c[0]) - 1] for k, c in enumerate(ch) if c.endswith("position")),
            np.zeros((F, 3)),
        )
        rot = np.broadcast_to(np.eye(3), (F, 3, 3))
        rot_ch = [(c[0], vals[:, k]) for k, c in enumerate(ch) if c.endswith("rotation")]
        if rotation_order and rot_ch:
            by_axis = dict(rot_ch)
            rot_ch = [(a, by_axis[a]) for a in rotation_order]
        for axis, deg in rot_ch:
            rot = rot @ _elementary(axis, deg)
        if node["parent"] < 0:
            p, r = trans, rot
        else:
            pr, pp = glob_r[node["parent"]], glob_p[node["parent"]]
            p = pp + np.einsum("fij,fj->fi", pr, trans)
            r = pr @ rot
        glob_r.append(r)
        glob_p.append(p)
        out[node["name"]] = p
    return out, frame_time


def _as_array(pos: dict[str, np.ndarray]) -> np.ndarray:
    """(F,15,3) in Panoptic order."""
    assert sorted(pos) == sorted(NAMES)
    return np.stack([pos[n] for n in NAMES], axis=1)


# ---------------------------------------------------------------- synthetic takes
def _rot_z(a):
    c, s = np.cos(a), np.sin(a)
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1.0]])


def _rot_y(a):
    c, s = np.cos(a), np.sin(a)
    return np.array([[c, 0, s], [0, 1.0, 0], [-s, 0, c]])


def _unit(v):
    return v / np.linalg.norm(v)


def rigid_torso_take(frames: int = 90) -> np.ndarray:
    """(F,15,3) world mm, z up: a rigid torso turning, leaning and walking, limbs of constant
    length swinging in all directions (x forward, y left in the body frame)."""
    torso = {
        "mid_hip": (0, 0, 0),
        "neck": (30, 0, 520),
        "l_hip": (-10, 105, -55),
        "r_hip": (-10, -105, -55),
        "l_shoulder": (20, 175, 480),
        "r_shoulder": (20, -175, 480),
        "nose": (110, 0, 690),
    }
    limbs = {
        "l_shoulder": ("l_elbow", "l_wrist", 290.0, 255.0),
        "r_shoulder": ("r_elbow", "r_wrist", 290.0, 255.0),
        "l_hip": ("l_knee", "l_ankle", 430.0, 410.0),
        "r_hip": ("r_knee", "r_ankle", 430.0, 410.0),
    }
    out = np.zeros((frames, 15, 3))
    for f in range(frames):
        t = f / 30.0
        R = _rot_z(0.9 * t + 0.3) @ _rot_y(0.25 * np.sin(1.3 * t))
        root = np.array([400.0 * t, 150.0 * np.sin(t), 950.0 + 30.0 * np.sin(2 * t)])
        for n, v in torso.items():
            out[f, IDX[n]] = root + R @ np.asarray(v, float)
        for k, (start, (mid, end, l1, l2)) in enumerate(limbs.items()):
            ph = 1.7 * t + k
            side = 1.0 if k % 2 == 0 else -1.0
            d1 = _unit(np.array([np.sin(ph), 0.8 * side * np.cos(0.7 * ph), -0.6 - 0.4 * np.cos(ph)]))
            d2 = _unit(d1 + np.array([0.9 * np.sin(0.5 * ph + 1), 0.3, 0.5 * np.cos(ph)]))
            out[f, IDX[mid]] = out[f, IDX[start]] + R @ (l1 * d1)
            out[f, IDX[end]] = out[f, IDX[mid]] + R @ (l2 * d2)
    return out


def write_take(path: Path, tracks: dict[int, np.ndarray], times_s: np.ndarray) -> Path:
    """A JSONL take (as selfpose3d-live --export writes it) of tracks id -> (F,15,3) mm (NaN = absent)."""
    w = JsonlWriter(path)
    for f, t in enumerate(times_s):
        ids = [i for i, tr in tracks.items() if np.isfinite(tr[f]).all()]
        poses = np.zeros((len(ids), 15, 4), np.float32)
        for k, i in enumerate(ids):
            poses[k, :, :3] = tracks[i][f]
            poses[k, :, 3] = 0.9
        ns = 10**18 + int(round(t * 1e9))
        w.write(
            Poses(
                rig="toy",
                seq=f,
                frameset_seq=f,
                t_capture_ns=ns,
                t_publish_ns=ns,
                skeleton_name="panoptic15",
                joints=NAMES,
                edges=PANOPTIC15.edges,
                poses=poses,
                track_ids=np.asarray(ids, np.int64),
                timings_ms={},
            )
        )
    w.close()
    return path


def _yup(joints_mm: np.ndarray) -> np.ndarray:
    return joints_mm @ ZUP_TO_YUP.T


# ---------------------------------------------------------------- tests
def test_rigid_torso_take_round_trips_below_1mm(tmp_path, capsys):
    truth = rigid_torso_take()
    take = write_take(tmp_path / "walk.jsonl", {4: truth}, np.arange(len(truth)) / 30.0)
    assert main(["export", str(take), "--format", "bvh", "--out", str(tmp_path / "bvh")]) == 0
    assert "walk_id4.bvh (90 frames at 30.00 fps, 0 held" in capsys.readouterr().out
    pos, frame_time = read_bvh_positions(tmp_path / "bvh" / "walk_id4.bvh")
    assert frame_time == pytest.approx(1 / 30.0, abs=1e-7)
    err = np.linalg.norm(_as_array(pos) - _yup(truth), axis=-1)  # (F,15) mm
    assert err.max() < 1.0, f"max joint error {err.max():.3f} mm at joint {NAMES[err.max(axis=0).argmax()]}"
    # The check can fail: the same angles composed in another order are far off.
    wrong, _ = read_bvh_positions(tmp_path / "bvh" / "walk_id4.bvh", rotation_order="XYZ")
    assert np.linalg.norm(_as_array(wrong) - _yup(truth), axis=-1).max() > 50.0


def test_rest_pose_is_upright_t_pose_with_median_lengths():
    truth = rigid_torso_take(30)
    m = solve_motion(truth, 1 / 30.0, units="cm")
    off = dict(zip(NAMES, m.offsets))
    assert np.allclose(off["mid_hip"], 0.0)
    assert off["neck"][0] == pytest.approx(0.0, abs=1e-6) and off["neck"][1] > 50  # straight up, cm
    assert np.linalg.norm(off["neck"]) == pytest.approx(np.hypot(30, 520) / 10, abs=1e-6)
    assert off["l_hip"][0] > 0 > off["r_hip"][0]  # left is +x
    assert np.allclose(off["l_elbow"] / np.linalg.norm(off["l_elbow"]), [1, 0, 0])  # T-pose arms
    assert np.allclose(off["r_wrist"] / np.linalg.norm(off["r_wrist"]), [-1, 0, 0])
    assert np.allclose(off["l_ankle"], [0, -41.0, 0], atol=1e-6)  # legs down, 410 mm in cm


def test_synthetic_people_single_child_bones_exact_multi_child_within_tolerance(tmp_path):
    """Synthetic people (capture.synthetic): constant bone lengths, non-rigid torso and head.

    Tolerances: single-child bone vectors < 1 mm. Multi-child joints are one least-squares
    rotation for a non-rigid shape: mid_hip's bones (neck, hips) < 5 mm; neck's bones (nose and
    shoulders, which move with head yaw/pitch and trunk roll) < 40 mm (measured up to 36 mm
    over 9 synthetic people x 40 s).
    """
    from capture.synthetic.motion import MotionModel, MotionSettings

    model = MotionModel(MotionSettings(num_people=2, entries_exits=False), seed=3)
    times = np.arange(120) / 15.0
    tracks: dict[int, np.ndarray] = {}
    for f, t in enumerate(times):
        ids, present, joints = model.joints_at(float(t))
        for k in np.flatnonzero(present):
            tracks.setdefault(int(ids[k]), np.full((len(times), 15, 3), np.nan))[f] = joints[k]
    take = write_take(tmp_path / "synth.jsonl", tracks, times)
    assert main(["export", str(take), "--format", "bvh", "--out", str(tmp_path)]) == 0
    for tid, truth in tracks.items():
        pos = _as_array(read_bvh_positions(tmp_path / f"synth_id{tid}.bvh")[0])
        yup = _yup(truth)
        np.testing.assert_allclose(pos[:, IDX["mid_hip"]], yup[:, IDX["mid_hip"]], atol=0.01)
        for bones, tol in ((SINGLE_CHILD_BONES, 1.0), (HIP_BONES, 5.0), (NECK_BONES, 40.0)):
            a, b = [IDX[x] for x, _ in bones], [IDX[y] for _, y in bones]
            err = np.linalg.norm((pos[:, b] - pos[:, a]) - (yup[:, b] - yup[:, a]), axis=-1)
            assert err.max() < tol, f"id {tid}: bone error {err.max():.2f} mm >= {tol} mm"


def test_absent_frames_hold_the_last_pose_and_files_are_time_aligned(tmp_path, capsys):
    truth = rigid_torso_take(40)
    a = truth.copy()
    a[10:14] = np.nan  # person 1 leaves for 4 frames
    b = truth + [0.0, 2000.0, 0.0]
    b[:5] = np.nan  # person 2 appears at frame 5
    take = write_take(tmp_path / "two.jsonl", {1: a, 2: b}, np.arange(40) / 25.0)
    assert main(["export", str(take), "--format", "bvh", "--out", str(tmp_path), "--units", "cm"]) == 0
    out = capsys.readouterr().out
    assert "two_id1.bvh (40 frames at 25.00 fps, 4 held" in out and "two_id2.bvh (40 frames at 25.00 fps, 5 held" in out
    p1 = _as_array(read_bvh_positions(tmp_path / "two_id1.bvh")[0])
    p2 = _as_array(read_bvh_positions(tmp_path / "two_id2.bvh")[0])
    np.testing.assert_allclose(p1[10:14], np.broadcast_to(p1[9], (4, 15, 3)), atol=1e-5)
    np.testing.assert_allclose(p2[:5], np.broadcast_to(p2[5], (5, 15, 3)), atol=1e-5)
    ok = np.isfinite(a).all(axis=(1, 2))
    assert np.abs(p1[ok] * 10.0 - _yup(a[ok])).max() < 1.0  # cm back to mm


def test_dropped_records_are_resampled_to_real_time(tmp_path):
    times = np.delete(np.arange(12) / 10.0, [4, 5])  # two records lost
    frame_time, nearest = uniform_frames(times)
    assert frame_time == pytest.approx(0.1)
    assert nearest.tolist() == [0, 1, 2, 3, 3, 4, 4, 5, 6, 7, 8, 9]  # 12 frames: the take keeps its length in time


def test_only_one_track_with_track_option(tmp_path):
    truth = rigid_torso_take(10)
    take = write_take(tmp_path / "t.jsonl", {1: truth, 2: truth + 1000.0}, np.arange(10) / 30.0)
    assert main(["export", str(take), "--format", "bvh", "--track", "2", "--out", str(tmp_path / "o")]) == 0
    assert sorted(p.name for p in (tmp_path / "o").iterdir()) == ["t_id2.bvh"]


@pytest.mark.parametrize(
    "content, message",
    [
        ("", "no frames"),
        ('{"seq": 1}\n', "not a selfpose3d JSONL take"),
        ("not json at all\n", "no frames"),
    ],
)
def test_malformed_or_empty_take_is_a_clear_error(tmp_path, capsys, content, message):
    take = tmp_path / "bad.jsonl"
    take.write_text(content)
    for fmt in ("bvh", "trc"):
        assert main(["export", str(take), "--format", fmt, "--out", str(tmp_path / "o")]) == 2
        assert message in capsys.readouterr().err


def test_single_frame_unknown_track_and_wrong_skeleton_are_clear(tmp_path, capsys):
    truth = rigid_torso_take(2)
    one = write_take(tmp_path / "one.jsonl", {1: truth[:1]}, np.array([0.0]))
    assert main(["export", str(one), "--format", "bvh", "--out", str(tmp_path)]) == 2
    assert "at least 2 frames" in capsys.readouterr().err
    two = write_take(tmp_path / "two.jsonl", {1: truth}, np.array([0.0, 0.1]))
    assert main(["export", str(two), "--format", "bvh", "--track", "9", "--out", str(tmp_path)]) == 2
    assert "no track 9" in capsys.readouterr().err
    assert main(["export", str(two), "--format", "bvh", "--out", str(two)]) == 2
    assert "give a folder" in capsys.readouterr().err
    times, tracks, joints = take_tracks(two)
    from app.bvh import export_take_bvh

    with pytest.raises(BvhError, match="needs the panoptic15 joints"):
        export_take_bvh(times, tracks, list(reversed(joints)), tmp_path, "two")
    with pytest.raises(BvhError, match="units 'inch'"):
        solve_motion(truth, 0.1, units="inch")
