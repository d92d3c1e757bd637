"""Dark channel prior dehazing (He, Sun and Tang, CVPR 2009 / TPAMI 2011) as pure tensor functions.

Haze follows the scattering model I = J·t + A·(1 − t). In a haze-free outdoor patch some
channel is nearly black, so the dark channel of I/A measures 1 − t. The airlight A is a
whole-image quantity: `estimate_airlight` runs once on a downscaled copy (the analysis pass)
and `dcp_dehaze` uses it on each tile. Every filter here has a bounded support (`HALO`), so
tiles with that halo give exactly the whole-frame result.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F

PATCH = 15           # dark-channel window (He et al.)
OMEGA = 0.95         # keep a little haze so distant things still look distant
T_MIN = 0.1          # lower bound on transmission: below it noise is amplified without limit
GUIDE_RADIUS = 40    # guided-filter refinement of the transmission (He et al. 2010)
GUIDE_EPS = 1e-3
HALO = 2 * GUIDE_RADIUS + PATCH // 2


def min_filter(x: torch.Tensor, size: int) -> torch.Tensor:
    """Minimum over a size×size window (separable; edges see only what is inside the frame)."""
    r = size // 2
    x = -F.max_pool2d(-x, (1, size), stride=1, padding=(0, r))
    return -F.max_pool2d(-x, (size, 1), stride=1, padding=(r, 0))


def box_filter(x: torch.Tensor, radius: int) -> torch.Tensor:
    """Mean over a (2r+1)² window, separable, normalised by the pixels inside the frame."""
    k = 2 * radius + 1
    x = F.avg_pool2d(x, (1, k), stride=1, padding=(0, radius), count_include_pad=False)
    return F.avg_pool2d(x, (k, 1), stride=1, padding=(radius, 0), count_include_pad=False)


def dark_channel(image: torch.Tensor, size: int = PATCH) -> torch.Tensor:
    """(N, 3, H, W) → (N, 1, H, W): the local minimum over window and channels."""
    return min_filter(image.amin(dim=1, keepdim=True), size)


def estimate_airlight(image: torch.Tensor, fraction: float = 0.001) -> torch.Tensor:
    """(N, 3, H, W) → (N, 3): the mean colour of the pixels whose dark channel is in the top
    `fraction` — the most haze-opaque region (He et al. pick the brightest of them; the mean is
    less sensitive to one white object). Meant for a downscaled copy of the whole image."""
    n = image.shape[0]
    dark = dark_channel(image).reshape(n, -1)
    count = max(1, int(dark.shape[1] * fraction))
    idx = dark.topk(count, dim=1).indices                                  # (N, k)
    pixels = image.reshape(n, 3, -1).gather(2, idx.unsqueeze(1).expand(n, 3, count))
    return pixels.mean(dim=2).clamp(0.05, 1.0)


def guided_filter(guide: torch.Tensor, src: torch.Tensor, radius: int = GUIDE_RADIUS,
                  eps: float = GUIDE_EPS) -> torch.Tensor:
    """Edge-preserving smoothing of `src` following the grey `guide` (He, Sun, Tang 2010)."""
    mean_i, mean_p = box_filter(guide, radius), box_filter(src, radius)
    cov_ip = box_filter(guide * src, radius) - mean_i * mean_p
    var_i = box_filter(guide * guide, radius) - mean_i * mean_i
    a = cov_ip / (var_i + eps)
    b = mean_p - a * mean_i
    return box_filter(a, radius) * guide + box_filter(b, radius)


def transmission(image: torch.Tensor, airlight: torch.Tensor) -> torch.Tensor:
    """Refined transmission map t ∈ [T_MIN, 1], (N, 1, H, W)."""
    a = airlight.reshape(-1, 3, 1, 1).to(image)
    coarse = 1.0 - OMEGA * dark_channel(image / a)
    grey = image.mean(dim=1, keepdim=True)
    return guided_filter(grey, coarse).clamp(T_MIN, 1.0)


def recover(image: torch.Tensor, t: torch.Tensor, airlight: torch.Tensor) -> torch.Tensor:
    """Invert the scattering model: J = (I − A) / t + A."""
    a = airlight.reshape(-1, 3, 1, 1).to(image)
    return (image - a) / t.clamp_min(T_MIN) + a


def dcp_dehaze(image: torch.Tensor, airlight: torch.Tensor) -> torch.Tensor:
    """Dehaze (N, 3, H, W) RGB with a known airlight (N, 3) or (3,). Values above 1 are kept
    (in develop this runs on linear light before exposure); the output encoding clips."""
    airlight = airlight.reshape(-1, 3).expand(image.shape[0], 3)
    return recover(image, transmission(image, airlight), airlight).clamp_min(0.0)


ANALYSIS_SIZE = 512   # long side of the copy the airlight is estimated on


def analysis_copy(image: torch.Tensor, size: int = ANALYSIS_SIZE) -> torch.Tensor:
    """An area-averaged copy of (N, 3, H, W) whose long side is at most `size`: the whole
    picture at a cost that does not grow with it."""
    h, w = image.shape[-2:]
    factor = max(1, -(-max(h, w) // size))
    return F.avg_pool2d(image, factor, ceil_mode=True) if factor > 1 else image


def image_airlight(image: torch.Tensor) -> torch.Tensor:
    """The analysis pass of every dehazer: the airlight (N, 3) of whole images, estimated on
    their downscaled copies (tiles then all use the same value)."""
    return estimate_airlight(analysis_copy(image))
