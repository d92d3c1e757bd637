"""Colour filter array helpers: per-site values laid out as a full plane."""

from __future__ import annotations

import torch


def cfa_plane(values: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Repeat a (P, P) per-site table over an (1, 1, H, W) plane, phase (0, 0) at the origin."""
    p = values.shape[-1]
    reps_y, reps_x = -(-height // p), -(-width // p)
    return values.repeat(reps_y, reps_x)[:height, :width].reshape(1, 1, height, width)


def per_site(cfa: torch.Tensor, per_colour: torch.Tensor) -> torch.Tensor:
    """(P, P) table of `per_colour[c]` for the colour c at each CFA site."""
    return per_colour.to(torch.float32)[cfa.long()]
