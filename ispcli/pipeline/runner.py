"""The one runner: streams tiles (with halo) of a source frame through a pipeline.

Memory is bounded by the tile: the source stays in its compact sensor form, only one
region at a time is converted to float32 on the device, and each result goes straight to a
sink (usually the output canvas). Every subcommand processes pixels through `run`.
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np
import torch

from ispcli.pipeline.stage import Pipeline
from ispcli.pipeline.tiling import (
    DEFAULT_TILE_CPU,
    DEFAULT_TILE_GPU,
    Tile,
    Where,
    round_up,
    tile_grid,
)

Sink = Callable[[Tile, torch.Tensor], None]


def auto_tile(device: torch.device, halo: int = 0) -> int:
    """The device's default, grown to 8 halos so that a network's wide context costs at most
    ~1.5x the work of the tile itself."""
    base = DEFAULT_TILE_GPU if device.type != "cpu" else DEFAULT_TILE_CPU
    return max(base, round_up(8 * halo, 256))


# PyTorch's CPU convolution runs inputs of under ~20k values through other kernels than larger
# ones (ATen leaves oneDNN for them), and the two round differently: a network on a small tile
# would differ from the whole frame in the last bit (a 16-bit output by 1 here and there).
# Extended (learned) pipelines therefore read regions at least this big, the extra being more
# context, which a truthful halo makes irrelevant to the owned pixels.
MIN_EXTENDED_REGION = 256


def _extra_context(owned: int, halo: int, align: int) -> int:
    short = MIN_EXTENDED_REGION - owned - 2 * halo
    return round_up(-(-short // 2), align) if short > 0 else 0


def _region(source: np.ndarray, t: Tile, halo: int, extend: bool,
            align: int = 1) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """The pixels tile `t` reads, as float32 (H, W[, C]); with `extend`, the context missing
    at the frame's edges is filled by reflection so every tile sees `halo` pixels around it
    (more where the region would be small, see MIN_EXTENDED_REGION). Also the margins (top,
    left, bottom, right) of context around the tile's own part in the region returned."""
    part = source[t.ry0:t.ry1, t.rx0:t.rx1]
    top, left = t.y0 - t.ry0, t.x0 - t.rx0
    if extend and halo:
        height, width = source.shape[:2]
        hy = halo + _extra_context(t.y1 - t.y0, halo, align)
        hx = halo + _extra_context(t.x1 - t.x0, halo, align)
        ry0, rx0 = max(0, t.y0 - hy), max(0, t.x0 - hx)
        ry1, rx1 = min(height, t.y1 + hy), min(width, t.x1 + hx)
        part = source[ry0:ry1, rx0:rx1]
        pad_top, pad_left = hy - (t.y0 - ry0), hx - (t.x0 - rx0)
        pad_bottom, pad_right = hy - (ry1 - t.y1), hx - (rx1 - t.x1)
        if pad_top or pad_left or pad_bottom or pad_right:
            pad = [(pad_top, pad_bottom), (pad_left, pad_right)] + [(0, 0)] * (part.ndim - 2)
            # reflect needs more than one pixel; a 1-pixel frame repeats its only pixel
            part = np.pad(part, pad, mode="reflect" if min(part.shape[:2]) > 1 else "edge")
        top, left = hy, hx
    if part.dtype != np.float32:
        part = part.astype(np.float32)
    bottom = part.shape[0] - top - (t.y1 - t.y0)
    right = part.shape[1] - left - (t.x1 - t.x0)
    return part, (top, left, bottom, right)


def _tensor(part: np.ndarray, device: torch.device) -> torch.Tensor:
    x = torch.from_numpy(np.ascontiguousarray(part))
    x = x.unsqueeze(0) if x.dim() == 2 else x.permute(2, 0, 1)
    if device.type == "cuda":
        # from page-locked memory the copy runs asynchronously, queued before the tile's
        # kernels; torch's caching host allocator keeps the buffer until the copy has run
        return x.unsqueeze(0).pin_memory().to(device, non_blocking=True)
    return x.unsqueeze(0)


def run(pipeline: Pipeline, source: np.ndarray, sink: Sink, *, device: torch.device,
        tile: int = 0, align: int = 1, batch: int = 0,
        progress: Callable[[int, int], None] | None = None) -> None:
    """Apply `pipeline` to `source` tile by tile, handing each owned part to `sink`.

    `tile` = 0 picks a size for the device; `align` (the CFA period) keeps every tile at
    the frame's mosaic phase; `batch` tiles of the same shape go through together (0: 4 on a
    GPU, where it keeps the device busy, 1 on the CPU, where it only costs memory). The result
    is independent of the tile size as long as every stage's halo is declared truthfully,
    which is also what lets a device that runs out of memory retry with half the tile.
    """
    align = math.lcm(align, pipeline.align)
    halo = round_up(pipeline.halo, align)
    size = tile or auto_tile(device, halo)
    while True:
        try:
            _stream(pipeline, source, sink, device, size, halo, align, batch, progress)
            return
        except _OUT_OF_MEMORY:
            # A device that runs out of memory gets smaller tiles and tries again. Tiles
            # already written are written again with the same values: the result does not
            # depend on the tile size.
            smaller = max(round_up(size // 2, align), MIN_RETRY_TILE)
            if smaller >= size and batch == 1:
                raise
            if device.type == "cuda":
                torch.cuda.empty_cache()
            size, batch = smaller, 1


MIN_RETRY_TILE = 64
_OUT_OF_MEMORY = getattr(torch, "OutOfMemoryError", torch.cuda.OutOfMemoryError)


def _stream(pipeline: Pipeline, source: np.ndarray, sink: Sink, device: torch.device, size: int, halo: int,
            align: int, batch: int, progress) -> None:
    height, width = source.shape[:2]
    tiles = tile_grid(height, width, size, halo, align)
    extend = pipeline.extend
    done = 0
    with torch.inference_mode():
        pending: list[tuple[Tile, np.ndarray, tuple[int, int]]] = []

        def flush():
            nonlocal done
            x = torch.cat([_tensor(p, device) for _, p, _ in pending]) if len(pending) > 1 \
                else _tensor(pending[0][1], device)
            where = Where(tuple((t.y0 - m[0], t.x0 - m[1]) for t, _, m in pending), (height, width))
            out, (top, left) = pipeline.apply(x, pending[0][2], align, where)
            for i, (t, _, _) in enumerate(pending):
                sink(t, out[i:i + 1, :, top:top + t.y1 - t.y0, left:left + t.x1 - t.x0])
            done += len(pending)
            pending.clear()
            if progress:
                progress(done, len(tiles))

        for t in tiles:
            part, offset = _region(source, t, halo, extend, align)
            if pending and (pending[0][1].shape != part.shape or pending[0][2] != offset):
                flush()
            pending.append((t, part, offset))
            if len(pending) >= (batch or (4 if device.type != "cpu" else 1)):
                flush()
        if pending:
            flush()


def run_whole(pipeline: Pipeline, source: np.ndarray, device: torch.device, align: int = 1) -> torch.Tensor:
    """The reference result: the whole frame in one piece (tests hold tiles to it)."""
    height, width = source.shape[:2]
    align = math.lcm(align, pipeline.align)
    halo = round_up(pipeline.halo, align)
    full = Tile(0, 0, height, width, 0, 0, height, width)
    part, margins = _region(source, full, halo, pipeline.extend, align)
    with torch.inference_mode():
        where = Where(((-margins[0], -margins[1]),), (height, width))
        out, (top, left) = pipeline.apply(_tensor(part, device), margins, align, where)
    return out[..., top:top + height, left:left + width]
