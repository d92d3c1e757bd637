"""Black and white levels: sensor counts → normalised signal, 0 at black, 1 at clipping."""

from __future__ import annotations

import torch

HALO = 0


def normalize_levels(x: torch.Tensor, black: torch.Tensor, white: float) -> torch.Tensor:
    """(x - black) / (white - black).

    `x` is (N, C, H, W) in sensor counts; `black` broadcasts against it (a per-site plane for
    a mosaic, (1, 3, 1, 1) for a linear raw). Values are not clipped: noise below black
    carries information a denoiser needs, and the highlight stage decides about clipping.
    """
    return (x - black) / (white - black)
