"""Develop RAW files (or whole folders) into JPEG, PNG or TIFF.

INPUT may be files, folders (-r to include sub-folders, mirrored under the output),
glob patterns, or - to read paths from standard input, one per line.
Exit codes: 0 all developed or skipped, 1 some files failed, 2 usage error, 130 interrupted.
"""

from __future__ import annotations

from pathlib import Path

import typer

from ispcli.cli import common
from ispcli.cli.output import usage_error
from ispcli.recipe import COLOR_SPACE_NAMES, DEMOSAIC_NAMES

_PROC = "Processing"
_OUT = "Output"
_RUN = "Batch"


def _choice(values) -> str:
    return "|".join(values)


def check_models(r) -> None:
    """Refuse an unknown, corrupt or wrong-kind model once, before any file is read."""
    from ispcli.models import registry, weights

    wanted = []
    if r.denoise != "none":
        wanted.append(("--denoise", r.denoise, "raw-denoise", "mosaic"))
    if r.demosaic.startswith("net:"):
        wanted.append(("--demosaic", r.demosaic[4:], "demosaic", "mosaic"))
    if r.deblur != "none":
        wanted.append(("--deblur", r.deblur, "deblur", "display"))
    if r.dehaze not in ("none", "dcp"):
        wanted.append(("--dehaze", r.dehaze, "dehaze", "display"))
    if r.enhance != "none":
        wanted.append(("--enhance", r.enhance, "enhance", "display"))
    for option, name, task, domain in wanted:
        try:
            registry.check(name, task=task, domain=domain)
        except (registry.ModelError, weights.WeightsError) as exc:
            usage_error(f"{option} {name}: {exc}" + ("; --dehaze also takes dcp or none" if task == "dehaze" else ""))


INPUTS = typer.Argument(..., metavar="INPUT...", show_default=False,
                        help="Raw files, folders, globs, or - for paths on stdin.")
OUTPUT = typer.Option(..., "-o", "--output", help="Output folder (created if missing).", rich_help_panel=_OUT)

RECIPE = typer.Option(None, "--recipe", metavar="FILE", help="Load settings from a TOML recipe or a .ispcli.json "
                      "sidecar (flags override it).", rich_help_panel=_PROC)


