"""PoseResNet ("SimpleBaseline") 2D backbone: ResNet trunk + deconv head -> J joint heatmaps.

State-dict layout matches the released SelfPose3d files (SPEC §2.2): ``conv1``, ``bn1``,
``layer{1..4}.{i}.{conv,bn}{1,2[,3]}``, ``downsample.{0,1}``, ``deconv_layers.{3k,3k+1}``
(ReLUs at ``3k+2``) and ``final_layer``. Variants (ResNet-18 trunk, narrower stem, slimmer head)
are constructor parameters.
"""

from __future__ import annotations

import torch
from torch import nn

_LAYERS = {
    18: ("basic", (2, 2, 2, 2)),
    34: ("basic", (3, 4, 6, 3)),
    50: ("bottleneck", (3, 4, 6, 3)),
    101: ("bottleneck", (3, 4, 23, 3)),
    152: ("bottleneck", (3, 8, 36, 3)),
}


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skip = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + skip)


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skip = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + skip)


class PoseResNet(nn.Module):
    """ResNet trunk + stride-2 deconvolutions + 1x1 conv to ``num_joints`` heatmaps.

    Args:
        depth: ResNet depth (18, 34: basic blocks; 50, 101, 152: bottlenecks).
        num_joints: output channels.
        width: stem width (64 = standard); stage widths are width x (1, 2, 4, 8).
        deconv_channels: output channels of each deconv (k=4, s=2, p=1, no bias) + BN + ReLU.

    Input ``(B,3,H,W)`` normalised RGB; output ``(B,J,H/s,W/s)`` raw heatmaps with
    ``s = 32 / 2**len(deconv_channels)``.
    """

    def __init__(
        self, depth: int = 50, num_joints: int = 15, width: int = 64, deconv_channels: tuple[int, ...] = (256, 256, 256)
    ):
        super().__init__()
        if depth not in _LAYERS:
            raise ValueError(f"PoseResNet: depth {depth} not in {sorted(_LAYERS)}")
        kind, counts = _LAYERS[depth]
        block = BasicBlock if kind == "basic" else Bottleneck
        self.conv1 = nn.Conv2d(3, width, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        self._inplanes = width
        self.layer1 = self._make_layer(block, width, counts[0], 1)
        self.layer2 = self._make_layer(block, width * 2, counts[1], 2)
        self.layer3 = self._make_layer(block, width * 4, counts[2], 2)
        self.layer4 = self._make_layer(block, width * 8, counts[3], 2)
        layers: list[nn.Module] = []
        cin = self._inplanes
        for cout in deconv_channels:
            layers += [
                nn.ConvTranspose2d(cin, cout, 4, 2, 1, output_padding=0, bias=False),
                nn.BatchNorm2d(cout),
                nn.ReLU(inplace=True),
            ]
            cin = cout
        self.deconv_layers = nn.Sequential(*layers)
        self.final_layer = nn.Conv2d(cin, num_joints, 1, 1, 0)

    def _make_layer(self, block: type, planes: int, count: int, stride: int) -> nn.Sequential:
        downsample = None
        if stride != 1 or self._inplanes != planes * block.expansion:
            downsample = nn.Sequential(
                nn.Conv2d(self._inplanes, planes * block.expansion, 1, stride, bias=False),
                nn.BatchNorm2d(planes * block.expansion),
            )
        blocks = [block(self._inplanes, planes, stride, downsample)]
        self._inplanes = planes * block.expansion
        blocks += [block(self._inplanes, planes) for _ in range(count - 1)]
        return nn.Sequential(*blocks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B,3,H,W) -> (B,J,h,w)
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.final_layer(self.deconv_layers(x))

    def init_head(self, std: float = 0.001) -> None:
        """Training init of the head (SPEC §2.3): deconv/final weights ~ N(0, std²), BN 1/0, bias 0."""
        for m in list(self.deconv_layers.modules()) + [self.final_layer]:
            if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
                nn.init.normal_(m.weight, std=std)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)


class AttentionNet(nn.Module):
    """Training-only attention net (SPEC §2.3): ``sigmoid(PoseResNet-18(image))``, child ``backbone``."""

    def __init__(self, depth: int = 18, num_joints: int = 15):
        super().__init__()
        self.backbone = PoseResNet(depth=depth, num_joints=num_joints)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B,3,H,W) -> (B,J,h,w) in (0,1)
        return torch.sigmoid(self.backbone(x))
