"""Tiles with a halo: cut a frame so each tile's interior equals the whole-frame result."""

from __future__ import annotations

from dataclasses import dataclass

import torch

DEFAULT_TILE_CPU = 512
DEFAULT_TILE_GPU = 2048


@dataclass(frozen=True)
class Tile:
    """`y0:y1, x0:x1` is the part this tile owns; `ry0:ry1, rx0:rx1` what it reads."""

    y0: int
    x0: int
    y1: int
    x1: int
    ry0: int
    rx0: int
    ry1: int
    rx1: int


def round_up(value: int, multiple: int) -> int:
    return -(-value // multiple) * multiple


def tile_grid(height: int, width: int, tile: int, halo: int, align: int = 1) -> list[Tile]:
    """Tiles covering an H×W frame; origins and halos are multiples of `align` (the CFA
    period) so every tile starts at the same mosaic phase as the frame."""
    tile = max(align, round_up(tile, align))
    halo = round_up(halo, align)
    tiles = []
    for y0 in range(0, height, tile):
        for x0 in range(0, width, tile):
            y1, x1 = min(y0 + tile, height), min(x0 + tile, width)
            tiles.append(Tile(y0, x0, y1, x1, max(0, y0 - halo), max(0, x0 - halo),
                              min(height, y1 + halo), min(width, x1 + halo)))
    return tiles


@dataclass(frozen=True)
class Where:
    """Where a batch of regions lies in its frame: each region's top-left pixel in frame
    coordinates (negative inside reflected context) and the frame's height and width. A stage
    that uses position (`Stage.positional`) gets it, so that it sees the same coordinates
    whether the frame is run whole or in tiles."""

    origins: tuple[tuple[int, int], ...]
    frame: tuple[int, int]

    def shifted(self, dy: int, dx: int) -> "Where":
        return Where(tuple((y + dy, x + dx) for y, x in self.origins), self.frame)

    def planes(self, height: int, width: int, device=None, dtype=torch.float32) -> torch.Tensor:
        """(N, 2, height, width): each pixel's row and column in the frame, scaled to [0, 1];
        context that the runner filled by reflection gets the reflected pixel's coordinates."""
        out = []
        for y, x in self.origins:
            rows = _reflected(torch.arange(y, y + height, device=device), self.frame[0])
            cols = _reflected(torch.arange(x, x + width, device=device), self.frame[1])
            r = (rows.to(dtype) / max(1, self.frame[0] - 1)).view(height, 1).expand(height, width)
            c = (cols.to(dtype) / max(1, self.frame[1] - 1)).view(1, width).expand(height, width)
            out.append(torch.stack([r, c]))
        return torch.stack(out)

    @staticmethod
    def whole(x: torch.Tensor) -> "Where":
        """A tensor that is its whole frame (each item of the batch its own)."""
        return Where(((0, 0),) * x.shape[0], tuple(x.shape[-2:]))


def _reflected(index: torch.Tensor, size: int) -> torch.Tensor:
    """numpy's "reflect" padding (the edge pixel not repeated), as the runner pads frames."""
    if size == 1:
        return torch.zeros_like(index)
    period = 2 * (size - 1)
    i = index.remainder(period)
    return torch.where(i < size, i, period - i)
