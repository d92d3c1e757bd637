"""Options and checks the image→image commands (denoise, demosaic, enhance, dehaze, deblur) share.

Typer reads these `OptionInfo` objects once per command it registers, so one definition
serves every command. Cheap to import: no torch, no rawpy.
"""

from __future__ import annotations

import typer

from ispcli.cli.output import usage_error

OUT, PROC, RUN = "Output", "Processing", "Batch"


def inputs_argument(what: str):
    return typer.Argument(..., metavar="INPUT...", show_default=False,
                          help=f"{what}, folders, globs, or - for paths on stdin.")


IMAGE_INPUTS = inputs_argument("Images (PNG, JPEG, TIFF)")
OUTPUT = typer.Option(..., "-o", "--output", help="Output folder (created if missing).", rich_help_panel=OUT)
NAME = typer.Option(None, "--name", metavar="TEMPLATE",
                    help="Output name: {stem} {ext} {camera} {make} {model} {iso} {lens} {date:%Y%m%d} {index}.",
                    show_default="{stem}", rich_help_panel=OUT)
MAX_MEGAPIXELS = typer.Option(500.0, "--max-megapixels", metavar="MP", help="Refuse files whose header claims more.",
                              rich_help_panel=RUN)
TIMEOUT = typer.Option(120.0, "--timeout", metavar="SECONDS",
                       help="Give up on a raw whose decoding takes longer (it runs in its own process).",
                       rich_help_panel=RUN)
RECURSIVE = typer.Option(False, "-r", "--recursive", help="Descend into sub-folders.", rich_help_panel=RUN)
OVERWRITE = typer.Option(False, "--overwrite", help="Replace existing outputs (default: skip them).",
                         rich_help_panel=RUN)
JOBS = typer.Option(0, "-j", "--jobs", metavar="N", help="Parallel workers (0 = auto).", rich_help_panel=RUN)
EXECUTOR = typer.Option("local", "--executor", metavar="local|ray",
                        help="Where files are processed: this machine's worker processes, or Ray tasks "
                             "(pip install 'ispcli[ray]'; inputs and output on storage every node sees).",
                        rich_help_panel=RUN)
ADDRESS = typer.Option(None, "--address", metavar="ADDR",
                       help="--executor ray: the cluster to join (ray://host:10001, host:6379 or auto); "
                            "default: a Ray instance on this machine with --jobs workers.", rich_help_panel=RUN)


def check_executor(executor: str, address: str | None) -> None:
    """`--executor`/`--address` as usage errors, before anything starts."""
    import importlib.util

    from ispcli.cli.output import usage_error

    if executor not in ("local", "ray"):
        usage_error(f"--executor {executor!r}: expected local or ray")
    if executor == "local" and address:
        usage_error("--address is for --executor ray")
    if executor == "ray" and importlib.util.find_spec("ray") is None:
        usage_error("--executor ray needs Ray, which is not installed: pip install 'ispcli[ray]'")
TILE = typer.Option(None, "--tile", metavar="PIXELS", help="Tile size (0 = auto); never changes the result.",
                    rich_help_panel=RUN)
DEVICE = typer.Option(None, "--device", metavar="auto|cpu|cuda|mps", help="Compute device.", show_default="auto",
                      rich_help_panel=RUN)
PRECISION = typer.Option(None, "--precision", metavar="auto|fp32|fp16|bf16",
                         help="Arithmetic of learned models on a GPU (the CPU always uses fp32).",
                         show_default="auto = fp16 on CUDA", rich_help_panel=RUN)
COMPILE = typer.Option(None, "--compile/--no-compile",
                       help="Run learned models through torch.compile: faster tiles after 10-20 s of "
                            "compiling per process, so for long batches.", show_default="off",
                       rich_help_panel=RUN)
QUIET = typer.Option(False, "-q", "--quiet", help="No progress or summary (errors still shown).",
                     rich_help_panel=RUN)
