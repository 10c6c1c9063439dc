"""Local refinement of the pose net's joints on a fine grid of the fused heatmaps (inference only).

The pose net's soft-argmax lands within about a voxel of the joint (83 mm voxels in the light and
Shelf presets) and tells apart the people who share a cube. Around each of its joints, the
heatmaps of every view still hold finer evidence: joint j's heatmaps are fused (mean over the
views that see the point, as the cubes are built) on a small grid of ``step_mm`` spacing within
``radius_mm``, and the joint moves to the soft-argmax of that local grid. Only joint j's own
channel is sampled, at its own points, so other people's joints outside the window cannot pull it.
No weights; the same code serves images, heatmaps and detections.

Measured on the committed models (``docs/architecture.md``, "Local refinement").
"""

from __future__ import annotations

import torch

from engine.project import ViewGeometry, fuse_views_per_channel


class LocalRefiner:
    """Soft-argmax of each joint's fused heatmap on a local cubic grid around the joint.

    Args:
        geometry: the rig's view geometry (cameras, heatmap affines).
        radius_mm: half-width of the local grid (the grid spans ``±radius_mm`` on every axis).
        step_mm: grid spacing.
        beta: softmax temperature on the fused values in [0, 1].
    """

    def __init__(self, geometry: ViewGeometry, radius_mm: float, step_mm: float, beta: float) -> None:
        if radius_mm <= 0 or step_mm <= 0:
            raise ValueError(f"refine: radius_mm ({radius_mm}) and step_mm ({step_mm}) must be > 0")
        self.geometry = geometry
        self.beta = float(beta)
        n = int(round(radius_mm / step_mm))
        axis = torch.arange(-n, n + 1, dtype=torch.float32, device=geometry.affine_hm.device) * float(step_mm)
        self.offsets_mm = torch.stack(torch.meshgrid(axis, axis, axis, indexing="ij"), dim=-1).reshape(-1, 3)  # (S,3)

    def __call__(
        self, joints_mm: torch.Tensor, heatmaps: torch.Tensor, views_present: torch.Tensor | None = None
    ) -> torch.Tensor:
        """(P,J,3) joints, (V,J,H,W) heatmaps -> (P,J,3) refined joints (mm)."""
        P, J, _ = joints_mm.shape
        if P == 0:
            return joints_mm
        S = self.offsets_mm.shape[0]
        points = joints_mm.float()[:, :, None, :] + self.offsets_mm  # (P,J,S,3)
        per_joint = points.permute(1, 0, 2, 3).reshape(J, P * S, 3)  # channel j's own points
        grid, mask = self.geometry.sample_points(per_joint)  # (V,J,P*S,2), (V,J,P*S)
        fused = fuse_views_per_channel(heatmaps, grid, mask, views_present)  # (J,P*S)
        weights = torch.softmax(self.beta * fused.reshape(J, P, S).transpose(0, 1), dim=-1)  # (P,J,S)
        return (weights[..., None] * points).sum(dim=-2)
