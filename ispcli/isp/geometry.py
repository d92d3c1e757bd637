"""Orientation: bake EXIF orientation into the pixels (the output then says Orientation = 1)."""

from __future__ import annotations

import torch

HALO = 0


def orient(x: torch.Tensor, orientation: int) -> torch.Tensor:
    """Turn (..., H, W) stored pixels into display pixels for EXIF orientation 1-8."""
    if orientation == 2:
        return x.flip(-1)
    if orientation == 3:
        return x.flip(-1).flip(-2)
    if orientation == 4:
        return x.flip(-2)
    if orientation == 5:
        return x.transpose(-1, -2)
    if orientation == 6:
        return x.transpose(-1, -2).flip(-1)
    if orientation == 7:
        return x.transpose(-1, -2).flip(-1).flip(-2)
    if orientation == 8:
        return x.transpose(-1, -2).flip(-2)
    return x


def oriented_box(y0: int, x0: int, h: int, w: int, height: int, width: int, orientation: int):
    """Where the stored box (y0, x0, h, w) of an H×W image lands after `orient`: (y, x, h, w)."""
    if orientation == 2:
        return y0, width - x0 - w, h, w
    if orientation == 3:
        return height - y0 - h, width - x0 - w, h, w
    if orientation == 4:
        return height - y0 - h, x0, h, w
    if orientation == 5:
        return x0, y0, w, h
    if orientation == 6:
        return x0, height - y0 - h, w, h
    if orientation == 7:
        return width - x0 - w, height - y0 - h, w, h
    if orientation == 8:
        return width - x0 - w, y0, w, h
    return y0, x0, h, w


def oriented_size(height: int, width: int, orientation: int) -> tuple[int, int]:
    return (width, height) if orientation in (5, 6, 7, 8) else (height, width)
