"""Demosaic RAW files into linear camera-RGB TIFFs (research and comparison use).

The output is the sensor's own colour, linear: black and white levels are applied
(0 = black, 1 = clipping), and nothing else: no white balance, colour matrix, tone curve or
gamma, like `dcraw -4 -T -o 0` (so it looks dark and green). Orientation is applied, EXIF
carried over, no ICC profile embedded. 16-bit TIFF (clipped to [0, 1]) unless --bits 32
(float, unclipped). Linear DNGs are already demosaicked and fail.
With --cfa PATTERN, inputs are single-channel mosaic images (PNG/TIFF, 8/16-bit or float,
scaled to [0, 1]; sRGB-encoded, as research benchmarks store them) instead of raws, and each
output keeps its input's bit depth unless --bits says otherwise.
Methods: default, menon, malvar, bilinear, or net:NAME for a trained demosaic model.
Exit codes: 0 all demosaicked or skipped, 1 some files failed, 2 usage error, 130 interrupted.
"""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from ispcli.cli import common
from ispcli.cli.output import usage_error
from ispcli.recipe import DEMOSAIC_NAMES

CFA_NAMES = ("RGGB", "BGGR", "GRBG", "GBRG")
MOSAIC_EXTENSIONS = {".png", ".tif", ".tiff"}


def _check_method(method: str) -> None:
    from ispcli.models import weights

    if method in DEMOSAIC_NAMES:
        return
    if method.startswith("net:") and method[4:]:
        common.load_model(f"--method {method}", method[4:], "demosaic", "mosaic")
        return
    try:
        nets = [f"net:{n}" for n in weights.names("demosaic")]
    except weights.WeightsError:
        nets = []
    usage_error(f"--method {method!r}: expected one of {', '.join(DEMOSAIC_NAMES)} or net:NAME "
                f"(installed: {', '.join(nets) or 'no demosaic models'})")


def demosaic(
    inputs: List[str] = common.inputs_argument("Raw files (or mosaic images with --cfa)"),
    output: Path = common.OUTPUT,
    method: str = typer.Option("default", "--method", metavar="NAME",
                               help="default, menon, malvar, bilinear, or net:NAME (a trained model; "
                                    "Bayer only).", rich_help_panel=common.PROC),
    cfa: Optional[str] = typer.Option(None, "--cfa", metavar="|".join(CFA_NAMES),
                                      help="Inputs are single-channel mosaic images (PNG/TIFF) with this "
                                           "Bayer pattern, not raws.", rich_help_panel=common.PROC),
    bits: Optional[int] = typer.Option(None, "--bits", metavar="8|16|32",
                                       help="Bits per sample of the TIFF: 8, 16, or 32 (float, unclipped).",
                                       show_default="16 for raws, the input's for --cfa images",
                                       rich_help_panel=common.OUT),
    name: Optional[str] = common.NAME,
    recursive: bool = common.RECURSIVE,
    overwrite: bool = common.OVERWRITE,
    jobs: int = common.JOBS,
    tile: Optional[int] = common.TILE,
    device: Optional[str] = common.DEVICE,
    precision: Optional[str] = common.PRECISION,
    compile_models: bool | None = common.COMPILE,
    max_megapixels: float = common.MAX_MEGAPIXELS,
    timeout: float = common.TIMEOUT,
    quiet: bool = common.QUIET,
    json_out: bool = common.JSON,
) -> None:
    from ispcli.cli.batch_run import BatchOptions, run_batch
    from ispcli.io.batch import RAW_EXTENSIONS

    if cfa is not None and cfa.upper() not in CFA_NAMES:
        usage_error(f"--cfa {cfa!r}: expected one of {', '.join(CFA_NAMES)}")
    if bits is not None and bits not in (8, 16, 32):
        usage_error(f"--bits {bits}: expected 8, 16 or 32 (float)")
    if not max_megapixels > 0:
        usage_error(f"--max-megapixels {max_megapixels:g}: expected a positive number")
    if not timeout > 0:
        usage_error(f"--timeout {timeout:g}: expected a positive number of seconds")
    _check_method(method)
    r = common.build_recipe({"format": "tif", "bits": 0 if bits is None else bits, "demosaic": method,
                             "name": name, "tile": tile, "device": device, "precision": precision,
                             "compile": compile_models}, jobs)
    from ispcli.pipeline.image_jobs import demosaic_file

    opts = BatchOptions(inputs=inputs, output=str(output), recipe=r, recursive=recursive, overwrite=overwrite,
                        jobs=jobs, quiet=quiet, json=json_out, max_megapixels=max_megapixels, timeout=timeout,
                        extensions=MOSAIC_EXTENSIONS if cfa else RAW_EXTENSIONS,
                        worker=demosaic_file, verb="demosaicked", activity="demosaicking",
                        job_fields={"cfa": cfa.upper() if cfa else None})
    raise typer.Exit(run_batch(opts))
