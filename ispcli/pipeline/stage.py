"""`Stage` and `Pipeline`: the one shape every pixel operation takes.

A stage is a pure tensor function with a declared input/output domain and halo (pixels of
context it needs on each side). The pipeline refuses lists whose domains don't chain or
whose order disagrees with the order table, so no stage chooses its own position.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import Enum
from typing import Callable

import torch

from ispcli.pipeline.order import position
from ispcli.pipeline.tiling import Where


class Domain(str, Enum):
    """What the numbers in a tensor mean; see DESIGN.md "Domains"."""

    counts = "counts"    # sensor counts, black and white level not yet removed
    mosaic = "mosaic"    # 1 channel + CFA, normalised to [0, 1]
    camera = "camera"    # 3 channels, linear camera RGB
    linear = "linear"    # linear light in the output primaries, scene-referred
    display = "display"  # tone-mapped and encoded for output


@dataclass(frozen=True)
class Stage:
    name: str
    domain_in: Domain
    domain_out: Domain
    fn: Callable[[torch.Tensor], torch.Tensor]
    halo: int = 0
    # Networks pad their input with zeros at every edge; giving them reflected context at the
    # frame's borders (as tiles get real context inside) keeps tiles equal to the whole frame.
    extend: bool = False
    # A network that downsamples by k gives the same output only on the same k-pixel grid:
    # tiles must start at multiples of `align` from the frame's origin.
    align: int = 1
    # A stage whose result depends on where a pixel lies in the frame (a dehazer that learned
    # that the top of a picture is usually further away) is called as fn(x, where), with the
    # region's frame coordinates (`tiling.Where`); without them x is taken as the whole frame.
    positional: bool = False

    def __call__(self, x: torch.Tensor, where: Where | None = None) -> torch.Tensor:
        if self.positional:
            return self.fn(x, where if where is not None else Where.whole(x))
        return self.fn(x)


class PipelineError(ValueError):
    """A stage list that cannot run (wrong domains or order)."""


class Pipeline:
    """An ordered, domain-checked list of stages, applied to whole frames or tiles."""

    def __init__(self, stages: list[Stage]):
        for a, b in zip(stages, stages[1:]):
            if a.domain_out != b.domain_in:
                raise PipelineError(f"stage {b.name!r} takes {b.domain_in.value} but {a.name!r} "
                                    f"gives {a.domain_out.value}")
            if position(a.name) > position(b.name):
                raise PipelineError(f"stage {a.name!r} must come after {b.name!r} (order table)")
        self.stages = list(stages)

    @property
    def halo(self) -> int:
        """Context a tile needs so its interior equals the whole-frame result."""
        return sum(s.halo for s in self.stages)

    @property
    def align(self) -> int:
        """Tile origins must be multiples of this (every stage's grid, see Stage.align)."""
        return math.lcm(*(s.align for s in self.stages)) if self.stages else 1

    @property
    def extend(self) -> bool:
        """Whether tiles touching the frame's edge get reflected context (see Stage.extend)."""
        return any(s.extend for s in self.stages)

    @property
    def domain_in(self) -> Domain:
        return self.stages[0].domain_in

    @property
    def domain_out(self) -> Domain:
        return self.stages[-1].domain_out

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        for stage in self.stages:
            x = stage(x)
        return x

    def apply(self, x: torch.Tensor, margins: tuple[int, int, int, int], align: int = 1,
              where: Where | None = None) -> tuple[torch.Tensor, tuple[int, int]]:
        """Run a region whose kept part has `margins` (top, left, bottom, right) pixels of
        context around it; also the (top, left) of the kept part in the result. `where` says
        where the region lies in its frame (for positional stages).

        After each stage, context that no later stage needs is cropped off (in steps of
        `align`, so every crop keeps the mosaic phase and the networks' grid): behind a
        network's wide halo the classical stages then work on little more than the tile.
        Nothing is cropped while a network is still to come (see runner.MIN_EXTENDED_REGION)."""
        top, left, bottom, right = margins
        later = [sum(s.halo for s in self.stages[i + 1:]) for i in range(len(self.stages))]
        for i, stage in enumerate(self.stages):
            x = stage(x, where)
            if i + 1 == len(self.stages) or any(s.extend for s in self.stages[i + 1:]):
                continue
            keep = later[i]
            ct, cl, cb, cr = (max(0, m - keep) // align * align for m in (top, left, bottom, right))
            if ct or cl or cb or cr:
                h, w = x.shape[-2:]
                x = x[..., ct:h - cb, cl:w - cr]
                top, left, bottom, right = top - ct, left - cl, bottom - cb, right - cr
                where = where.shifted(ct, cl) if where is not None else None
        return x, (top, left)

    def __repr__(self) -> str:
        return "Pipeline(" + " → ".join(s.name for s in self.stages) + ")"
