"""The dehazer: a U-Net that predicts a transmission map and a small correction, and inverts
the scattering model with them, J = (I − A) / t + A + r.

Predicting t (as DehazeNet and AOD-Net do) instead of J itself leaves the network a smooth,
bounded quantity to estimate; the division it would otherwise have to learn is done exactly.
The correction r absorbs what the model cannot express. Per tile it sees the hazy RGB and three
planes of the image's airlight A, a whole-image quantity that `analyse` estimates once.

Where t is small an error in A is magnified by 1/t, and the dark-channel estimate of A
(`isp.dehaze.image_airlight`) is fooled by white walls and skies. With `airlight_width` a
global branch looks at a thumbnail of the whole picture and corrects that estimate (a gain per
channel, starting at 1); such a model is trained on whole scenes (`train --scenes`) and, in
training, takes A from its own analysis of what it is given rather than from its input planes.

With `airlight_stats` a second small head reads what the dark-channel estimate is made of:
percentiles of the dark channel and of each colour channel on the analysed copy. How quickly
the dark channel saturates towards its top says how much of the brightest region is haze and
how much a bright object; a pooled 64×64 thumbnail blurs that away. It adds to the same log
gain, starting at zero, so it grows onto a model that has the first head.

With `position` the network also sees each pixel's row and column in the whole frame (two
planes in [0, 1]): in outdoor photographs the top is usually further away, which a tile alone
cannot know. The runner hands positional stages their tiles' frame coordinates, so tiles still
equal the whole frame; in training the planes come with each photo (`train.haze.attach_depth`).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from ispcli.models.unet import UNet, load_grown

T_MIN = 0.05
THUMB = 64
LEVELS = (0.5, 0.9, 0.99, 0.999, 1.0)       # percentiles of the dark channel and of each channel
STATS = 4 * len(LEVELS) + 3                 # … and the dark-channel estimate itself


def airlight_stats(image: torch.Tensor, base: torch.Tensor) -> torch.Tensor:
    """(N, 3, H, W) hazy analysis copies and their dark-channel airlight (N, 3) → (N, STATS)."""
    from ispcli.isp import dehaze

    n = image.shape[0]
    x = image.clamp(0, 1)
    q = torch.tensor(LEVELS, dtype=x.dtype, device=x.device)
    dark = torch.quantile(dehaze.dark_channel(x).reshape(n, -1), q, dim=1).T             # (N, L)
    channels = torch.quantile(x.reshape(n, 3, -1), q, dim=2).permute(1, 2, 0).reshape(n, -1)
    return torch.cat([dark, channels, base], dim=1)


class DehazeNet(nn.Module):
    def __init__(self, channels: tuple[int, ...] = (32, 64, 128, 256), blocks: int = 2, airlight_width: int = 0,
                 position: bool = False, airlight_stats: int = 0):
        super().__init__()
        self.position = position
        self.net = UNet(8 if position else 6, 4, channels, blocks, residual=False)
        with torch.no_grad():                    # start near t = 0.9 (light haze), r = 0
            self.net.tail.bias.zero_()
            self.net.tail.bias[:4].fill_(2.2)    # the unshuffled t planes come first
        self.features = self.airlight_head = None
        if airlight_width:
            w = airlight_width
            self.features = nn.Sequential(
                nn.Conv2d(3, 16, 3, stride=2, padding=1), nn.ReLU(inplace=True),
                nn.Conv2d(16, 32, 3, stride=2, padding=1), nn.ReLU(inplace=True),
                nn.Conv2d(32, w, 3, stride=2, padding=1), nn.ReLU(inplace=True),
                nn.Conv2d(w, w, 3, stride=2, padding=1), nn.ReLU(inplace=True),
            )
            self.airlight_head = nn.Sequential(nn.Linear(2 * w + 3, w), nn.ReLU(inplace=True), nn.Linear(w, 3))
            nn.init.zeros_(self.airlight_head[-1].weight)
            nn.init.zeros_(self.airlight_head[-1].bias)
        self.stats_head = None
        if airlight_stats:
            if not airlight_width:
                raise ValueError("airlight_stats adds to the airlight branch: give airlight_width too")
            w = airlight_stats
            self.stats_head = nn.Sequential(nn.Linear(STATS, w), nn.ReLU(inplace=True), nn.Linear(w, w),
                                            nn.ReLU(inplace=True), nn.Linear(w, 3))
            nn.init.zeros_(self.stats_head[-1].weight)
            nn.init.zeros_(self.stats_head[-1].bias)

    # The airlight branch alone (`train --part airlight --scenes 1`), on whole scenes, against
    # the true airlight: trained through the dehazer's output instead, its gradient is weak
    # where haze is light and it hardly moved from the dark-channel estimate.
    PARTS = {"airlight": ("features.", "airlight_head.", "stats_head.")}
    PART_DEGRADE = {"airlight": {"airlight_error": 0.0}}      # the input planes then hold the truth

    def part_forward(self, part: str, x: torch.Tensor) -> torch.Tensor:
        return self.analyse(x[:, :3])

    def part_loss(self, part: str, pred: torch.Tensor, x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return F.l1_loss(pred, x[:, 3:6, 0, 0])

    @property
    def receptive_field(self) -> int:
        return self.net.receptive_field

    @property
    def multiple(self) -> int:
        return self.net.multiple

    def analyse(self, image: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) whole hazy images (or their analysis copies) → (N, 3) airlight."""
        from ispcli.isp import dehaze

        base = dehaze.image_airlight(image)
        if self.features is None:
            return base
        f = self.features(F.adaptive_avg_pool2d(image.clamp(0, 1), THUMB))
        f = torch.cat([f.mean(dim=(2, 3)), f.amax(dim=(2, 3)), base], dim=1)
        log_gain = self.airlight_head(f)
        if self.stats_head is not None:
            log_gain = log_gain + self.stats_head(airlight_stats(image, base))
        return (base * torch.exp(log_gain)).clamp(0.05, 1.0)

    def apply(self, hazy: torch.Tensor, airlight: torch.Tensor, coords: torch.Tensor | None = None) -> torch.Tensor:
        """Dehaze a tile with the whole image's airlight ((N, 3) or (3,)); a positional model
        also takes the tile's frame coordinates `coords` (N, 2, H, W) (see `tiling.Where`)."""
        a = torch.as_tensor(airlight, dtype=hazy.dtype, device=hazy.device).reshape(-1, 3, 1, 1)
        planes = a.expand(hazy.shape[0], 3, *hazy.shape[-2:])
        inputs = [hazy, planes]
        if self.position:
            if coords is None:
                raise ValueError("this dehazer takes the frame coordinates of what it is given")
            inputs.append(coords.to(hazy))
        out = self.net(torch.cat(inputs, dim=1))
        t = T_MIN + (1 - T_MIN) * torch.sigmoid(out[:, :1])
        return (hazy - planes) / t + planes + out[:, 1:4]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Training's view: hazy RGB, airlight planes and frame coordinates
        (`conditioning.dehaze_input`); a model with an airlight branch estimates A from the hazy
        picture itself instead."""
        hazy = x[:, :3]
        airlight = self.analyse(hazy) if self.features is not None else x[:, 3:6, 0, 0]
        return self.apply(hazy, airlight, x[:, 6:8] if self.position else None)

    def grow_from(self, state: dict) -> None:
        """Start from a dehazer without the airlight branch (which begins as a gain of 1) or
        without position (whose input weights begin at zero)."""
        if self.position and state["net.head.weight"].shape[1] != self.net.head.weight.shape[1]:
            old = state["net.head.weight"]
            # pixel-unshuffle keeps each input channel's four phases together, so the old
            # channels are the first ones and the coordinate planes come after them
            weight = torch.zeros_like(self.net.head.weight)
            weight[:, :old.shape[1]] = old
            state = {**state, "net.head.weight": weight}
        load_grown(self, state, ("features.", "airlight_head.", "stats_head."))
