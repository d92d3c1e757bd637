"""A compact U-Net that works on pixel-unshuffled input.

Unshuffling by 2 first turns a Bayer mosaic into its four colour planes (one per CFA site)
and quarters the cost of every layer for RGB images, which is what lets these models reach
their quality bars at CPU speeds. Each level halves the resolution and doubles the width.

What unshuffling costs is full-resolution detail: the finest level sees 2×2 blocks. `refine`
adds a few full-resolution convolutions after the U-Net that see the input and the U-Net's
output and add a correction; its last layer starts at zero, so a refined model initialised
from an unrefined one (`grow_from`) begins exactly where that one ended.
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
                 unshuffle: int = 2, residual: bool = True, refine: int = 0, refine_blocks: int = 3):
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
        self.refine_blocks = refine_blocks if refine else 0
        if refine:
            layers = [nn.Conv2d(in_channels + out_channels, refine, 3, padding=1), nn.ReLU(inplace=True)]
            layers += list(_convs(refine, refine_blocks))
            last = nn.Conv2d(refine, out_channels, 3, padding=1)
            nn.init.zeros_(last.weight)
            nn.init.zeros_(last.bias)
            self.refine = nn.Sequential(*layers, last)
        else:
            self.refine = None

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
        reach += self.unshuffle                             # unshuffle/shuffle phase
        if self.refine is not None:
            reach += self.refine_blocks + 2                 # full-resolution 3x3 convs
        return reach

    def grow_from(self, state: dict) -> None:
        """Load an unrefined model's weights into this refined one (see `load_grown`)."""
        load_grown(self, state, ("refine.",))

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
        out = x[:, :self.out_channels] + out if self.residual else out
        if self.refine is not None:
            out = out + self.refine(torch.cat([x, out], dim=1))
        return out


def load_grown(model: nn.Module, state: dict, new: tuple[str, ...]) -> None:
    """Load a smaller model's weights into `model`, which adds the parts named by the key
    prefixes `new`: every other parameter must be in `state` and fit, and nothing in `state`
    may be left over. The new parts keep their initial values (built to change nothing at first)."""
    try:
        missing, unexpected = model.load_state_dict(state, strict=False)
    except RuntimeError as exc:                      # a shape that differs
        detail = str(exc).splitlines()[1].strip() if "\n" in str(exc) else str(exc)
        raise RuntimeError(f"weights do not fit this model: {detail}") from None
    stray = [k for k in missing if not k.startswith(new)] + list(unexpected)
    if stray:
        raise RuntimeError(f"weights do not fit this model: {', '.join(stray[:4])}")
