"""The enhancer: a global colour-and-tone transform predicted from a thumbnail of the whole
image, then a local U-Net that refines tone and detail per tile.

The global branch (in the spirit of HDRNet and image-adaptive 3D LUTs) sees only a
`THUMB`×`THUMB` area-averaged copy, so it can run once on the whole picture (the analysis
pass) and hand a few numbers to every tile: the result does not depend on tiling. Those
numbers are a 3×3 colour matrix with offset and a monotone tone curve per channel, whose knots
lie evenly on √x so that shadows (where low-light photos live) get fine control. All of it
starts as the identity, so an untrained or unsure model leaves the picture alone.

With `stats_width` a second head reads what auto-levels reads — luminance percentiles and the
channels' means and highlights, measured on the analysed copy itself — and adds to the
parameters; it starts at zero, so it can be grown onto a trained model (`grow_from`). Pooled
convolution features see a 64×64 average and find exposure hard to judge; these numbers say it
directly.

With `auto_width` a third head may hand the picture to the classical auto-enhance
(`isp.autoenhance`): it reads the statistics above, auto-enhance's own parameters and the
statistics of auto-enhance's result, and gives the weight with which the auto-enhanced picture
is blended into the model's own global transform. Auto levels is exactly right for a plain
exposure or contrast fault, where a predicted curve is only close, and wrong for a good photo;
the head learns which it is looking at. It starts at an even blend: a weight that starts near
0 or 1 sits where the sigmoid is flat and Adam moves it by about the learning rate a step, too
slowly. It is part of the analysis pass (auto's parameters too come from the whole image), so
the result still does not depend on tiling.

With `detail_sigma` the local branch may only add detail: its correction loses its low
frequencies (a Gaussian of that σ) so that brightness and colour, which the global branch
owns, cannot drift tile by tile or on a photo that needs nothing.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from ispcli.isp import autoenhance
from ispcli.models.unet import UNet, load_grown

THUMB = 64
LUMA = (0.2126, 0.7152, 0.0722)
QUANTILES = (0.001, 0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99, 0.999)
STATS = len(QUANTILES) + 6            # luminance percentiles, channel means, channel 99th percentiles
STATS_PIXELS = 65_536                 # the analysed copy is subsampled to about this many pixels
AUTO = len(autoenhance.PARAMS)
AUTO_FEATURES = 2 * STATS + AUTO      # the input's statistics, auto's parameters, its result's statistics


def image_stats(x: torch.Tensor) -> torch.Tensor:
    """(N, 3, H, W) in [0, 1] → (N, STATS): what auto-levels measures."""
    h, w = x.shape[-2:]
    step = max(1, math.ceil(math.sqrt(h * w / STATS_PIXELS)))
    x = x[..., ::step, ::step].flatten(2)                                  # (N, 3, P)
    weights = torch.tensor(LUMA, dtype=x.dtype, device=x.device).view(1, 3, 1)
    luma = (x * weights).sum(1)
    q = torch.tensor(QUANTILES, dtype=x.dtype, device=x.device)
    levels = torch.quantile(luma, q, dim=1).T                              # (N, len(QUANTILES))
    highlights = torch.quantile(x, 0.99, dim=2)                             # (N, 3)
    return torch.cat([levels, x.mean(2), highlights], dim=1)


class EnhanceNet(nn.Module):
    def __init__(self, channels: tuple[int, ...] = (16, 32, 64, 128), blocks: int = 2, knots: int = 16,
                 width: int = 64, detail_sigma: float = 0.0, stats_width: int = 0, auto_width: int = 0):
        super().__init__()
        self.knots, self.detail_sigma = knots, detail_sigma
        self.detail_radius = int(3 * detail_sigma + 0.5) if detail_sigma > 0 else 0
        self.local = UNet(6, 3, channels, blocks)
        self.features = nn.Sequential(
            nn.Conv2d(3, 16, 3, stride=2, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(16, 32, 3, stride=2, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(32, width, 3, stride=2, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(width, width, 3, stride=2, padding=1), nn.ReLU(inplace=True),
        )
        self.head = nn.Sequential(nn.Linear(2 * width, width), nn.ReLU(inplace=True),
                                  nn.Linear(width, self.own_params))
        nn.init.zeros_(self.head[-1].weight)
        nn.init.zeros_(self.head[-1].bias)
        self.stats_head = None
        if stats_width:
            self.stats_head = nn.Sequential(nn.Linear(STATS, stats_width), nn.ReLU(inplace=True),
                                            nn.Linear(stats_width, stats_width), nn.ReLU(inplace=True),
                                            nn.Linear(stats_width, self.own_params))
            nn.init.zeros_(self.stats_head[-1].weight)
            nn.init.zeros_(self.stats_head[-1].bias)
        self.auto_head = None
        if auto_width:
            self.auto_head = nn.Sequential(nn.Linear(AUTO_FEATURES, auto_width), nn.ReLU(inplace=True),
                                           nn.Linear(auto_width, auto_width), nn.ReLU(inplace=True),
                                           nn.Linear(auto_width, 1))
            nn.init.zeros_(self.auto_head[-1].weight)
            nn.init.zeros_(self.auto_head[-1].bias)

    @property
    def own_params(self) -> int:
        return 12 + 3 * self.knots

    @property
    def n_params(self) -> int:
        """How many numbers the analysis pass hands to every tile."""
        return self.own_params + (AUTO + 1 if self.auto_head is not None else 0)

    @property
    def receptive_field(self) -> int:
        return self.local.receptive_field + self.detail_radius

    @property
    def multiple(self) -> int:
        return self.local.multiple

    @staticmethod
    def thumbnail(x: torch.Tensor) -> torch.Tensor:
        return F.adaptive_avg_pool2d(x, THUMB)

    def analyse(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) whole images (or their analysis copies) → (N, `n_params`) parameters:
        the global transform's 12 + 3·knots, then with `auto_width` auto-enhance's parameters
        and the blend weight's logit."""
        x = x.clamp(0, 1)
        f = self.features(self.thumbnail(x))
        f = torch.cat([f.mean(dim=(2, 3)), f.amax(dim=(2, 3))], dim=1)
        params = self.head(f)
        stats = image_stats(x) if self.stats_head is not None or self.auto_head is not None else None
        if self.stats_head is not None:
            params = params + self.stats_head(stats)
        if self.auto_head is None:
            return params
        auto = autoenhance.analyse(x)
        logit = self.auto_head(torch.cat([stats, auto, image_stats(autoenhance.apply(x, auto))], dim=1))
        return torch.cat([params, auto, logit], dim=1)

    def grow_from(self, state: dict) -> None:
        """Start from an enhancer without the statistics head or the auto-enhance head."""
        load_grown(self, state, ("stats_head.", "auto_head."))

    # `train --part global` trains the whole-image transform alone: it owns brightness and
    # colour (the local branch only adds detail), and without the U-Net a step costs a fraction
    # of a full one, so many whole scenes per step are affordable.
    # `--part auto` trains the auto-enhance head alone.
    PARTS = {"global": ("features.", "head.", "stats_head.", "auto_head."), "auto": ("auto_head.",)}

    def part_forward(self, part: str, x: torch.Tensor) -> torch.Tensor:
        if part not in self.PARTS:
            raise ValueError(f"enhance-net has no part {part!r} (parts: {', '.join(self.PARTS)})")
        return self.global_transform(x, self.analyse(x))

    def global_transform(self, x: torch.Tensor, params: torch.Tensor) -> torch.Tensor:
        own = self._curves(x, params[:, :self.own_params])
        if self.auto_head is None:
            return own
        p = self.own_params
        weight = torch.sigmoid(params[:, p + AUTO:p + AUTO + 1]).view(-1, 1, 1, 1)
        return torch.lerp(own, autoenhance.apply(x, params[:, p:p + AUTO]), weight)

    def _curves(self, x: torch.Tensor, params: torch.Tensor) -> torch.Tensor:
        n, k = x.shape[0], self.knots
        matrix = torch.eye(3, device=x.device, dtype=x.dtype) + params[:, :9].view(n, 3, 3)
        offset = params[:, 9:12].view(n, 3, 1)
        z = (torch.bmm(matrix, x.reshape(n, 3, -1)) + offset).clamp(0, 1)
        u = z.clamp_min(1e-6).sqrt()                                      # knots even on √x
        steps = F.softplus(params[:, 12:].view(n, 3, k)) / (k * math.log(2))   # identity at zero
        curve = torch.cat([torch.zeros(n, 3, 1, device=x.device, dtype=x.dtype), steps.cumsum(-1)], dim=-1)
        pos = u * k
        idx = pos.floor().clamp(0, k - 1)
        frac = pos - idx
        idx = idx.long()
        v = curve.gather(2, idx) + frac * steps.gather(2, idx)
        return (v * v).view_as(x)

    def apply(self, x: torch.Tensor, params: torch.Tensor) -> torch.Tensor:
        """Enhance a tile with the whole image's parameters."""
        g = self.global_transform(x, params)
        out = self.local(torch.cat([g, x], dim=1))
        if not self.detail_radius:
            return out
        correction = out - g
        return g + correction - self._lowpass(correction)

    def _lowpass(self, x: torch.Tensor) -> torch.Tensor:
        r, s = self.detail_radius, self.detail_sigma
        t = torch.arange(-r, r + 1, dtype=x.dtype, device=x.device)
        k = torch.exp(-t * t / (2 * s * s))
        k = k / k.sum()
        c = x.shape[1]
        x = F.conv2d(F.pad(x, (r, r, 0, 0), mode="replicate"), k.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
        return F.conv2d(F.pad(x, (0, 0, r, r), mode="replicate"), k.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.apply(x, self.analyse(x))
