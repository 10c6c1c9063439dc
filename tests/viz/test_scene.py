"""Viewer scene state: layers, pause, follow, HUD and stream stats (pure, no display)."""

from __future__ import annotations

import time
from types import SimpleNamespace

import numpy as np
import pytest

from viz.scene import LAYERS, SceneState

from .conftest import make_message, make_poses


@pytest.fixture
def state(toy_rig):
    return SceneState(toy_rig, (0.0, 0.0, 800.0), (6000.0, 6000.0, 2000.0))


def test_frame_holds_people_static_layers_and_hud(state, two_people):
    poses, ids = two_people
    state.update_poses(make_message(poses, ids, latency_ms=40.0))
    fr = state.frame()
    assert len(fr.skeleton_lines.lines) == 28
    assert len(fr.joints.points_w) == 30
    assert [lb.text.split()[1] for lb in fr.labels] == ["3", "8"]
    assert len(fr.static_lines.lines) == 7 + 7 + 12 + 4 * 10  # grid x, grid y, box, 4 frusta
    assert "people 2" in fr.hud[0] and "latency" in fr.hud[0]
    assert 39.0 < state.stats.latency_ms < 1000.0


def test_layer_toggles_remove_geometry(state, two_people):
    poses, ids = two_people
    state.update_poses(make_message(poses, ids))
    for key, layer in zip("1234567", LAYERS):
        assert state.handle_key(key) == f"{layer} off"
    fr = state.frame()
    assert len(fr.skeleton_lines.lines) == 0 and fr.joints is None and fr.labels == [] and fr.hud == []
    assert len(fr.static_lines.lines) == 0
    assert state.handle_key("6") == "volume on"
    assert len(state.frame().static_lines.lines) == 12
    with pytest.raises(ValueError, match="unknown layer"):
        state.toggle("people")


def test_pause_freezes_the_picture_but_keeps_counting(state, two_people):
    poses, ids = two_people
    state.update_poses(make_message(poses, ids, seq=1))
    assert state.handle_key("space") == "paused"
    moved = poses.copy()
    moved[..., 0] += 1000
    assert state.update_poses(make_message(moved, ids, seq=2)) is False
    np.testing.assert_allclose(state.poses, poses)
    assert state.stats.received == 2
    assert any("PAUSED" in line for line in state.frame().hud)
    state.handle_key("space")
    assert state.update_poses(make_message(moved, ids, seq=3))
    np.testing.assert_allclose(state.poses, moved)


def test_follow_cycles_through_ids_and_tracks_the_root(state, two_people):
    poses, ids = two_people
    state.update_poses(make_message(poses, ids))
    assert state.handle_key("f") == "following id 3"
    np.testing.assert_allclose(state.frame().follow_target_mm, poses[0, 2, :3])
    assert state.handle_key("f") == "following id 8"
    np.testing.assert_allclose(state.frame().follow_target_mm, poses[1, 2, :3])
    assert state.handle_key("f") == "free view"
    assert state.frame().follow_target_mm is None
    state.handle_key("f")
    state.update_poses(make_message(make_poses([(0, 0)]), [9], seq=2))  # id 3 left the scene
    assert state.frame().follow_target_mm is None


def test_hud_reports_missing_cameras_gaps_and_stale_stream(state, two_people):
    poses, ids = two_people
    now = time.time_ns()
    state.update_poses(make_message(poses, ids, seq=1), now_ns=now)
    state.update_poses(make_message(poses, ids, seq=5), now_ns=now + 33_000_000)
    state.update_status(SimpleNamespace(process="capture", missing=("cam2",), state="running", error=""))
    hud = state.hud_lines(now_ns=now + 5_000_000_000)
    text = "\n".join(hud)
    assert "missing cameras: cam2" in text
    assert "skipped 3" in text
    assert "no poses for 5 s" in text
    red = np.all(state.frame().static_lines.colors == (1.0, 0.15, 0.15), axis=1)
    assert red.sum() == 10


def test_fps_is_measured_from_arrivals(state, two_people):
    poses, ids = two_people
    t0 = 1_000_000_000
    for i in range(11):
        state.update_poses(make_message(poses, ids, seq=i + 1), now_ns=t0 + i * 40_000_000)
    assert state.stats.fps == pytest.approx(25.0)
    assert state.stats.gaps == 0


def test_keys_for_the_window_are_passed_through(state):
    assert state.handle_key("s") == "screenshot"
    assert state.handle_key("q") == "quit"
    assert state.handle_key("x") == ""


def test_missing_views_and_error_reported_inside_poses_messages(state, two_people):
    poses, ids = two_people
    msg = make_message(poses, ids)
    msg.extra = {"missing": ["cam1"], "views_present": 3, "mpjpe_mm": 23.4}
    state.update_poses(msg)
    text = "\n".join(state.hud_lines())
    assert "missing cameras: cam1" in text and "MPJPE vs truth 23.4 mm" in text
    msg2 = make_message(poses, ids, seq=2)
    msg2.extra = {"missing": []}
    state.update_poses(msg2)
    assert state.missing_cameras == [] and "MPJPE" not in "\n".join(state.hud_lines())


def test_stage_timings_slowest_first_and_wrapped(state, two_people):
    poses, ids = two_people
    msg = make_message(poses, ids)
    msg.timings_ms = {"a": 1.0, "b": 50.0, "c": 3.0, "d": 20.0, "e": 0.5, "f": 7.0, "g": 0.1}
    state.update_poses(msg)
    hud = state.hud_lines()
    assert hud[1] == "b 50.0  d 20.0  f 7.0" and hud[2] == "c 3.0  a 1.0  e 0.5 ms"
    assert not any(line.startswith("g ") or " g " in line for line in hud)
