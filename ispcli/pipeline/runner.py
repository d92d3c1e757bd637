"""The one runner: streams tiles (with halo) of a source frame through a pipeline.

Memory is bounded by the tile: the source stays in its compact sensor form, only one
region at a time is converted to float32 on the device, and each result goes straight to a
sink (usually the output canvas). Every subcommand processes pixels through `run`.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch

from ispcli.pipeline.stage import Pipeline
from ispcli.pipeline.tiling import DEFAULT_TILE_CPU, DEFAULT_TILE_GPU, Tile, tile_grid

Sink = Callable[[Tile, torch.Tensor], None]


def auto_tile(device: torch.device) -> int:
    return DEFAULT_TILE_GPU if device.type != "cpu" else DEFAULT_TILE_CPU


def _region(source: np.ndarray, t: Tile, device: torch.device) -> torch.Tensor:
    """(1, C, h, w) float32 on `device` from an (H, W) or (H, W, C) array."""
    part = source[t.ry0:t.ry1, t.rx0:t.rx1]
    if part.dtype != np.float32:
        part = part.astype(np.float32)
    x = torch.from_numpy(np.ascontiguousarray(part))
    x = x.unsqueeze(0) if x.dim() == 2 else x.permute(2, 0, 1)
    return x.unsqueeze(0).to(device, non_blocking=True)


def run(pipeline: Pipeline, source: np.ndarray, sink: Sink, *, device: torch.device,
        tile: int = 0, align: int = 1,
        progress: Callable[[int, int], None] | None = None) -> None:
    """Apply `pipeline` to `source` tile by tile, handing each owned part to `sink`.

    `tile` = 0 picks a size for the device; `align` (the CFA period) keeps every tile at
    the frame's mosaic phase. The result is independent of the tile size as long as every
    stage's halo is declared truthfully.
    """
    height, width = source.shape[:2]
    tiles = tile_grid(height, width, tile or auto_tile(device), pipeline.halo, align)
    with torch.inference_mode():
        for i, t in enumerate(tiles):
            out = pipeline(_region(source, t, device))
            ys, xs = t.crop
            sink(t, out[..., ys, xs])
            if progress:
                progress(i + 1, len(tiles))


def run_whole(pipeline: Pipeline, source: np.ndarray, device: torch.device) -> torch.Tensor:
    """The reference result: the whole frame in one piece (tests hold tiles to it)."""
    with torch.inference_mode():
        full = Tile(0, 0, source.shape[0], source.shape[1], 0, 0, source.shape[0], source.shape[1])
        return pipeline(_region(source, full, device))
