"""Denoise photos (PNG, JPEG, TIFF; 8-bit, 16-bit or float) with a trained network.

Each output keeps its input's format, bit depth, ICC profile and EXIF (Orientation included:
the pixels are not turned) unless --format/--bits say otherwise. Float TIFF values outside
[0, 1] are kept as they are. Without --sigma the noise level is estimated once per image from
the whole frame and reported (--json: "sigma"). Inputs must be RGB, at least 16x16 pixels.
INPUT may be files, folders (-r for sub-folders, mirrored under the output), glob patterns,
or - to read paths from standard input, one per line.
Exit codes: 0 all denoised or skipped, 1 some files failed, 2 usage error, 130 interrupted.
"""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from ispcli.cli import common
from ispcli.cli.output import usage_error

PREFERRED_MODEL = "denoise-unet"


def denoise(
    inputs: List[str] = common.inputs_argument("Images (PNG, JPEG, TIFF)"),
    output: Path = common.OUTPUT,
    model: Optional[str] = typer.Option(None, "--model", "-m", metavar="NAME",
                                        help="Denoising model (see `ispcli models`).",
                                        show_default=f"{PREFERRED_MODEL} if installed, else the first denoise model",
                                        rich_help_panel=common.PROC),
    sigma: Optional[float] = typer.Option(None, "--sigma", metavar="0-255",
                                          help="Noise standard deviation in 0-255 units, whatever the bit depth "
                                               "(0 = none).", show_default="estimated per image",
                                          rich_help_panel=common.PROC),
    fmt: Optional[str] = typer.Option(None, "--format", "-f", metavar="same|jpg|png|tif",
                                      help="Output format.", show_default="same as the input",
                                      rich_help_panel=common.OUT),
    bits: Optional[int] = typer.Option(None, "--bits", metavar="0|8|16|32",
                                       help="Bits per sample: 8, 16 (png/tif) or 32 (float tif); 0 keeps the "
                                            "input's.", show_default="0", rich_help_panel=common.OUT),
    quality: Optional[int] = typer.Option(None, "--quality", metavar="1-100",
                                          help="JPEG quality.", show_default="92", rich_help_panel=common.OUT),
    name: Optional[str] = common.NAME,
    recursive: bool = common.RECURSIVE,
    overwrite: bool = common.OVERWRITE,
    jobs: int = common.JOBS,
    tile: Optional[int] = common.TILE,
    device: Optional[str] = common.DEVICE,
    precision: Optional[str] = common.PRECISION,
    compile_models: bool | None = common.COMPILE,
    quiet: bool = common.QUIET,
    json_out: bool = common.JSON,
) -> None:
    from ispcli.cli.batch_run import BatchOptions, run_batch
    from ispcli.io.batch import IMAGE_EXTENSIONS

    if sigma is not None and not 0.0 <= sigma <= 255.0:
        usage_error(f"--sigma {sigma:g}: expected a noise level from 0 to 255 (0-255 units, whatever the "
                    "bit depth); leave it out to estimate it")
    r = common.build_recipe({
        "format": common.normalise_format(fmt) or "same", "bits": 0 if bits is None else bits,
        "quality": quality, "name": name, "sigma": -1.0 if sigma is None else float(sigma),
        "tile": tile, "device": device, "precision": precision, "compile": compile_models,
    }, jobs)
    if model is None:
        model = common.default_model("denoise", PREFERRED_MODEL, "--model")
    common.load_model(f"--model {model}", model, "denoise", "display")
    r = r.replace(model=model)
    from ispcli.pipeline.image_jobs import denoise_file

    opts = BatchOptions(inputs=inputs, output=str(output), recipe=r, recursive=recursive, overwrite=overwrite,
                        jobs=jobs, quiet=quiet, json=json_out, extensions=IMAGE_EXTENSIONS,
                        worker=denoise_file, verb="denoised", activity="denoising")
    raise typer.Exit(run_batch(opts))
