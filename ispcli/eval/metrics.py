"""Image quality metrics shared by `train` (validation) and `eval`.

PSNR is computed on values in [0, 1] (peak 1) after the caller has quantised or clipped as
the benchmark prescribes; SSIM is Wang et al. 2004 with an 11-tap Gaussian window (σ 1.5) on
each channel, averaged, as scikit-image's `gaussian_weights=True` form.
"""

from __future__ import annotations

import math

import torch
from torch.nn import functional as F


def crop_border(x: torch.Tensor, border: int) -> torch.Tensor:
    return x[..., border:x.shape[-2] - border, border:x.shape[-1] - border] if border else x


def mse(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Per-image mean squared error of (N, C, H, W) tensors."""
    return ((a.float() - b.float()) ** 2).flatten(1).mean(1)


def psnr(a: torch.Tensor, b: torch.Tensor, border: int = 0) -> torch.Tensor:
    """Per-image PSNR in dB (peak 1); colour images give CPSNR (MSE over all channels)."""
    err = mse(crop_border(a, border), crop_border(b, border)).clamp_min(1e-12)
    return -10 * torch.log10(err)


def _gaussian_window(size: int = 11, sigma: float = 1.5, channels: int = 3, like=None) -> torch.Tensor:
    r = torch.arange(size, dtype=torch.float32) - (size - 1) / 2
    g = torch.exp(-r ** 2 / (2 * sigma ** 2))
    g = g / g.sum()
    w = (g[:, None] * g[None, :]).expand(channels, 1, size, size).contiguous()
    return w.to(like) if like is not None else w


def _ssim_terms(a, b, window, c1, c2):
    ch = a.shape[1]
    mu_a = F.conv2d(a, window, groups=ch)
    mu_b = F.conv2d(b, window, groups=ch)
    var_a = F.conv2d(a * a, window, groups=ch) - mu_a ** 2
    var_b = F.conv2d(b * b, window, groups=ch) - mu_b ** 2
    cov = F.conv2d(a * b, window, groups=ch) - mu_a * mu_b
    contrast = (2 * cov + c2) / (var_a + var_b + c2)
    luminance = (2 * mu_a * mu_b + c1) / (mu_a ** 2 + mu_b ** 2 + c1)
    return luminance, contrast


def ssim(a: torch.Tensor, b: torch.Tensor, border: int = 0) -> torch.Tensor:
    """Per-image SSIM of (N, C, H, W) tensors in [0, 1]."""
    a, b = crop_border(a.float(), border), crop_border(b.float(), border)
    window = _gaussian_window(channels=a.shape[1], like=a)
    luminance, contrast = _ssim_terms(a, b, window, 0.01 ** 2, 0.03 ** 2)
    return (luminance * contrast).flatten(1).mean(1)


_MS_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)


def ms_ssim(a: torch.Tensor, b: torch.Tensor, scales: int | None = None) -> torch.Tensor:
    """Multi-scale SSIM (Wang et al. 2003), differentiable; as many scales (≤5) as the
    image size allows for an 11-pixel window, with the published weights renormalised."""
    size = min(a.shape[-2:])
    scales = scales or max(1, min(5, int(math.log2(size / 11)) + 1))
    weights = torch.tensor(_MS_WEIGHTS[:scales], device=a.device)
    weights = weights / weights.sum()
    window = _gaussian_window(channels=a.shape[1], like=a)
    values = []
    for i in range(scales):
        luminance, contrast = _ssim_terms(a, b, window, 0.01 ** 2, 0.03 ** 2)
        if i == scales - 1:
            values.append((luminance * contrast).flatten(1).mean(1).clamp_min(1e-6))
        else:
            values.append(contrast.flatten(1).mean(1).clamp_min(1e-6))
            a, b = F.avg_pool2d(a, 2), F.avg_pool2d(b, 2)
    stacked = torch.stack(values, dim=1)
    return torch.prod(stacked ** weights, dim=1)
