"""Score models and classical baselines on a folder of clean benchmark images.

TASK is denoise, demosaic, raw-denoise, dehaze, deblur or enhance. Each image is degraded with
a fixed seed (from --seed and the image's index, so --limit subsets score the same per image),
every method runs through the same tiled runner as the user commands, and PSNR, SSIM and
seconds per megapixel are reported per method and level: a table on stdout, or with --json
one JSON document. deblur blurs every image with every kernel of --kernels; enhance also
scores the pairs of --pairs that training held out. Exit codes: 0 done, 1 an image could not
be read or a method failed, 2 usage error, 130 interrupted.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import List, Optional, Tuple

import typer

from ispcli.cli.output import EXIT_FAILED, EXIT_INTERRUPTED, usage_error

TASK_NAMES = ("denoise", "demosaic", "raw-denoise", "dehaze", "deblur", "enhance")
DEFAULT_HOLD_OUT = 6     # train's --hold-out default


def _numbers(values: List[str], option: str, low: float, high: float) -> list[float]:
    """Repeated and/or comma-separated numbers in (low, high]; duplicates dropped, order kept."""
    out: list[float] = []
    for text in values:
        for part in text.split(","):
            part = part.strip()
            try:
                v = float(part)
            except ValueError:
                usage_error(f"{option} {part!r}: expected a number, e.g. {option} 25")
            if not (math.isfinite(v) and low < v <= high):
                usage_error(f"{option} {part}: must be above {low:g} and at most {high:g}")
            if v not in out:
                out.append(v)
    return out


def _check_models(models: List[str], task: str) -> list[str]:
    from ispcli.models import registry, weights

    try:
        known = weights.read_manifest()
    except weights.WeightsError as exc:
        usage_error(str(exc))
    if not models:
        return weights.names(task)
    if models == ["none"]:
        return []
    for name in models:
        if name not in known:
            ours = ", ".join(weights.names(task)) or "none"
            usage_error(f"--model {name}: unknown model (models for {task}: {ours}; "
                        f"all models: {', '.join(sorted(known)) or 'none'})")
        try:
            registry.check(name, task=task)
        except (registry.ModelError, weights.WeightsError) as exc:
            usage_error(f"--model {name}: {exc}")
    return list(dict.fromkeys(models))


def eval_command(
    task: str = typer.Argument(..., metavar="TASK",
                               help="denoise | demosaic | raw-denoise | dehaze | deblur | enhance",
                               autocompletion=lambda: list(TASK_NAMES)),
    data: Optional[str] = typer.Option(None, "--data", metavar="DIR", show_default=False,
                                       help="Folder of clean images (e.g. CBSD68, Kodak24); its name is the "
                                            "benchmark's (default: ../shared/data/bench/Kodak24 next to a checkout)."),
    model: Optional[List[str]] = typer.Option(None, "--model", metavar="NAME",
                                              help="Model to score (repeatable; default: every model of "
                                                   "the task in the weights manifest; none: baselines only)."),
    sigma: Optional[List[str]] = typer.Option(None, "--sigma", metavar="S",
                                              help="denoise: noise σ in 0–255 units (repeatable or "
                                                   "comma-separated; default: 15, 25, 50)."),
    iso: Optional[List[str]] = typer.Option(None, "--iso", metavar="ISO",
                                            help="raw-denoise: ISO whose shot/read noise to add (repeatable "
                                                 "or comma-separated; default: 1600, 6400)."),
    kernels: Optional[str] = typer.Option(None, "--kernels", metavar="DIR", show_default=False,
                                          help="deblur: folder of .npy blur kernels (default: "
                                               "../shared/data/bench/blur_kernels: Levin 8 + KAIR 12)."),
    kernel_limit: Optional[int] = typer.Option(None, "--kernel-limit", metavar="N",
                                               help="deblur: only the first N kernels (by name) of each set."),
    noise: Optional[float] = typer.Option(None, "--noise", metavar="PERCENT",
                                          help="deblur: Gaussian noise σ added after blurring, in percent "
                                               "(default: 1)."),
    pairs: Optional[Tuple[str, str]] = typer.Option(None, "--pairs", metavar="INPUT_DIR TARGET_DIR",
                                                    show_default=False,
                                                    help="enhance: also score the pairs (matched by file name) "
                                                         "that `train enhance --pairs` held out."),
    hold_out: Optional[int] = typer.Option(None, "--hold-out", metavar="N",
                                                      help="enhance: how many pairs training held out (default: 6, "
                                                "train's default)."),
    seed: int = typer.Option(0, "--seed", help="Seed of the degradations (per image: seed and index)."),
    limit: Optional[int] = typer.Option(None, "--limit", metavar="N",
                                        help="Only the first N images (by name) of --data (enhance's held-out pairs "
                                             "are always all scored)."),
    json_out: bool = typer.Option(False, "--json", help="One JSON document on stdout instead of the table."),
    record: bool = typer.Option(False, "--record",
                                help="Write the models' scores into their weights manifest entries."),
    speed: bool = typer.Option(False, "--speed",
                               help="Also measure each model's megapixels per second on a 1024×1024 image."),
    device: str = typer.Option("auto", "--device", metavar="auto|cpu|cuda|mps", help="Compute device."),
    tile: int = typer.Option(0, "--tile", metavar="PIXELS", help="Tile size for the models (0 = auto)."),
) -> None:
    if task not in TASK_NAMES:
        usage_error(f"unknown task {task!r} (known: {', '.join(TASK_NAMES)})")
    if sigma and task != "denoise":
        usage_error(f"--sigma applies to the denoise task, not {task}")
    if iso and task != "raw-denoise":
        usage_error(f"--iso applies to the raw-denoise task, not {task}")
    for option, value, owner in (("--kernels", kernels, "deblur"), ("--kernel-limit", kernel_limit, "deblur"),
                                 ("--noise", noise, "deblur"), ("--pairs", pairs, "enhance"),
                                 ("--hold-out", hold_out, "enhance")):
        if value is not None and task != owner:
            usage_error(f"{option} applies to the {owner} task, not {task}")
    if kernel_limit is not None and kernel_limit < 1:
        usage_error(f"--kernel-limit {kernel_limit}: must be at least 1")
    if noise is not None and not (math.isfinite(noise) and 0 <= noise <= 100):
        usage_error(f"--noise {noise:g}: expected a percentage from 0 to 100")
    if hold_out is not None and hold_out < 1:
        usage_error(f"--hold-out {hold_out}: must be at least 1")
    sigmas = _numbers(sigma, "--sigma", 0, 255) if sigma else None
    isos = _numbers(iso, "--iso", 0, 409600) if iso else None
    if limit is not None and limit < 1:
        usage_error(f"--limit {limit}: must be at least 1")
    if seed < 0:
        usage_error(f"--seed {seed}: must be 0 or more")
    if tile != 0 and tile < 64:
        usage_error(f"--tile {tile}: expected 0 (auto) or at least 64 pixels")

    from ispcli.eval.dataset import DataError, default_bench, default_kernels, find_images, held_out_pairs

    if data is None:
        data = str(default_bench())
        if not default_bench().is_dir():
            usage_error("--data DIR is needed (there is no ../shared/data/bench/Kodak24 next to this ispcli)")
    if task == "deblur" and kernels is None and not default_kernels().is_dir():
        usage_error("--kernels DIR is needed (there is no ../shared/data/bench/blur_kernels next to this ispcli)")
    if kernels is not None and not Path(kernels).is_dir():
        usage_error(f"--kernels {kernels}: no such folder")
    if kernels is not None and not any(Path(kernels).glob("*.npy")):
        usage_error(f"--kernels {kernels}: no .npy kernels in this folder")
    try:
        find_images(data, limit)
        hold_out = DEFAULT_HOLD_OUT if hold_out is None else hold_out
        if pairs:
            held_out_pairs(*pairs, hold_out)
    except DataError as exc:
        usage_error(str(exc))
    models = _check_models(list(model or []), task)
    options = {"deblur": {"kernels": kernels, "noise": noise, "kernel_limit": kernel_limit},
               "enhance": {"pairs": pairs, "hold_out": hold_out}}.get(task, {})

    from ispcli.cli.output import err_console
    from ispcli.eval import benchmark, table
    from ispcli.models.registry import ModelError
    from ispcli.models.weights import WeightsError
    from ispcli.pipeline.device import DeviceError, resolve_device

    try:
        dev = resolve_device(device)
    except DeviceError as exc:
        usage_error(str(exc))
    console = err_console()
    if not models and not json_out and model != ["none"]:
        console.print(f"no {task} models in the weights manifest: baselines only")
    try:
        with _progress(console) as progress:
            ev = benchmark.evaluate(task, data, models=models, sigmas=sigmas, isos=isos, seed=seed, limit=limit,
                                    device=dev, tile=tile, progress=progress, **options)
            rows = table.summarise(ev)
            mps = None
            if speed:
                from ispcli.eval import speed as speed_mod

                mps = speed_mod.measure(ev, device=dev, tile=tile, sigmas=sigmas, isos=isos)
    except DataError as exc:
        sys.stderr.write(f"ispcli: error: {exc}\n")
        raise typer.Exit(EXIT_FAILED)
    except (ModelError, WeightsError) as exc:
        usage_error(str(exc))
    except KeyboardInterrupt:
        sys.stderr.write("ispcli: interrupted\n")
        raise typer.Exit(EXIT_INTERRUPTED)
    for line in ev.warnings:
        sys.stderr.write(f"ispcli: warning: {line}\n")
    recorded = None
    if record:
        recorded = table.record(ev, rows)
        if not recorded:
            console.print("--record: no models were evaluated, nothing recorded")
    if json_out:
        sys.stdout.write(json.dumps(table.document(ev, rows, mps, recorded), indent=2) + "\n")
        return
    from rich.console import Console

    table.render(ev, rows, Console(highlight=False, soft_wrap=True), mps)
    for line in recorded or []:
        console.print(f"recorded {line}")


class _progress:
    """A transient progress bar on stderr when it is a terminal; nothing otherwise."""

    def __init__(self, console):
        self.console, self.bar, self.task = console, None, None

    def __enter__(self):
        if self.console.is_terminal:
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
            )

            self.bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                console=self.console, transient=True)
            self.bar.start()
        return self

    def __call__(self, done: int, total: int, text: str) -> None:
        if self.bar is None:
            return
        if self.task is None:
            self.task = self.bar.add_task(text, total=total)
        self.bar.update(self.task, completed=done, description=text)

    def __exit__(self, *exc):
        if self.bar is not None:
            self.bar.stop()
        return False
