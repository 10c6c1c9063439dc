"""SyntheticWorld facade: construction from a rig YAML, timestamps, empty rooms, errors."""

from __future__ import annotations


import numpy as np
import pytest

from calib.common.paths import REPO_ROOT
from capture.synthetic.rigs import ring_rig
from capture.synthetic.world import SyntheticWorld, world_for_rig

REPO = REPO_ROOT


def test_world_for_the_default_rig_yaml():
    from calib.rig_config import load_rig

    rig = load_rig(REPO / "configs" / "rig.yaml")
    world = world_for_rig(rig)
    assert world.num_people == rig.config.synthetic.people and world.fps == rig.config.synthetic.fps
    people = world.people(7)
    assert people.joints_mm.shape == (world.num_people, 15, 3)
    assert np.isclose(people.t_s, 7 / world.fps) and world.timestamp_ns(7) == round(7e9 / world.fps)
    # Walking happens inside the volume, near its centre.
    roots = people.joints_mm[people.present, 2]
    assert np.all(np.abs(roots[:, :2] - np.asarray(rig.volume.center_mm[:2])) < np.asarray(rig.volume.size_mm[:2]) / 2)
    assert np.array_equal(people.in_volume, people.present)


def test_in_volume_flags_people_outside_the_box():
    world = SyntheticWorld(
        ring_rig(2, width=160, height=90),
        num_people=3,
        seed=2,
        fps=2.0,
        volume_center_mm=(0.0, 0.0, 800.0),
        volume_size_mm=(2000.0, 2000.0, 2000.0),
        walk_radius_mm=2000.0,
    )
    inside = outside = 0
    for k in range(40):
        people = world.people(k)
        root = people.joints_mm[:, 2]
        for p in np.flatnonzero(people.present):
            box = np.all(np.abs(root[p] - [0.0, 0.0, 800.0]) <= 1000.0)
            assert people.in_volume[p] == box
            inside += box
            outside += not box
    assert inside and outside


def test_empty_room_and_errors():
    world = SyntheticWorld(ring_rig(2, width=160, height=90), num_people=0, seed=0, fps=10.0)
    assert world.people(3).ids.shape == (0,)
    assert world.truth(3).joints_2d.shape == (2, 0, 15, 2)
    imgs = world.render(3)
    assert imgs[0].shape == (90, 160, 3) and imgs[0].std() > 5  # the textured room alone
    with pytest.raises(IndexError, match="out of range"):
        world.render(3, views=[2])
    with pytest.raises(ValueError, match="fps"):
        SyntheticWorld(world.rig, num_people=1, seed=0, fps=0.0)
    with pytest.raises(ValueError, match="frame_index"):
        world.people(-1)


def test_frames_are_shared_read_only():
    world = SyntheticWorld(ring_rig(2, width=160, height=90), num_people=2, seed=4, fps=10.0)
    people = world.people(2)
    with pytest.raises(ValueError):
        people.joints_mm[0, 0, 0] = 1.0  # cached frames cannot be corrupted by a consumer
    assert np.array_equal(world.render(2, views=[1])[0], world.render(2)[1])
