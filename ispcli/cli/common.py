"""Options and checks the image→image commands (denoise, demosaic) share.

Typer reads these `OptionInfo` objects once per command it registers, so one definition
serves every command. Cheap to import: no torch, no rawpy.
"""

from __future__ import annotations

from typing import Optional

import typer

from ispcli.cli.output import usage_error

OUT, PROC, RUN = "Output", "Processing", "Batch"


def inputs_argument(what: str):
    return typer.Argument(..., metavar="INPUT...", show_default=False,
                          help=f"{what}, folders, globs, or - for paths on stdin.")


OUTPUT = typer.Option(..., "-o", "--output", help="Output folder (created if missing).", rich_help_panel=OUT)
NAME = typer.Option(None, "--name", metavar="TEMPLATE",
                    help="Output name: {stem} {ext} {camera} {make} {model} {iso} {lens} {date:%Y%m%d} {index}.",
                    show_default="{stem}", rich_help_panel=OUT)
RECURSIVE = typer.Option(False, "-r", "--recursive", help="Descend into sub-folders.", rich_help_panel=RUN)
OVERWRITE = typer.Option(False, "--overwrite", help="Replace existing outputs (default: skip them).",
                         rich_help_panel=RUN)
JOBS = typer.Option(0, "-j", "--jobs", metavar="N", help="Parallel workers (0 = auto).", rich_help_panel=RUN)
TILE = typer.Option(None, "--tile", metavar="PIXELS", help="Tile size (0 = auto); never changes the result.",
                    rich_help_panel=RUN)
DEVICE = typer.Option(None, "--device", metavar="auto|cpu|cuda|mps", help="Compute device.", show_default="auto",
                      rich_help_panel=RUN)
PRECISION = typer.Option(None, "--precision", metavar="auto|fp32|fp16|bf16",
                         help="Arithmetic of learned models on a GPU (the CPU always uses fp32).",
                         show_default="auto = fp16 on CUDA", rich_help_panel=RUN)
QUIET = typer.Option(False, "-q", "--quiet", help="No progress or summary (errors still shown).",
                     rich_help_panel=RUN)
JSON = typer.Option(False, "--json", help="One JSON object per file on stdout.", rich_help_panel=RUN)


def build_recipe(overrides: dict, jobs: int, recipe_file=None):
    """A Recipe from `recipe_file` (if any) and the options given (None = not given); a bad
    value is a usage error."""
    from ispcli import recipe as recipe_mod

    try:
        base = recipe_mod.load(recipe_file) if recipe_file else recipe_mod.Recipe()
        r = recipe_mod.from_mapping({k: v for k, v in overrides.items() if v is not None}, base=base,
                                    source="options")
    except recipe_mod.RecipeError as exc:
        usage_error(str(exc).removeprefix("options: "))
    if r.device not in ("auto", "cpu"):
        from ispcli.pipeline.device import DeviceError, resolve_device

        try:
            resolve_device(r.device)
        except DeviceError as exc:
            usage_error(str(exc))
    if jobs < 0:
        usage_error(f"--jobs {jobs}: expected 0 (auto) or a positive number")
    return r


def load_model(option: str, name: str, task: str, domain: str) -> None:
    """Load the model once before any file is read, so an unknown, corrupt, mismatched or
    wrong-task model is one usage error rather than a failure per file."""
    from ispcli.models import registry, weights

    try:
        registry.load(name, task=task, domain=domain)   # sha256, task, domain and shapes, once
    except (registry.ModelError, weights.WeightsError) as exc:
        usage_error(f"{option}: {exc}")


def default_model(task: str, preferred: str, option: str) -> str:
    """`preferred` if installed, else the first model of `task`; none: a usage error."""
    from ispcli.models import weights

    try:
        names = weights.names(task)
    except weights.WeightsError as exc:
        usage_error(str(exc))
    if not names:
        usage_error(f"no {task} model is installed (weights folder: {weights.weights_dir()}); "
                    f"train one with `ispcli train {task}` or name one with {option}")
    return preferred if preferred in names else names[0]


def normalise_format(fmt: Optional[str]) -> Optional[str]:
    if fmt is None:
        return None
    return {"jpeg": "jpg", "tiff": "tif"}.get(fmt.lower(), fmt.lower())
