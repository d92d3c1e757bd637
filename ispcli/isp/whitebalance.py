"""White balance: per-channel gains, chosen from the file, a preset, or the picture itself."""

from __future__ import annotations

import torch

from ispcli.isp.cfa import cfa_plane, per_site

HALO = 0


def white_balance_mosaic(x: torch.Tensor, gains: torch.Tensor, cfa: torch.Tensor) -> torch.Tensor:
    """Multiply each mosaic site by the gain of its colour; `gains` is (3,) with G = 1."""
    plane = cfa_plane(per_site(cfa, gains.to(x.device)), x.shape[-2], x.shape[-1])
    return x * plane


def white_balance_rgb(x: torch.Tensor, gains: torch.Tensor) -> torch.Tensor:
    """Multiply (N, 3, H, W) camera RGB by (3,) gains."""
    return x * gains.to(x.device, torch.float32).view(1, 3, 1, 1)


def grey_world(preview: torch.Tensor, clip: float = 0.95) -> torch.Tensor:
    """Gains that make the average of unclipped, non-black pixels neutral (G = 1).

    `preview` is a small (N, 3, h, w) camera-RGB copy of the whole frame (analysis pass),
    so the result does not depend on how the frame is later tiled.
    """
    rgb = preview.reshape(3, -1) if preview.dim() == 3 else preview[0].reshape(3, -1)
    ok = (rgb.amax(0) < clip) & (rgb.amin(0) > 0.002)
    if int(ok.sum()) < 16:
        ok = torch.ones_like(ok)
    means = rgb[:, ok].mean(1).clamp_min(1e-6)
    return means[1] / means