JSON = typer.Option(False, "--json", help="One JSON object per file on stdout.", rich_help_panel=RUN)
# outputs of the display-image commands: by default each keeps its input's format and bits
SAME_FORMAT = typer.Option(None, "--format", "-f", metavar="same|jpg|png|tif", help="Output format.",
                           show_default="same as the input", rich_help_panel=OUT)
SAME_BITS = typer.Option(None, "--bits", metavar="0|8|16|32",
                         help="Bits per sample: 8, 16 (png/tif) or 32 (float tif); 0 keeps the input's.",
                         show_default="0", rich_help_panel=OUT)
QUALITY = typer.Option(None, "--quality", metavar="1-100", help="JPEG quality.", show_default="92",
                       rich_help_panel=OUT)


def model_option(task: str, preferred: str, fallback: str = ""):
    return typer.Option(None, "--model", "-m", metavar="NAME" + (f"|{fallback}" if fallback else ""),
                        help=f"The {task} model (see `ispcli models`)" + (f", or {fallback}" if fallback else "")
                        + ".", show_default=f"{preferred} if installed, else the first {task} model"
                        + (f", else {fallback}" if fallback else ""), rich_help_panel=PROC)


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


def load_model(option: str, name: str, task: str, domain: str, also: str = "") -> None:
    """Load the model once before any file is read, so an unknown, corrupt, mismatched or
    wrong-task model is one usage error rather than a failure per file. `also` names what
    else the option takes (e.g. a classical method), added to the message."""
    from ispcli.models import registry, weights

    try:
        registry.load(name, task=task, domain=domain)   # sha256, task, domain and shapes, once
    except (registry.ModelError, weights.WeightsError) as exc:
        usage_error(f"{option}: {exc}" + (f"; {option.split()[0]} also takes {also}" if also else ""))


def default_model(task: str, preferred: str, option: str, fallback: str = "") -> str:
    """`preferred` if installed, else the first model of `task`, else `fallback` (a classical
    method) if there is one; nothing at all: a usage error."""
    from ispcli.models import weights

    try:
        names = weights.names(task)
    except weights.WeightsError as exc:
        usage_error(str(exc))
    if not names:
        if fallback:
            return fallback
        usage_error(f"no {task} model is installed (weights folder: {weights.weights_dir()}); "
                    f"train one with `ispcli train {task}` or name one with {option}")
    return preferred if preferred in names else names[0]


VERBS = {"enhance": ("enhanced", "enhancing"), "dehaze": ("dehazed", "dehazing"),
         "deblur": ("deblurred", "deblurring")}


def run_image_command(command: str, *, inputs, output, overrides: dict, jobs: int, recursive: bool,
                      overwrite: bool, quiet: bool, json_out: bool, model: str | None, preferred: str,
                      fallback: str = "") -> int:
    """The body of a one-stage display-image command (enhance, dehaze, deblur): the recipe,
    the model checked once before any file is read (`fallback`, a classical method, needs
    none), then the batch through the shared worker `image_jobs.<command>_file`. Returns the
    exit code."""
    from ispcli.cli.batch_run import BatchOptions, run_batch
    from ispcli.io.batch import IMAGE_EXTENSIONS

    fmt = overrides.pop("format", None)
    bits = overrides.pop("bits", None)
    r = build_recipe({"format": normalise_format(fmt) or "same", "bits": 0 if bits is None else bits,
                      **overrides}, jobs)
    if model is None:
        model = default_model(command, preferred, "--model", fallback)
    if not (fallback and model == fallback):
        load_model(f"--model {model}", model, command, "display", also=fallback)
    r = r.replace(model=model)
    from ispcli.pipeline import image_jobs

    verb, activity = VERBS[command]
    opts = BatchOptions(inputs=inputs, output=str(output), recipe=r, recursive=recursive, overwrite=overwrite,
                        jobs=jobs, quiet=quiet, json=json_out, extensions=IMAGE_EXTENSIONS,
                        worker=getattr(image_jobs, f"{command}_file"), verb=verb, activity=activity)
    return run_batch(opts)


def normalise_format(fmt: str | None) -> str | None:
    if fmt is None:
        return None
    return {"jpeg": "jpg", "tiff": "tif"}.get(fmt.lower(), fmt.lower())