def develop(
    inputs: list[str] = INPUTS,
    output: Path = OUTPUT,
    fmt: str | None = typer.Option(None, "--format", "-f", metavar="jpg|png|tif",
                                   help="Output format.  [default: jpg]", rich_help_panel=_OUT),
    bits: int | None = typer.Option(None, "--bits", metavar="8|16|32",
                                    help="Bits per sample: 8, 16 (png/tif) or 32 (float tif).  [default: 8]",
                                    rich_help_panel=_OUT),
    quality: int | None = typer.Option(None, "--quality", metavar="1-100",
                                       help="JPEG quality.  [default: 92]", rich_help_panel=_OUT),
    name: str | None = typer.Option(None, "--name", metavar="TEMPLATE",
                                    help="Output name: {stem} {ext} {camera} {make} {model} {iso} {lens} "
                                         "{date:%Y%m%d} {index}.  [default: {stem}]", rich_help_panel=_OUT),
    no_gps: bool = typer.Option(False, "--no-gps", help="Do not copy GPS tags.", rich_help_panel=_OUT),
    sidecar: bool = typer.Option(False, "--sidecar", help="Write <output>.ispcli.json with the recipe.",
                                 rich_help_panel=_OUT),
    wb: str | None = typer.Option(None, "--wb", metavar="camera|auto|daylight|R,G,B",
                                  help="White balance.  [default: camera]", rich_help_panel=_PROC),
    highlights: str | None = typer.Option(None, "--highlights", metavar="clip|blend|reconstruct",
                                          help="Clipped highlights.  [default: blend]", rich_help_panel=_PROC),
    demosaic: str | None = typer.Option(None, "--demosaic", metavar=_choice(DEMOSAIC_NAMES) + "|net:NAME",
                                        help="Demosaicking method; net:NAME for a learned demosaicker "
                                             "(ispcli models).  [default: default]", rich_help_panel=_PROC),
    denoise: str | None = typer.Option(None, "--denoise", metavar="NAME|none",
                                       help="Raw-mosaic denoiser model, run before demosaicking; noise level "
                                            "from the ISO, else measured.  [default: none]",
                                       rich_help_panel=_PROC),
    deblur: str | None = typer.Option(None, "--deblur", metavar="NAME|none",
                                      help="Blind deblurring model, run on linear light after the colour "
                                           "matrix.  [default: none]", rich_help_panel=_PROC),
    dehaze: str | None = typer.Option(None, "--dehaze", metavar="NAME|dcp|none",
                                      help="Dehazing model, or dcp (dark channel prior), run on linear light "
                                           "after deblurring; the airlight is estimated once per image.  "
                                           "[default: none]", rich_help_panel=_PROC),
    enhance: str | None = typer.Option(None, "--enhance", metavar="NAME|none",
                                       help="Enhancement model, run on the display image after the tone "
                                            "curve.  [default: none]", rich_help_panel=_PROC),
    strength: float | None = typer.Option(None, "--strength", metavar="0-1",
                                          help="How much of --enhance to apply.  [default: 1]",
                                          rich_help_panel=_PROC),
    precision: str | None = typer.Option(None, "--precision", metavar="auto|fp32|fp16|bf16",
                                         help="Arithmetic of learned stages on a GPU (the CPU always uses "
                                              "fp32).  [default: auto = fp16 on CUDA]", rich_help_panel=_RUN),
    compile_models: bool | None = common.COMPILE,
    color_space: str | None = typer.Option(None, "--color-space", metavar=_choice(COLOR_SPACE_NAMES),
                                           help="Output colour space (its ICC profile is embedded).  "
                                                "[default: srgb]", rich_help_panel=_PROC),
    exposure: float | None = typer.Option(None, "--exposure", metavar="EV",
                                          help="Exposure correction in stops.  [default: 0]", rich_help_panel=_PROC),
    auto_exposure: bool | None = typer.Option(None, "--auto-exposure/--no-auto-exposure",
                                              help="Bring the average to middle grey.  [default: off]",
                                              show_default=False, rich_help_panel=_PROC),
    look: str | None = typer.Option(None, "--look", metavar="neutral|default",
                                    help="neutral: colorimetric only; default: tone curve with highlight "
                                         "roll-off.  [default: default]", rich_help_panel=_PROC),
    recipe_file: Path | None = RECIPE,
    recursive: bool = typer.Option(False, "-r", "--recursive", help="Descend into sub-folders.",
                                   rich_help_panel=_RUN),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace existing outputs (default: skip them).",
                                   rich_help_panel=_RUN),
    jobs: int = typer.Option(0, "-j", "--jobs", metavar="N", help="Parallel workers (0 = auto).",
                             rich_help_panel=_RUN),
    tile: int | None = typer.Option(None, "--tile", metavar="PIXELS", help="Tile size (0 = auto).",
                                    rich_help_panel=_RUN),
    device: str | None = typer.Option(None, "--device", metavar="auto|cpu|cuda|mps",
                                      help="Compute device.  [default: auto]", rich_help_panel=_RUN),
    max_megapixels: float = common.MAX_MEGAPIXELS,
    timeout: float = common.TIMEOUT,
    executor: str = common.EXECUTOR,
    address: str | None = common.ADDRESS,
    quiet: bool = typer.Option(False, "-q", "--quiet", help="No progress or summary (errors still shown).",
                               rich_help_panel=_RUN),
    json_out: bool = typer.Option(False, "--json", help="One JSON object per file on stdout.",
                                  rich_help_panel=_RUN),
) -> None:
    from ispcli.cli.batch_run import BatchOptions, run_batch

    overrides = {
        "format": fmt, "bits": bits, "quality": quality, "name": name, "wb": wb,
        "highlights": highlights, "demosaic": demosaic, "color_space": color_space,
        "denoise": denoise, "deblur": deblur, "dehaze": dehaze, "enhance": enhance, "strength": strength,
        "precision": precision, "compile": compile_models,
        "exposure": exposure, "auto_exposure": auto_exposure, "look": look, "tile": tile, "device": device,
    }
    overrides = {k: v for k, v in overrides.items() if v is not None}
    if no_gps:
        overrides["gps"] = False
    if fmt is not None:
        overrides["format"] = {"jpeg": "jpg", "tiff": "tif"}.get(fmt.lower(), fmt.lower())
    if overrides.get("format") in ("png", "tif") and bits is None and "bits" not in overrides:
        overrides.setdefault("bits", 16)
    r = common.build_recipe(overrides, jobs, recipe_file)
    check_models(r)
    if max_megapixels <= 0:
        usage_error(f"--max-megapixels {max_megapixels}: expected a positive number")
    if not timeout > 0:
        usage_error(f"--timeout {timeout}: expected a positive number of seconds")
    common.check_executor(executor, address)
    opts = BatchOptions(inputs=inputs, output=str(output), recipe=r, recursive=recursive,
                        overwrite=overwrite, jobs=jobs, sidecar=sidecar, quiet=quiet, json=json_out,
                        max_megapixels=max_megapixels, timeout=timeout, executor=executor, address=address)
    raise typer.Exit(run_batch(opts))
