"""A compact U-Net that works on pixel-unshuffled input.

Unshuffling by 2 first turns a Bayer mosaic into its four colour planes (one per CFA site)
and quarters the cost of every layer for RGB images, which is what lets these models reach
their quality bars at CPU speeds. Each level halves the resolution and doubles the width.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


def _convs(channels: int, count: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    for _ in range(count):
        layers += [nn.Conv2d(channels, channels, 3, padding=1), nn.ReLU(inplace=True)]
    return nn.Sequential(*layers)


class UNet(nn.Module):
    """`out = x[:, :out_channels] + net(x)` when `residual`, else `net(x)`.

    Inputs of any size work: they are padded (replicate) to a multiple of `multiple` and the
    padding is cropped off; tiles carry a halo of `receptive_field` pixels so that padding
    never reaches the part of a tile that is kept.
    """

    def __init__(self, in_channels: int = 4, out_channels: int = 3,
                 channels: tuple[int, ...] = (32, 64, 128, 256), blocks: int = 2,
                 unshuffle: int = 2, residual: bool = True):
        super().__init__()
        self.in_channels, self.out_channels = in_channels, out_channels
        self.channels, self.blocks = tuple(channels), blocks
        self.unshuffle, self.residual = unshuffle, residual
        self.head = nn.Conv2d(in_channels * unshuffle ** 2, channels[0], 3, padding=1)
        self.encoders = nn.ModuleList(_convs(c, blocks) for c in channels[:-1])
        self.downs = nn.ModuleList(nn.Conv2d(a, b, 2, stride=2) for a, b in zip(channels, channels[1:]))
        self.middle = _convs(channels[-1], blocks)
        self.ups = nn.ModuleList(nn.ConvTranspose2d(b, a, 2, stride=2) for a, b in zip(channels, channels[1:]))
        self.decoders = nn.ModuleList(_convs(c, blocks) for c in channels[:-1])
        self.tail = nn.Conv2d(channels[0], out_channels * unshuffle ** 2, 3, padding=1)

    @property
    def multiple(self) -> int:
        """Input sizes the network takes without padding."""
        return self.unshuffle * 2 ** (len(self.channels) - 1)

    @property
    def receptive_field(self) -> int:
        """Pixels of context on each side that can change an output pixel (an upper bound)."""
        reach, scale = self.unshuffle, self.unshuffle       # head conv at the unshuffled scale
        for _ in self.channels[:-1]:
            reach += scale * self.blocks * 2                # encoder and decoder convs at this scale
            reach += scale                                  # 2x2 down / up
            scale *= 2
        reach += scale * self.blocks                        # middle
        reach += self.unshuffle                             # tail conv
        return reach + self.unshuffle                       # unshuffle/shuffle phase

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        height, width = x.shape[-2:]
        m = self.multiple
        pad_h, pad_w = -height % m, -width % m
        padded = F.pad(x, (0, pad_w, 0, pad_h), mode="replicate") if pad_h or pad_w else x
        h = self.head(F.pixel_unshuffle(padded, self.unshuffle))
        skips = []
        for encode, down in zip(self.encoders, self.downs):
            h = encode(h)
            skips.append(h)
            h = down(h)
        h = self.middle(h)
        for i in reversed(range(len(self.ups))):
            h = self.decoders[i](self.ups[i](h) + skips[i])
        out = F.pixel_shuffle(self.tail(h), self.unshuffle)[..., :height, :width]
        return x[:, :self.out_channels] + out if self.residual else out
