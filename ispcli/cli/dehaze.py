"""Dehaze photos (PNG, JPEG, TIFF) with a trained network or the dark channel prior.

Inputs may be 8-bit, 16-bit or float. --model dcp is the dark channel prior (He, Sun and
Tang 2009), which needs no trained model.
The airlight (the colour of the haze) is estimated once per image, on a downscaled copy of
the whole picture, and every tile uses it, so tiling never changes the result.
Each output keeps its input's format, bit depth, ICC profile and EXIF unless --format/--bits
say otherwise. Inputs must be RGB, at least 16x16 pixels. INPUT may be files, folders (-r for
sub-folders, mirrored under the output), glob patterns, or - to read paths from standard
input, one per line.
Exit codes: 0 all dehazed or skipped, 1 some files failed, 2 usage error, 130 interrupted.
"""

from __future__ import annotations

from pathlib import Path

import typer

from ispcli.cli import common

PREFERRED_MODEL = "dehaze-net"
CLASSICAL = "dcp"


def dehaze(
    inputs: list[str] = common.IMAGE_INPUTS,
    output: Path = common.OUTPUT,
    model: str | None = common.model_option("dehaze", PREFERRED_MODEL, CLASSICAL),
    fmt: str | None = common.SAME_FORMAT,
    bits: int | None = common.SAME_BITS,
    quality: int | None = common.QUALITY,
    name: str | None = common.NAME,
    recursive: bool = common.RECURSIVE,
    overwrite: bool = common.OVERWRITE,
    jobs: int = common.JOBS,
    tile: int | None = common.TILE,
    device: str | None = common.DEVICE,
    precision: str | None = common.PRECISION,
    compile_models: bool | None = common.COMPILE,
    quiet: bool = common.QUIET,
    json_out: bool = common.JSON,
) -> None:
    raise typer.Exit(common.run_image_command(
        "dehaze", inputs=inputs, output=output, jobs=jobs, recursive=recursive, overwrite=overwrite,
        quiet=quiet, json_out=json_out, model=model, preferred=PREFERRED_MODEL, fallback=CLASSICAL,
        overrides={"format": fmt, "bits": bits, "quality": quality, "name": name,
                   "tile": tile, "device": device, "precision": precision, "compile": compile_models}))
