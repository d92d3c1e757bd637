"""The learned tasks `train` and `eval` know: what a model sees, what it must give back,
which domain it works in and the architecture it gets unless told otherwise."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from ispcli.train import degrade


@dataclass(frozen=True)
class Task:
    name: str
    domain: str                      # display | mosaic (see DESIGN.md "Domains")
    make_pair: Callable              # (clean batch, generator) -> (model input, target)
    arch: str = "unet"
    args: dict = field(default_factory=dict)
    jpeg_downscale: int = 1          # see train.data._load
    summary: str = ""


TASKS: dict[str, Task] = {
    "denoise": Task(
        "denoise", "display", degrade.denoise_pair,
        args={"in_channels": 4, "out_channels": 3, "channels": [32, 64, 128, 256], "blocks": 2},
        summary="sRGB denoiser, Gaussian noise σ 0–75 (0–255 units), noise level given as a plane"),
    "demosaic": Task(
        "demosaic", "mosaic", degrade.demosaic_pair,
        args={"in_channels": 4, "out_channels": 3, "channels": [32, 64, 128, 256], "blocks": 2},
        jpeg_downscale=2,
        summary="Bayer (RGGB) demosaicker, residual over Menon, sRGB-domain noise-free mosaics"),
    "raw-denoise": Task(
        "raw-denoise", "mosaic", degrade.raw_pair,
        args={"in_channels": 2, "out_channels": 1, "channels": [32, 64, 128, 256], "blocks": 2},
        jpeg_downscale=2,
        summary="white-balanced Bayer mosaic denoiser, shot/read noise (Brooks et al. 2019), σ plane given"),
}


def get(name: str) -> Task:
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r} (known: {', '.join(TASKS)})")
    return TASKS[name]
