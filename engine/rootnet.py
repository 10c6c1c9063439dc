"""Root net (SelfPose3d's soft cuboid proposal net, SPEC §2.6) and proposal extraction."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from engine.v2v import V2VNet


class RootNet(nn.Module):
    """V2V over the root-joint volume: ``(B,1,X,Y,Z) -> (B,X,Y,Z)`` raw root scores."""

    def __init__(self, channels: tuple[int, int, int, int] = (16, 32, 64, 128), front_kernel: int = 7):
        super().__init__()
        self.v2v_net = V2VNet(1, 1, channels, front_kernel)

    def forward(self, volume: torch.Tensor) -> torch.Tensor:
        return self.v2v_net(volume)[:, 0]


def extract_proposals(
    root_cube: torch.Tensor, space_size_mm, space_center_mm, max_people: int, threshold: float, nms_kernel: int = 3
) -> torch.Tensor:
    """3D NMS + top-K on root cubes.

    Args:
        root_cube: (B,X,Y,Z) root scores.
    Returns:
        (B,K,5) per candidate ``x, y, z (mm, voxel centre), flag (0 valid / -1), score``,
        sorted by score descending.
    """
    cube = root_cube.detach().float()
    B, X, Y, Z = cube.shape
    pooled = F.max_pool3d(cube, nms_kernel, stride=1, padding=(nms_kernel - 1) // 2)
    kept = torch.where(pooled == cube, cube, torch.zeros((), dtype=cube.dtype, device=cube.device))
    scores, flat = kept.reshape(B, -1).topk(max_people, dim=1)  # (B,K)
    ix = flat // (Y * Z)
    iy = (flat % (Y * Z)) // Z
    iz = flat % Z
    idx = torch.stack([ix, iy, iz], dim=-1).to(torch.float32)  # (B,K,3)
    bins = torch.tensor([X, Y, Z], dtype=torch.float32, device=cube.device)
    size = torch.tensor(space_size_mm, dtype=torch.float32, device=cube.device)
    center = torch.tensor(space_center_mm, dtype=torch.float32, device=cube.device)
    xyz = idx / (bins - 1) * size + center - size / 2
    flag = torch.where(scores > threshold, 0.0, -1.0)
    return torch.cat([xyz, flag[..., None], scores[..., None]], dim=-1)
