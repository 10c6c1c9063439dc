"""Pose regression net (SPEC §2.7): V2V over person cubes + soft-argmax."""

from __future__ import annotations

import torch
from torch import nn

from engine.v2v import V2VNet


class PoseNet(nn.Module):
    """V2V ``(P,J,X,Y,Z) -> (P,J,X,Y,Z)`` joint volumes (child ``v2v_net`` as released).

    With ``input_skip`` the output is ``V2V(cubes) + cubes``: each joint's fused evidence reaches
    the soft-argmax directly and the V2V learns a correction (no extra weights; the released
    model has it off). Narrow V2Vs (the light preset's 15 -> 4 channels) need it.
    """

    def __init__(
        self,
        num_joints: int = 15,
        channels: tuple[int, int, int, int] = (16, 32, 64, 128),
        front_kernel: int = 7,
        input_skip: bool = False,
    ):
        super().__init__()
        self.v2v_net = V2VNet(num_joints, num_joints, channels, front_kernel)
        self.input_skip = bool(input_skip)

    def forward(self, cubes: torch.Tensor) -> torch.Tensor:
        out = self.v2v_net(cubes)
        return out + cubes if self.input_skip else out


def soft_argmax(
    volumes: torch.Tensor, centers_mm: torch.Tensor, axes_offsets_mm: list[torch.Tensor], beta: float
) -> torch.Tensor:
    """Expected voxel position under ``softmax(beta * volume)`` over the whole cube.

    The cube grid is separable, so the expectation is computed from the three marginals
    (identical to the flattened sum ``sum_i p_i x_i`` of upstream).

    Args:
        volumes: (P,J,X,Y,Z).
        centers_mm: (P,3) cube centres.
        axes_offsets_mm: three 1-D offset vectors (X,), (Y,), (Z,) of the voxel centres.
        beta: softmax temperature (100 as released).
    Returns:
        (P,J,3) world mm.
    """
    P, J = volumes.shape[:2]
    X, Y, Z = volumes.shape[2:]
    prob = torch.softmax(beta * volumes.float().reshape(P, J, -1), dim=-1).reshape(P, J, X, Y, Z)
    ex = prob.sum((3, 4)) @ axes_offsets_mm[0]  # (P,J)
    ey = prob.sum((2, 4)) @ axes_offsets_mm[1]
    ez = prob.sum((2, 3)) @ axes_offsets_mm[2]
    return torch.stack([ex, ey, ez], dim=-1) + centers_mm[:, None, :].float()
