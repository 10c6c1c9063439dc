"""Proposal extraction (NMS, top-K, unravel, flags) and soft-argmax against direct references."""

from __future__ import annotations

import torch

from engine.posenet import soft_argmax
from engine.project import grid_axes, grid_points
from engine.rootnet import extract_proposals

SIZE, CENTER, BINS = (8000.0, 8000.0, 2000.0), (0.0, -500.0, 800.0), (20, 20, 8)


def _voxel(ix, iy, iz):
    return grid_points(SIZE, CENTER, BINS).reshape(*BINS, 3)[ix, iy, iz].float()


def test_proposals_positions_flags_order_and_nms():
    cube = torch.zeros(1, *BINS)
    cube[0, 5, 6, 3] = 0.9
    cube[0, 5, 7, 3] = 0.8  # neighbour of a stronger peak: suppressed by 3x3x3 NMS
    cube[0, 15, 2, 6] = 0.5
    cube[0, 10, 10, 1] = 0.2  # below threshold: listed, flagged -1
    props = extract_proposals(cube, SIZE, CENTER, max_people=4, threshold=0.3)
    assert props.shape == (1, 4, 5)
    p = props[0]
    torch.testing.assert_close(p[:, 4], torch.tensor([0.9, 0.5, 0.2, 0.0]))
    torch.testing.assert_close(p[:, 3], torch.tensor([0.0, 0.0, -1.0, -1.0]))
    torch.testing.assert_close(p[0, :3], _voxel(5, 6, 3))
    torch.testing.assert_close(p[1, :3], _voxel(15, 2, 6))
    torch.testing.assert_close(p[2, :3], _voxel(10, 10, 1))


def test_zero_and_max_people():
    empty = extract_proposals(torch.zeros(1, *BINS), SIZE, CENTER, max_people=10, threshold=0.3)[0]
    assert empty.shape == (10, 5) and bool((empty[:, 3] == -1).all())
    cube = torch.zeros(1, *BINS)
    for k in range(12):  # 12 isolated peaks, 10 kept
        cube[0, 1 + (k % 6) * 3, 1 + (k // 6) * 10, 4] = 0.4 + 0.05 * k
    full = extract_proposals(cube, SIZE, CENTER, max_people=10, threshold=0.3)[0]
    assert bool((full[:, 3] == 0).all())
    assert torch.all(full[:-1, 4] >= full[1:, 4]) and float(full[-1, 4]) > 0.45


def test_soft_argmax_recovers_known_joint_and_equals_flat_reference():
    bins, size = (16, 16, 16), (2000.0, 2000.0, 2000.0)
    axes = [a.float() for a in grid_axes(size, (0, 0, 0), bins)]
    centers = torch.tensor([[100.0, -50.0, 900.0], [-1200.0, 300.0, 800.0]])
    vol = torch.zeros(2, 15, *bins)
    vol[0, 3, 4, 9, 11] = 1.0  # sharp peak: beta=100 makes it a near-argmax
    vol[1, 7, 8, 8, 8] = 1.0
    joints = soft_argmax(vol, centers, axes, beta=100.0)
    assert joints.shape == (2, 15, 3)
    expect0 = centers[0] + torch.stack([axes[0][4], axes[1][9], axes[2][11]])
    torch.testing.assert_close(joints[0, 3], expect0, atol=1e-2, rtol=0)
    torch.testing.assert_close(
        joints[1, 7], centers[1] + torch.stack([axes[0][8], axes[1][8], axes[2][8]]), atol=1e-2, rtol=0
    )
    # flat reference of SPEC §2.7 on a smooth random volume
    vol = torch.rand(2, 15, *bins) * 0.05
    pts = [grid_points(size, c.tolist(), bins).float() for c in centers]  # (N,3) each
    ref = torch.stack([torch.softmax(100.0 * vol[p].reshape(15, -1), -1) @ pts[p] for p in range(2)])
    torch.testing.assert_close(soft_argmax(vol, centers, axes, 100.0), ref, atol=1e-2, rtol=0)


def test_pose_net_input_skip_adds_the_cube_and_round_trips_through_a_model_file(tmp_path):
    from engine.checkpoints import load_model_file, save_checkpoint
    from engine.config import load_preset
    from engine.model import SelfPose3dModel
    from engine.posenet import PoseNet

    torch.manual_seed(0)
    plain = PoseNet(15, (4, 8, 16, 32), 3)
    skip = PoseNet(15, (4, 8, 16, 32), 3, input_skip=True)
    skip.load_state_dict(plain.state_dict())  # no extra weights
    cubes = torch.rand(2, 15, 8, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(skip(cubes), plain(cubes) + cubes)
    cfg = load_preset("light", ("pose_net.input_skip=true",))
    model = SelfPose3dModel(cfg)
    path = save_checkpoint(tmp_path / "m.pt", model, {})
    loaded, _ = load_model_file(path)
    assert loaded.config.pose_net.input_skip and loaded.pose_net.input_skip
    assert not SelfPose3dModel(load_preset("released")).pose_net.input_skip
