"""The dehazer: a U-Net that predicts a transmission map and a small correction, and inverts
the scattering model with them, J = (I − A) / t + A + r.

Predicting t (as DehazeNet and AOD-Net do) instead of J itself leaves the network a smooth,
bounded quantity to estimate; the division it would otherwise have to learn is done exactly.
The correction r absorbs what the model cannot express, such as an airlight estimate that is
slightly off. Input: hazy RGB and three airlight planes (`conditioning.dehaze_input`).
"""

from __future__ import annotations

import torch
from torch import nn

from ispcli.models.unet import UNet

T_MIN = 0.05


class DehazeNet(nn.Module):
    def __init__(self, channels: tuple[int, ...] = (32, 64, 128, 256), blocks: int = 2):
        super().__init__()
        self.net = UNet(6, 4, channels, blocks, residual=False)
        with torch.no_grad():                    # start near t = 0.9 (light haze), r = 0
            self.net.tail.bias.zero_()
            self.net.tail.bias[:4].fill_(2.2)    # the unshuffled t planes come first

    @property
    def receptive_field(self) -> int:
        return self.net.receptive_field

    @property
    def multiple(self) -> int:
        return self.net.multiple

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        hazy, airlight = x[:, :3], x[:, 3:6]
        out = self.net(x)
        t = T_MIN + (1 - T_MIN) * torch.sigmoid(out[:, :1])
        return (hazy - airlight) / t + airlight + out[:, 1:4]
