"""What each learned task feeds its network, written once for `train`, `eval` and the runner.

A model is only as good as the agreement between the inputs it was trained on and the
inputs it gets in use, so the three places that call a model build its input here.
"""

from __future__ import annotations

import torch

RGGB = [[0, 1], [1, 2]]


def denoise_input(noisy: torch.Tensor, sigma) -> torch.Tensor:
    """Noisy RGB plus a noise-level plane (σ in [0, 1] units; a scalar, (N,) or a map)."""
    sigma = torch.as_tensor(sigma, dtype=noisy.dtype, device=noisy.device)
    if sigma.dim() == 1:
        sigma = sigma.view(-1, 1, 1, 1)
    plane = sigma.expand(noisy.shape[0], 1, *noisy.shape[-2:])
    return torch.cat([noisy, plane], dim=1)


def demosaic_input(mosaic_rggb: torch.Tensor) -> torch.Tensor:
    """Menon's demosaic of an RGGB mosaic (the residual's base) plus the mosaic itself."""
    from ispcli.isp.demosaic import demosaic

    return torch.cat([demosaic(mosaic_rggb, RGGB, "menon"), mosaic_rggb], dim=1)


def raw_noise_std(mosaic: torch.Tensor, site_gains: torch.Tensor, shot, read) -> torch.Tensor:
    """Noise σ of each white-balanced mosaic site under the shot/read model.

    The sensor saw `mosaic / gain`, whose variance is shot·signal + read; balancing
    multiplies the σ by the gain. The noisy value stands in for the unknown signal.
    """
    raw = (mosaic / site_gains).clamp_min(0)
    shot = torch.as_tensor(shot, dtype=mosaic.dtype, device=mosaic.device).reshape(-1, 1, 1, 1)
    read = torch.as_tensor(read, dtype=mosaic.dtype, device=mosaic.device).reshape(-1, 1, 1, 1)
    return site_gains * torch.sqrt(shot * raw + read)


def raw_denoise_input(mosaic_rggb: torch.Tensor, site_gains: torch.Tensor, shot, read) -> torch.Tensor:
    """A white-balanced RGGB mosaic plus its per-site noise σ plane."""
    return torch.cat([mosaic_rggb, raw_noise_std(mosaic_rggb, site_gains, shot, read)], dim=1)


def site_gain_plane(gains: torch.Tensor, height: int, width: int, batch: int = 1) -> torch.Tensor:
    """(N, 1, H, W) white-balance gain of each RGGB site; `gains` is (3,) or (N, 3)."""
    gains = gains.reshape(-1, 3)
    tile = torch.stack([torch.stack([gains[:, 0], gains[:, 1]], -1),
                        torch.stack([gains[:, 1], gains[:, 2]], -1)], -2)          # (N, 2, 2)
    plane = tile.repeat(1, (height + 1) // 2, (width + 1) // 2)[:, :height, :width]
    return plane.unsqueeze(1).expand(max(batch, gains.shape[0]), 1, height, width)


def cfa_offset(pattern) -> tuple[int, int]:
    """(dy, dx) of the red site in a 2×2 Bayer pattern: the shift that makes it RGGB."""
    flat = [tuple(row) for row in torch.as_tensor(pattern).tolist()]
    for dy in range(2):
        for dx in range(2):
            if flat[dy][dx] == 0:
                return dy, dx
    raise ValueError(f"not a Bayer pattern: {flat}")


def to_rggb(mosaic: torch.Tensor, pattern) -> tuple[torch.Tensor, tuple[int, int]]:
    """Pad one row/column (reflected, which keeps the CFA phase) so the mosaic starts on red."""
    dy, dx = cfa_offset(pattern)
    if dy or dx:
        mosaic = torch.nn.functional.pad(mosaic, (dx, 0, dy, 0), mode="reflect")
    return mosaic, (dy, dx)


def from_rggb(x: torch.Tensor, offset: tuple[int, int]) -> torch.Tensor:
    dy, dx = offset
    return x[..., dy:, dx:]


def dehaze_input(hazy: torch.Tensor, airlight: torch.Tensor, coords: torch.Tensor | None = None) -> torch.Tensor:
    """Hazy sRGB plus three planes of the image's airlight ((N, 3) or (3,)), which the
    analysis pass estimates once on the whole picture, and, when given, two planes of the
    pixels' frame coordinates (what positional dehazers read; others ignore them)."""
    a = torch.as_tensor(airlight, dtype=hazy.dtype, device=hazy.device).reshape(-1, 3, 1, 1)
    planes = [hazy, a.expand(hazy.shape[0], 3, *hazy.shape[-2:])]
    return torch.cat(planes + ([coords.to(hazy)] if coords is not None else []), dim=1)
