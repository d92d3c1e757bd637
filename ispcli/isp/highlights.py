"""Clipped highlights: where a channel hit the sensor's ceiling, its colour is unknown.

After white balance each channel clips at its own gain, so a blown sky has green clipped at
1 and red/blue running on: demosaicked as-is it turns magenta. `clip` cuts every channel at
the lowest ceiling (neutral, flat), `blend` fades clipped pixels towards neutral keeping
their brightness, `reconstruct` borrows chroma from nearby unclipped pixels.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

# reconstruct looks this far for unclipped neighbours (box radius, pixels)
RECONSTRUCT_RADIUS = 12
HALO = {"clip": 0, "blend": 0, "reconstruct": RECONSTRUCT_RADIUS}


def clip_threshold(gains: torch.Tensor) -> float:
    """The white-balanced level where the first channel clips (raw 1.0 × its gain)."""
    return float(gains.min())


def clip_highlights(x: torch.Tensor, threshold: float) -> torch.Tensor:
    """Cut every sample at the lowest channel ceiling so clipped areas come out neutral."""
    return x.clamp(max=threshold)


def _clipped_weight(rgb: torch.Tensor, gains: torch.Tensor) -> torch.Tensor:
    """0 well below any channel's ceiling, 1 at it; smooth so no edge is drawn around it."""
    ceiling = gains.to(rgb.device, torch.float32).view(1, 3, 1, 1)
    frac = (rgb / ceiling).amax(1, keepdim=True)
    w = frac.sub_(0.85).div_(0.15).clamp_(0, 1)
    return w.mul_(w)


def blend_highlights(rgb: torch.Tensor, gains: torch.Tensor) -> torch.Tensor:
    """Fade near-clipped pixels towards neutral at their max(RGB) level (capped at the
    highest channel ceiling): a blown sky comes out white, never magenta, never darker."""
    w = _clipped_weight(rgb, gains)
    grey = rgb.amax(1, keepdim=True).clamp(max=float(gains.max()))
    return rgb + w * (grey - rgb)


def _box(x: torch.Tensor, r: int) -> torch.Tensor:
    """Box sum with zero padding outside the frame (masked sums make it a mean later)."""
    k = 2 * r + 1
    x = F.pad(x, (r, r, r, r))
    x = F.avg_pool2d(x, (k, 1), stride=1) * k
    return F.avg_pool2d(x, (1, k), stride=1) * k


def reconstruct_highlights(rgb: torch.Tensor, gains: torch.Tensor) -> torch.Tensor:
    """Give clipped pixels the chroma of unclipped neighbours, scaled to their brightness.

    Chroma is the ratio of each channel to the pixel's max; its masked local mean (a box of
    radius RECONSTRUCT_RADIUS) is the best guess of what the sensor would have seen. Where no
    unclipped neighbour exists, the pixel fades to neutral as in `blend`.
    """
    w = _clipped_weight(rgb, gains)
    peak = rgb.amax(1, keepdim=True).clamp_min(1e-6)
    chroma = rgb / peak
    trust = (1.0 - w) * (peak > 1e-3)
    num = _box(chroma * trust, RECONSTRUCT_RADIUS)
    den = _box(trust, RECONSTRUCT_RADIUS)
    local = torch.where(den > 0.5, num / den.clamp_min(1e-6), torch.ones_like(num))
    level = peak.clamp(max=float(gains.max()))
    guess = local / local.amax(1, keepdim=True).clamp_min(1e-6) * level
    return rgb + w * (guess - rgb)
