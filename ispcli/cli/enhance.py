"""Enhance photos (PNG, JPEG, TIFF) with a trained network: tone, colour and detail.

Inputs may be 8-bit, 16-bit or float.
The model's global branch looks at the whole picture once (on a downscaled copy) and every
tile uses what it decided, so tiling never changes the result. --strength blends the result
with the input: out = in + strength·(enhanced − in).
Each output keeps its input's format, bit depth, ICC profile and EXIF unless --format/--bits
say otherwise. Inputs must be RGB, at least 16x16 pixels. INPUT may be files, folders (-r for
sub-folders, mirrored under the output), glob patterns, or - to read paths from standard
input, one per line.
Exit codes: 0 all enhanced or skipped, 1 some files failed, 2 usage error, 130 interrupted.
"""

from __future__ import annotations

from pathlib import Path

import typer

from ispcli.cli import common

PREFERRED_MODEL = "enhance-net"


def enhance(
    inputs: list[str] = common.IMAGE_INPUTS,
    output: Path = common.OUTPUT,
    model: str | None = common.model_option("enhance", PREFERRED_MODEL),
    strength: float | None = typer.Option(None, "--strength", metavar="0-1",
                                             help="How much of the enhancement to apply (0 = none).",
                                             show_default="1", rich_help_panel=common.PROC),
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
        "enhance", inputs=inputs, output=output, jobs=jobs, recursive=recursive, overwrite=overwrite,
        quiet=quiet, json_out=json_out, model=model, preferred=PREFERRED_MODEL,
        overrides={"format": fmt, "bits": bits, "quality": quality, "name": name, "strength": strength,
                   "tile": tile, "device": device, "precision": precision, "compile": compile_models}))
