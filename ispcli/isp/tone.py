"""Exposure, tone and output encoding: scene-referred linear light → display values.

`neutral` is purely colorimetric: the output space's transfer function and nothing else.
`default` rolls highlights off smoothly (on max(RGB), so hues hold) and adds a gentle
S-curve, the way a camera's own JPEG would look.
"""

from __future__ import annotations

import torch

from ispcli.isp import colorspaces

HALO = 0
# highlight roll-off starts here (linear); values above approach 1.0 without clipping
ROLLOFF_KNEE = 0.7
CONTRAST = 0.25
# Cameras expose to protect highlights, so raw mid-tones sit low; the default look lifts them
# as darktable's scene-referred default does (+0.7 EV), the roll-off keeping skies intact.
DEFAULT_LOOK_EV = 0.7


def exposure(x: torch.Tensor, ev: float) -> torch.Tensor:
    return x * (2.0 ** ev)


def auto_exposure_ev(linear_preview: torch.Tensor, luminance: torch.Tensor,
                     target: float = 0.18, limit: float = 4.0) -> float:
    """EV that brings the log-average luminance to middle grey, never pushing the
    brightest 0.5 % past `limit` (the roll-off handles up to there)."""
    y = torch.einsum("c,nchw->nhw", luminance.to(linear_preview.device, torch.float32), linear_preview)
    y = y.flatten().clamp_min(1e-5)
    log_avg = torch.exp(torch.log(y).mean())
    ev = float(torch.log2(target / log_avg))
    hi = float(torch.quantile(y[:: max(1, y.numel() // 200_000)], 0.995))
    ev = min(ev, float(torch.log2(torch.tensor(limit / max(hi, 1e-5)))))
    return max(-4.0, min(6.0, ev))


def _rolloff(m: torch.Tensor) -> torch.Tensor:
    k = ROLLOFF_KNEE
    over = (m - k).clamp_min(0).mul_(-1 / (1 - k))
    # below the knee `over` is 0 and the second term vanishes (no torch.where: slow on CPU)
    return m.clamp_max(k).add_(torch.exp_(over).neg_().add_(1), alpha=1 - k)


def tone_default(x: torch.Tensor, space: str) -> torch.Tensor:
    """Default look: hue-preserving highlight roll-off, encode, mild S-curve."""
    x = x.clamp_min(0)
    peak = x.amax(1, keepdim=True).clamp_min_(1e-8)
    x.mul_(_rolloff(peak).div_(peak))
    y = colorspaces.encode(x, colorspaces.get(space), nonnegative=True).clamp_(0, 1)
    # cubic S through 0, 0.5 and 1: deeper shadows, steeper mid-tones, softer highlights
    s = (1 - y).mul_(y).mul_(y.mul(-2).add_(1)).mul_(CONTRAST)
    return y.sub_(s)


def tone_neutral(x: torch.Tensor, space: str, clip: bool = True) -> torch.Tensor:
    """Colorimetric: the space's transfer function only (clipped to [0, 1] unless float out)."""
    if clip:
        return colorspaces.encode(x.clamp(0, 1), colorspaces.get(space), nonnegative=True)
    return colorspaces.encode(x, colorspaces.get(space))
