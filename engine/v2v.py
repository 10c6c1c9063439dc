"""V2V 3D encoder-decoder (SPEC §2.4), shared by the root net and the pose net.

Key layout of the released files at ``width=1, front_kernel=7``; ``width`` scales every
channel count and ``front_kernel`` the first convolution (the light preset uses both).
"""

from __future__ import annotations

import torch
from torch import nn


class Basic3DBlock(nn.Module):
    def __init__(self, cin: int, cout: int, kernel: int):
        super().__init__()
        self.block = nn.Sequential(
            nn.Conv3d(cin, cout, kernel, 1, (kernel - 1) // 2), nn.BatchNorm3d(cout), nn.ReLU(inplace=True)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.block(x)


class Res3DBlock(nn.Module):
    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.res_branch = nn.Sequential(
            nn.Conv3d(cin, cout, 3, 1, 1),
            nn.BatchNorm3d(cout),
            nn.ReLU(inplace=True),
            nn.Conv3d(cout, cout, 3, 1, 1),
            nn.BatchNorm3d(cout),
        )
        self.skip_con = (
            nn.Sequential() if cin == cout else nn.Sequential(nn.Conv3d(cin, cout, 1, 1, 0), nn.BatchNorm3d(cout))
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.res_branch(x) + self.skip_con(x))


class Pool3DBlock(nn.Module):
    def __init__(self, size: int):
        super().__init__()
        self.size = size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.max_pool3d(x, self.size, self.size)


class Upsample3DBlock(nn.Module):
    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.block = nn.Sequential(nn.ConvTranspose3d(cin, cout, 2, 2, 0), nn.BatchNorm3d(cout), nn.ReLU(inplace=True))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.block(x)


class EncoderDecoder(nn.Module):
    def __init__(self, c1: int, c2: int, c3: int):
        super().__init__()
        self.encoder_pool1 = Pool3DBlock(2)
        self.encoder_res1 = Res3DBlock(c1, c2)
        self.encoder_pool2 = Pool3DBlock(2)
        self.encoder_res2 = Res3DBlock(c2, c3)
        self.mid_res = Res3DBlock(c3, c3)
        self.decoder_res2 = Res3DBlock(c3, c3)
        self.decoder_upsample2 = Upsample3DBlock(c3, c2)
        self.decoder_res1 = Res3DBlock(c2, c2)
        self.decoder_upsample1 = Upsample3DBlock(c2, c1)
        self.skip_res1 = Res3DBlock(c1, c1)
        self.skip_res2 = Res3DBlock(c2, c2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skip_x1 = self.skip_res1(x)
        x = self.encoder_res1(self.encoder_pool1(x))
        skip_x2 = self.skip_res2(x)
        x = self.encoder_res2(self.encoder_pool2(x))
        x = self.mid_res(x)
        x = self.decoder_upsample2(self.decoder_res2(x)) + skip_x2
        x = self.decoder_upsample1(self.decoder_res1(x)) + skip_x1
        return x


class V2VNet(nn.Module):
    """Volumetric hourglass ``(B,Cin,X,Y,Z) -> (B,Cout,X,Y,Z)``; X, Y, Z divisible by 4.

    Args:
        cin, cout: input/output channels.
        channels: (c0, c1, c2, c3) widths, (16, 32, 64, 128) as released.
        front_kernel: size of the first 3D convolution (7 as released).
    """

    def __init__(
        self, cin: int, cout: int, channels: tuple[int, int, int, int] = (16, 32, 64, 128), front_kernel: int = 7
    ):
        super().__init__()
        c0, c1, c2, c3 = channels
        self.front_layers = nn.Sequential(Basic3DBlock(cin, c0, front_kernel), Res3DBlock(c0, c1))
        self.encoder_decoder = EncoderDecoder(c1, c2, c3)
        self.output_layer = nn.Conv3d(c1, cout, 1, 1, 0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.output_layer(self.encoder_decoder(self.front_layers(x)))

    def init_weights(self, std: float = 0.001) -> None:
        """Training init (SPEC §2.4): conv weights ~ N(0, std²), biases 0."""
        for m in self.modules():
            if isinstance(m, (nn.Conv3d, nn.ConvTranspose3d)):
                nn.init.normal_(m.weight, std=std)
                nn.init.zeros_(m.bias)
