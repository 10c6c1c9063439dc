"""Training-time composition of the engine's networks (SPEC.md §3), per view set.

The engine's :class:`engine.project.VolumeProjector` caches one rig affine; training needs the
affine of each augmented view set, so :class:`SSLGeometry` rebuilds a
:class:`engine.project.ViewGeometry` per (sample, view set) and reuses the engine's
``fuse_views`` / ``soft_argmax`` / ``extract_proposals`` unchanged. Everything here keeps the
autograd graph: pose-net gradients flow through the cubes into the backbone heatmaps.

:class:`SSLModule` computes the loss dict of one stage on one batch; it is an ``nn.Module`` so
DistributedDataParallel can wrap it.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Mapping

import torch
from torch import nn

from calib.camera import CameraRig
from calib.projection_torch import CameraTensors, apply_affine, project_points
from engine.config import ModelConfig
from engine.model import SelfPose3dModel
from engine.posenet import soft_argmax
from engine.project import ViewGeometry, fuse_views, grid_axes, grid_points
from engine.rootnet import extract_proposals
from training import targets as tg
from training.ssl import losses as L

Z_EPS = 1e-5


@dataclass
class SSLGeometry:
    """Rig, grids and sizes shared by every training step.

    Attributes:
        cams: the V cameras.
        image_wh: (V,2) original image sizes px.
        input_size, heatmap_size: network input / heatmap (w, h) px.
        space_size_mm, space_center_mm, root_bins: the root net's room grid.
        room_points: (X*Y*Z,3) room voxel centres (x-major).
        cube_size_mm, cube_bins: the pose net's person cube.
        cube_offsets: (M,3) cube voxel offsets from the centre; cube_axes: 3 per-axis offsets.
    """

    cams: CameraTensors
    image_wh: torch.Tensor
    input_size: tuple[int, int]
    heatmap_size: tuple[int, int]
    space_size_mm: tuple[float, float, float]
    space_center_mm: tuple[float, float, float]
    root_bins: tuple[int, int, int]
    room_points: torch.Tensor
    cube_size_mm: tuple[float, float, float]
    cube_bins: tuple[int, int, int]
    cube_offsets: torch.Tensor
    cube_axes: list[torch.Tensor]

    @classmethod
    def from_rig(
        cls,
        rig: CameraRig,
        config: ModelConfig,
        device: torch.device | str = "cpu",
        space_size_mm=None,
        space_center_mm=None,
    ) -> "SSLGeometry":
        size = tuple(float(s) for s in (space_size_mm or config.space_size_mm))
        center = tuple(float(c) for c in (space_center_mm or config.space_center_mm))
        pn = config.pose_net
        return cls(
            cams=CameraTensors.from_rig(rig, device=device),
            image_wh=torch.as_tensor(rig.image_sizes, dtype=torch.float32, device=device),
            input_size=tuple(config.backbone.image_size),
            heatmap_size=tuple(config.backbone.heatmap_size),
            space_size_mm=size,
            space_center_mm=center,
            root_bins=tuple(config.root_net.bins),
            room_points=grid_points(size, center, config.root_net.bins).to(torch.float32).to(device),
            cube_size_mm=tuple(pn.cube_size_mm),
            cube_bins=tuple(pn.bins),
            cube_offsets=grid_points(pn.cube_size_mm, (0.0, 0.0, 0.0), pn.bins).to(torch.float32).to(device),
            cube_axes=[a.to(torch.float32).to(device) for a in grid_axes(pn.cube_size_mm, (0, 0, 0), pn.bins)],
        )

    @property
    def stride(self) -> float:
        """Input px per heatmap px."""
        return self.input_size[0] / self.heatmap_size[0]

    def view_geometry(self, affines: torch.Tensor) -> ViewGeometry:
        """A view set's geometry from its (V,2,3) original px -> input px affines."""
        scale = torch.diag(
            torch.tensor(
                [self.heatmap_size[0] / self.input_size[0], self.heatmap_size[1] / self.input_size[1]],
                device=affines.device,
            )
        )
        return ViewGeometry(self.cams, self.image_wh, (scale @ affines.float()), tuple(self.heatmap_size))

    def root_volume(self, geometry: ViewGeometry, root_heatmaps: torch.Tensor) -> torch.Tensor:
        """(V,1,h,w) root heatmaps -> (1,1,X,Y,Z) room volume."""
        grid, mask = geometry.sample_points(self.room_points)
        return fuse_views(root_heatmaps, grid, mask).view(1, 1, *self.root_bins)

    def person_cubes(self, geometry: ViewGeometry, heatmaps: torch.Tensor, centers_mm: torch.Tensor) -> torch.Tensor:
        """(V,J,h,w) heatmaps, (P,3) centres -> (P,J,X,Y,Z) cubes (differentiable w.r.t. heatmaps)."""
        P, J = centers_mm.shape[0], heatmaps.shape[1]
        points = centers_mm.float()[:, None, :] + self.cube_offsets[None]  # (P,M,3)
        grid, mask = geometry.sample_points(points.reshape(-1, 3))
        fused = fuse_views(heatmaps, grid, mask)  # (J,P*M)
        return fused.view(J, P, *self.cube_bins).transpose(0, 1)

    def project_input_px(self, points_mm: torch.Tensor, affines: torch.Tensor) -> torch.Tensor:
        """(...,3) world mm -> (V,...,2) input px of a view set with (V,2,3) affines."""
        uv = project_points(points_mm, self.cams, z_eps=Z_EPS)
        return apply_affine(uv, affines.to(uv.dtype))


