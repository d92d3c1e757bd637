"""Classical auto-enhance, the baseline of `eval enhance`: grey-world white balance, auto
levels and a global contrast S-curve, as an image editor's one-click "auto" does.

Every correction is global, so it splits as DESIGN.md asks: `analyse` measures a few numbers
on a subsampled copy of the whole image once, and `apply` uses them on each pixel (halo 0,
any tiling gives the same result). The steps, in order:

1. grey world (Buchsbaum 1980) in linear light: channel gains that make the mean colour grey,
   taken only part of the way (`WB_STRENGTH`, in log gain) and bounded (`WB_LIMIT`), since a
   scene that really is mostly green or orange is not a colour cast;
2. auto levels on luminance: the 0.1% / 99.9% percentiles become black and white (the
   same points for all three channels, so hues hold), the stretch bounded (`MAX_STRETCH`);
   then a mid-tone gamma that lifts a dark picture's mean luminance towards `MID_TARGET`
   (never darkening, never stronger than `MIN_GAMMA`);
3. a contrast S-curve y − a·sin(2πy)/2π (fixed at 0 and 1, steeper in the middle), its
   amount `a` larger the flatter the picture (luminance standard deviation below
   `FLAT_STD`), at most `MAX_CONTRAST`.

The constants were chosen on training data only, never on a benchmark set: a small grid
scored on the 22 low-light pairs that `train enhance` uses (not the held-out ones) and on 24
Wikimedia crops of ../shared/data/train, phone-degraded and as they are (PSNR of pairs /
degraded / unchanged: 12.9 / 24.3 / 32.3 dB; untouched inputs 8.2 / 20.8 / ∞). Trade-offs
seen there: 0.5% / 99.5% percentiles clip good photos (7 dB lower PSNR to the unchanged input);
grey world is the costliest step for good photos (−7 dB to the unchanged input at strength
0.25, for +0.6 / +0.1 dB elsewhere), kept because a cast is what it is for; a stronger lift
or S-curve helps the low-light pairs and hurts the rest.
"""

from __future__ import annotations

import math

import torch

HALO = 0
GAMMA = 2.2                   # sRGB ≈ linear^(1/2.2), as train.phone degrades
LUMA = (0.2126, 0.7152, 0.0722)
ANALYSIS_PIXELS = 262_144     # the subsampled copy analysed (512×512)
WB_STRENGTH = 0.25
WB_LIMIT = 1.5                # largest gain (and 1/smallest) of white balance
PERCENTILES = (0.001, 0.999)
MAX_STRETCH = 6.0
MID_TARGET = 0.25
MIN_GAMMA = 0.5
FLAT_STD = 0.12
MAX_CONTRAST = 0.15
PARAMS = ("gain_r", "gain_g", "gain_b", "black", "white", "gamma", "contrast")


def _luma(x: torch.Tensor) -> torch.Tensor:
    w = torch.tensor(LUMA, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    return (x * w).sum(1, keepdim=True)


def _subsample(image: torch.Tensor) -> torch.Tensor:
    """Every k-th pixel in both directions: the whole picture's distribution of values,
    at most about ANALYSIS_PIXELS of them (area averaging would pull in the percentiles)."""
    h, w = image.shape[-2:]
    step = max(1, math.ceil(math.sqrt(h * w / ANALYSIS_PIXELS)))
    return image[..., ::step, ::step]


def _white_balance(x: torch.Tensor, gains: torch.Tensor) -> torch.Tensor:
    lin = x.clamp(0, 1) ** GAMMA
    return (lin * gains.view(-1, 3, 1, 1)).clamp(0, 1) ** (1 / GAMMA)


def _levels(y: torch.Tensor, black: torch.Tensor, white: torch.Tensor, gamma: torch.Tensor) -> torch.Tensor:
    b, w, g = (v.view(-1, 1, 1, 1) for v in (black, white, gamma))
    return ((y - b) / (w - b)).clamp(0, 1) ** g


def _s_curve(y: torch.Tensor, amount: torch.Tensor) -> torch.Tensor:
    return y - amount.view(-1, 1, 1, 1) * torch.sin(2 * math.pi * y) / (2 * math.pi)


def analyse(image: torch.Tensor) -> torch.Tensor:
    """(N, 3, H, W) sRGB in [0, 1], whole images → (N, 7) parameters (see `PARAMS`)."""
    x = _subsample(image.float().clamp(0, 1))
    n = x.shape[0]
    means = (x ** GAMMA).mean(dim=(2, 3)).clamp_min(1e-4)                     # (N, 3)
    gains = (means.mean(1, keepdim=True) / means) ** WB_STRENGTH
    gains = gains.clamp(1 / WB_LIMIT, WB_LIMIT)
    luma = _luma(_white_balance(x, gains))                                     # (N, 1, h, w)
    flat = luma.reshape(n, -1)
    q = torch.quantile(flat, torch.tensor(PERCENTILES, dtype=flat.dtype, device=flat.device), dim=1)
    black, white = q[0], q[1]
    white = torch.maximum(white, black + 1 / MAX_STRETCH)
    black = torch.minimum(black, white - 1 / MAX_STRETCH).clamp_min(0)
    ones = torch.ones_like(black)
    stretched = _levels(luma, black, white, ones).reshape(n, -1)
    mean = stretched.mean(1).clamp(1e-3, 0.999)
    gamma = (math.log(MID_TARGET) / torch.log(mean)).clamp(MIN_GAMMA, 1.0)  # ≤ 1: only lifts
    std = _levels(luma, black, white, gamma).reshape(n, -1).std(1)
    contrast = (MAX_CONTRAST * (1 - std / FLAT_STD)).clamp(0, MAX_CONTRAST)
    return torch.cat([gains, black[:, None], white[:, None], gamma[:, None], contrast[:, None]], dim=1)


def apply(x: torch.Tensor, params: torch.Tensor) -> torch.Tensor:
    """Enhance (N, 3, H, W) pixels (a tile or the whole image) with `analyse`'s parameters."""
    p = params.to(device=x.device, dtype=x.dtype).reshape(-1, len(PARAMS))
    y = _levels(_white_balance(x, p[:, :3]), p[:, 3], p[:, 4], p[:, 5])
    return _s_curve(y, p[:, 6]).clamp(0, 1)


def auto_enhance(image: torch.Tensor) -> torch.Tensor:
    """Both passes on whole images."""
    return apply(image, analyse(image))
