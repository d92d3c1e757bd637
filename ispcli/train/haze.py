"""Synthetic haze from the atmospheric scattering model, I = J·t + A·(1 − t), t = e^(−β·d).

Most photos come without depth, so `depth_proxy` makes a plausible relative depth from the
image itself: the colour attenuation prior (Zhu, Mai and Shao, TIP 2015: depth grows with
brightness minus saturation, their fitted coefficients), smoothed at the scale of objects,
averaged with a vertical ramp (the top of a photograph is usually further away). The same
proxy serves training (photos in ../shared/data/train) and evaluation (Kodak24).
"""

from __future__ import annotations

import torch

from ispcli.isp.dehaze import box_filter

CAP = (0.121779, 0.959710, -0.780245)    # Zhu et al. 2015, depth = θ0 + θ1·value + θ2·saturation


def depth_proxy(image: torch.Tensor) -> torch.Tensor:
    """(N, 3, H, W) sRGB in [0, 1] → (N, 1, H, W) relative depth in [0, 1] (1 = far)."""
    n, _, h, w = image.shape
    value = image.amax(dim=1, keepdim=True)
    saturation = (value - image.amin(dim=1, keepdim=True)) / value.clamp_min(1e-3)
    cap = CAP[0] + CAP[1] * value + CAP[2] * saturation
    cap = box_filter(cap, max(2, max(h, w) // 16))
    lo = cap.amin(dim=(2, 3), keepdim=True)
    hi = cap.amax(dim=(2, 3), keepdim=True)
    cap = (cap - lo) / (hi - lo).clamp_min(1e-3)
    ramp = torch.linspace(1.0, 0.0, h, dtype=image.dtype).view(1, 1, h, 1).expand(n, 1, h, w)
    return 0.5 * cap + 0.5 * ramp


def attach_depth(image):
    """(H, W, 3) uint8 photo → (H, W, 6) with its depth proxy and each pixel's row and column
    in the photo (scaled to 0–255) as uint8 channels, computed on the whole photo: patches cut
    from it then carry the depth of the scene, not a ramp squeezed into the patch, and where
    in the picture they lie (what positional dehazers are told in use, `tiling.Where`)."""
    import numpy as np

    x = torch.from_numpy(image).permute(2, 0, 1).unsqueeze(0).float() / 255
    d = (depth_proxy(x)[0, 0] * 255).round().to(torch.uint8).numpy()
    h, w = image.shape[:2]
    rows = np.broadcast_to(np.linspace(0, 255, h).round().astype(np.uint8)[:, None], (h, w))
    cols = np.broadcast_to(np.linspace(0, 255, w).round().astype(np.uint8)[None, :], (h, w))
    return np.concatenate([image, d[..., None], rows[..., None], cols[..., None]], axis=2)


def add_haze(clean: torch.Tensor, depth: torch.Tensor, beta, airlight) -> torch.Tensor:
    """Haze clean images; `beta` (N,) scattering coefficients, `airlight` (N, 3) or (N,)."""
    n = clean.shape[0]
    beta = torch.as_tensor(beta, dtype=clean.dtype).reshape(n, 1, 1, 1)
    a = torch.as_tensor(airlight, dtype=clean.dtype).reshape(n, -1, 1, 1)
    t = torch.exp(-beta * depth)
    return clean * t + a * (1 - t)


def random_haze(clean: torch.Tensor, generator: torch.Generator, *, beta=(0.5, 2.0), airlight=(0.7, 1.0),
                tint: float = 0.0):
    """Hazy images with β and grey airlight drawn uniformly per image (as the eval protocol
    says), optionally tinted by up to ±`tint` per channel; returns (hazy, airlight (N, 3))."""
    n = clean.shape[0]
    b = beta[0] + (beta[1] - beta[0]) * torch.rand(n, generator=generator)
    a = airlight[0] + (airlight[1] - airlight[0]) * torch.rand(n, 1, generator=generator)
    a = a.expand(n, 3)
    if tint:
        a = (a + tint * (2 * torch.rand(n, 3, generator=generator) - 1)).clamp(0.05, 1.0)
    return add_haze(clean, depth_proxy(clean), b, a).clamp(0, 1), a
