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
    channels: int = 3                # per sampled patch: 6 for (input, target) pairs
    pairs: bool = False              # takes --pairs INPUT_DIR TARGET_DIR
    loss: str = "l1"
    depth: bool = False              # photos carry their depth proxy and coordinates (haze.attach_depth)


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
    "dehaze": Task(
        "dehaze", "display", degrade.dehaze_pair, arch="dehaze-net",
        args={"channels": [32, 64, 128, 256], "blocks": 2}, channels=6, depth=True,
        summary="haze I = J·t + A·(1 − t) over the depth proxy of train.haze (colour attenuation prior + "
                "vertical ramp, on the whole photo), β 0–2.5, airlight 0.6–1.0 ±0.04 tint, told with 10% error "
                "(a model with an airlight branch estimates its own from the whole scene instead)"),
    "deblur": Task(
        "deblur", "display", degrade.deblur_pair,
        args={"in_channels": 3, "out_channels": 3, "channels": [32, 64, 128, 256], "blocks": 2},
        summary="blind: random camera-shake trajectories (Boracchi & Foi 2012) up to 26 px or defocus discs, "
                "Gaussian noise σ 0–2%"),
    "enhance": Task(
        "enhance", "display", degrade.enhance_pair, arch="enhance-net",
        args={"channels": [16, 32, 64, 128], "blocks": 2, "knots": 16, "width": 64, "detail_sigma": 4.0},
        channels=6, pairs=True, loss="dped",
        summary="paired photos (--pairs) and phone-like degradations of good photos (exposure, cast, "
                "contrast, saturation, softness, noise, JPEG; 30% untouched)"),
}


def get(name: str) -> Task:
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r} (known: {', '.join(TASKS)})")
    return TASKS[name]
