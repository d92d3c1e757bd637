"""Noise level estimation for blind denoising: one number per image, from the whole frame.

Donoho & Johnstone's robust estimator: the finest diagonal Haar wavelet band of a natural
image is almost all noise, and its median absolute value over 0.6745 is the noise σ.
"""

from __future__ import annotations

import numpy as np
import torch

MAX_SAMPLES = 4_000_000


def estimate_sigma(image: np.ndarray | torch.Tensor) -> float:
    """σ of additive white noise in an (H, W, C) or (N, C, H, W) image, in the image's units."""
    x = torch.as_tensor(np.asarray(image) if not torch.is_tensor(image) else image).float()
    if x.dim() == 3:
        x = x.permute(2, 0, 1).unsqueeze(0)
    h, w = x.shape[-2] // 2 * 2, x.shape[-1] // 2 * 2
    x = x[..., :h, :w]
    hh = (x[..., 0::2, 0::2] - x[..., 0::2, 1::2] - x[..., 1::2, 0::2] + x[..., 1::2, 1::2]) / 2
    values = hh.abs().flatten()
    if values.numel() > MAX_SAMPLES:  # a fixed stride, so the estimate is reproducible
        values = values[:: values.numel() // MAX_SAMPLES + 1]
    return float(values.median()) / 0.6745 if values.numel() else 0.0
