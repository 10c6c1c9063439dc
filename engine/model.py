"""The composed multi-person model (SPEC §2.8): ``backbone``, ``root_net``, ``pose_net`` [, ``attn``].

Child names reproduce the released state-dict layout (790 keys with ``attn``). The model holds
only weights; the rig-bound geometry lives in :class:`engine.project.VolumeProjector` and the
per-frame composition in :class:`engine.runtime.InferenceRuntime`.
"""

from __future__ import annotations

from torch import nn

from engine.backbone import AttentionNet, PoseResNet
from engine.config import ModelConfig
from engine.posenet import PoseNet
from engine.rootnet import RootNet


class SelfPose3dModel(nn.Module):
    """Weights of one SelfPose3d model.

    Args:
        config: the model config (also stored in our checkpoints).
    """

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        b = config.backbone
        self.backbone = PoseResNet(b.depth, config.num_joints, b.width, tuple(b.deconv_channels))
        if config.with_attn:
            self.attn = AttentionNet(config.attn_depth, config.num_joints)
        self.pose_net = PoseNet(
            config.num_joints,
            config.pose_net.v2v.channels,
            config.pose_net.v2v.front_kernel,
            config.pose_net.input_skip,
        )
        self.root_net = RootNet(config.root_net.v2v.channels, config.root_net.v2v.front_kernel)

    def init_training_weights(self) -> None:
        """Upstream's from-scratch init of heads and V2V nets (N(0, 0.001²))."""
        self.backbone.init_head()
        self.pose_net.v2v_net.init_weights()
        self.root_net.v2v_net.init_weights()


def build_model(config: ModelConfig) -> SelfPose3dModel:
    """Build (never load) a model in eval mode."""
    return SelfPose3dModel(config).eval()
