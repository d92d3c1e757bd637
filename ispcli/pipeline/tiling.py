"""Tiles with a halo: cut a frame so each tile's interior equals the whole-frame result."""

from __future__ import annotations

from dataclasses import dataclass

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