def _autocast(enabled: bool, device: torch.device):
    if not enabled:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16)


class LightAttention(nn.Module):
    """Training-only attention net for presets without one: ``sigmoid(PoseResNet(image))``."""

    def __init__(self, depth: int, num_joints: int, width: int, deconv_channels: tuple[int, ...]):
        super().__init__()
        from engine.backbone import PoseResNet

        self.backbone = PoseResNet(depth, num_joints, width, tuple(deconv_channels))
        self.backbone.init_head()

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B,3,H,W) -> (B,J,h,w) in (0,1)
        return torch.sigmoid(self.backbone(x))


class SSLModule(nn.Module):
    """The model plus the training-only attention net; ``forward`` returns one stage's losses.

    Args:
        model: the SelfPose3d model (weights of backbone, root net, pose net).
        geometry: rig and grids.
        stage: ``backbone`` | ``rootnet`` | ``posenet`` | ``finetune``.
        attention: attention net (stages 3-4) or None for uniform attention.
        loss_weights: a :class:`training.ssl.config.LossConfig`.
        bf16: autocast the networks.
        channels_last: feed the 2D nets channels-last images.
        generator: torch generator of the synthetic roots.
    """

    def __init__(
        self,
        model: SelfPose3dModel,
        geometry: SSLGeometry,
        stage: str,
        attention: nn.Module | None,
        loss_weights,
        bf16: bool = False,
        generator: torch.Generator | None = None,
        channels_last: bool = False,
    ):
        super().__init__()
        self.model = model
        self.attention = attention
        self.geometry = geometry
        self.stage = stage
        self.lw = loss_weights
        self.bf16 = bf16
        self.channels_last = channels_last
        self.generator = generator
        cfg = model.config
        self.root_joint = cfg.root_joint
        self.syn_box = tg.synthetic_root_box(
            geometry.space_size_mm, geometry.space_center_mm, loss_weights.syn_range_mm
        )

    @property
    def device(self) -> torch.device:
        return self.geometry.image_wh.device

    # ---------------------------------------------------------------- pieces
    def heatmaps(self, images: torch.Tensor) -> torch.Tensor:
        """(N,3,H,W) -> (N,J,h,w) fp32 backbone heatmaps."""
        if self.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        with _autocast(self.bf16, self.device):
            return self.model.backbone(images).float()

    def root_cubes(self, volumes: torch.Tensor) -> torch.Tensor:
        """(N,1,X,Y,Z) -> (N,X,Y,Z) root scores."""
        with _autocast(self.bf16, self.device):
            return self.model.root_net(volumes).float()

    def pose_volumes(self, cubes: torch.Tensor) -> torch.Tensor:
        with _autocast(self.bf16, self.device):
            return self.model.pose_net(cubes).float()

    def attend(self, images: torch.Tensor) -> torch.Tensor:
        if self.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        with _autocast(self.bf16, self.device):
            return self.attention(images).float()

    def proposals(self, heatmaps_set3: torch.Tensor, affines_set3: torch.Tensor) -> torch.Tensor:
        """Frozen root net on the un-augmented view set: (B,V,J,h,w) -> (B,K,5) proposals."""
        cfg = self.model.config.root_net
        with torch.no_grad():
            vols = torch.cat(
                [
                    self.geometry.root_volume(
                        self.geometry.view_geometry(affines_set3[b]),
                        heatmaps_set3[b, :, self.root_joint : self.root_joint + 1],
                    )
                    for b in range(heatmaps_set3.shape[0])
                ]
            )
            cubes = self.root_cubes(vols)
        return extract_proposals(
            cubes,
            self.geometry.space_size_mm,
            self.geometry.space_center_mm,
            cfg.max_people,
            cfg.threshold,
            cfg.nms_kernel,
        )

    # ---------------------------------------------------------------- stages
    def forward(self, batch: Mapping[str, torch.Tensor], epoch: int = 0) -> dict[str, torch.Tensor]:
        """Losses (and ``n_*`` diagnostics, detached) of one batch.

        ``batch``: images (B,3,V,3,H,W) normalised; heatmaps (B,3,V,J,h,w); weights (B,3,V,J);
        affines (B,3,V,2,3) original px -> input px; joints (B,3,V,G,J,2) input px;
        visible (B,3,V,G,J). Index 0, 1, 2 = view sets 1, 2, 3 (3 un-augmented).
        """
        if self.stage == "backbone":
            return self._backbone(batch)
        if self.stage == "rootnet":
            return self._rootnet(batch)
        return self._posenet(batch, epoch)

    def _backbone(self, batch) -> dict[str, torch.Tensor]:
        images = batch["images"][:, 2]  # (B,V,3,H,W)
        B, V = images.shape[:2]
        hm = self.heatmaps(images.flatten(0, 1)).unflatten(0, (B, V))
        return {"loss_2d": L.heatmap_mse(hm, batch["heatmaps"][:, 2], batch["weights"][:, 2])}

    def _all_heatmaps(self, images: torch.Tensor) -> torch.Tensor:
        B, S, V = images.shape[:3]
        return self.heatmaps(images.flatten(0, 2)).unflatten(0, (B, S, V))  # (B,3,V,J,h,w)

    def _rootnet(self, batch) -> dict[str, torch.Tensor]:
        geo = self.geometry
        with torch.no_grad():
            hm = self._all_heatmaps(batch["images"])
        B = hm.shape[0]
        affines = batch["affines"]
        geos = [[geo.view_geometry(affines[b, k]) for k in range(3)] for b in range(B)]
        r = self.root_joint
        real = [geo.root_volume(geos[b][k], hm[b, k, :, r : r + 1]) for k in range(3) for b in range(B)]
        roots, valid = tg.sample_synthetic_roots(
            B, self.syn_box, self.model.config.root_net.max_people, generator=self.generator, device=self.device
        )
        target = tg.root_target_cubes(roots, valid, geo.space_size_mm, geo.space_center_mm, geo.root_bins)
        syn = []
        for k in range(3):
            syn_hm = tg.synthetic_root_heatmaps(
                roots, valid, geo.cams, affines[:, k], geo.heatmap_size, stride=geo.stride, generator=self.generator
            )  # (B,V,1,h,w)
            syn += [geo.root_volume(geos[b][k], syn_hm[b]) for b in range(B)]
        cubes = self.root_cubes(torch.cat(real + syn))  # (6B,X,Y,Z)
        real_c, syn_c = cubes[: 3 * B].unflatten(0, (3, B)), cubes[3 * B :].unflatten(0, (3, B))
        out = {"loss_root_syn": L.synthetic_root_loss(list(syn_c), [target] * 3, self.lw.root_syn_weight)}
        if self.lw.root_consistency:
            out["loss_root_reg"] = L.root_consistency_loss(list(real_c), self.lw.root_reg_weight)
        return out

    def _posenet(self, batch, epoch: int) -> dict[str, torch.Tensor]:
        geo = self.geometry
        images, affines = batch["images"], batch["affines"]
        hm = self._all_heatmaps(images)  # (B,3,V,J,h,w)
        T = batch["heatmaps"]
        out = {"loss_2d": L.heatmap_mse(hm, T)}
        proposals = self.proposals(hm[:, 2].detach(), affines[:, 2])  # (B,K,5)
        valid = proposals[..., 3] >= 0  # (B,K)
        with_people = torch.nonzero(valid.any(1)).flatten().tolist()
        out["n_proposals"] = valid.sum().detach().float() / max(1, valid.shape[0])
        out["n_root_heatmap_max"] = hm[:, 2, :, self.root_joint].detach().amax(dim=(-2, -1)).mean()
        out["n_root_score_max"] = proposals[:, 0, 4].mean()
        if not with_people:
            return out
        K = proposals.shape[1]
        cubes, centers, counts = [], [], []
        for b in with_people:
            c = proposals[b, valid[b], :3]  # (P,3) valid slots are the first ones (score-sorted)
            for k in (0, 1):
                cubes.append(geo.person_cubes(geo.view_geometry(affines[b, k]), hm[b, k], c))
                centers.append(c)
            counts.append(c.shape[0])
        poses = soft_argmax(
            self.pose_volumes(torch.cat(cubes)), torch.cat(centers), geo.cube_axes, self.model.config.pose_net.beta
        )  # (sum 2P, J, 3)
        R21, R12, K21, K12, pv = [], [], [], [], []
        s = 0
        for i, b in enumerate(with_people):
            P = counts[i]
            p1, p2 = poses[s : s + P], poses[s + P : s + 2 * P]
            s += 2 * P
            k12 = geo.project_input_px(p1, affines[b, 1])  # (V,P,J,2) pose of set 1 in set 2's frame
            k21 = geo.project_input_px(p2, affines[b, 0])
            R12.append(tg.render_heatmaps(k12 / geo.stride, geo.heatmap_size))  # (V,J,h,w)
            R21.append(tg.render_heatmaps(k21 / geo.stride, geo.heatmap_size))
            pad = (0, 0, 0, 0, 0, K - P)
            K12.append(nn.functional.pad(k12, pad))
            K21.append(nn.functional.pad(k21, pad))
            pv.append(torch.arange(K, device=self.device) < P)
        idx = torch.as_tensor(with_people, device=self.device)
        A1 = A2 = None
        if self.attention is not None and self.lw.use_attention:
            V = images.shape[2]
            att = self.attend(images[idx, :2].flatten(0, 2)).unflatten(0, (len(with_people), 2, V))
            A1, A2 = att[:, 0], att[:, 1]
            out["loss_attn_ssv"] = L.attention_regularizer(A1, A2, self.lw.attn_weight)
        out["loss_pose3d_ssv"] = L.cross_view_pose_loss(
            T[idx, 0], torch.stack(R21), A1, T[idx, 1], torch.stack(R12), A2
        )
        if epoch >= self._l1_epoch:
            pvalid = torch.stack(pv)
            l1 = L.hungarian_l1_loss(
                torch.stack(K12),
                pvalid,
                batch["joints"][idx, 1],
                batch["visible"][idx, 1],
                geo.input_size,
                self.lw.l1_drop_largest,
            ) + L.hungarian_l1_loss(
                torch.stack(K21),
                pvalid,
                batch["joints"][idx, 0],
                batch["visible"][idx, 0],
                geo.input_size,
                self.lw.l1_drop_largest,
            )
            out["loss_pose3d_l1_ssv"] = self.lw.l1_weight * l1
        return out

    _l1_epoch: int = 0

    def set_l1_epoch(self, epoch: int) -> None:
        """First epoch with the Hungarian L1 term."""
        self._l1_epoch = int(epoch)


def total_loss(losses: Mapping[str, torch.Tensor]) -> torch.Tensor:
    """Sum of the ``loss_*`` entries that carry gradient (SPEC.md §3.4)."""
    terms = [v for k, v in losses.items() if k.startswith("loss_") and v.requires_grad]
    if not terms:
        raise RuntimeError("no loss term has a gradient: check the stage's trainable parts")
    return torch.stack([t.float() for t in terms]).sum()
