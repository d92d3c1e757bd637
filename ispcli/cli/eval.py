"""Score models and classical baselines on a folder of clean benchmark images.

TASK is denoise, demosaic or raw-denoise. Each image is degraded with a fixed seed (from
--seed and the image's index, so --limit subsets score the same per image), every method runs
through the same tiled runner as the user commands, and PSNR, SSIM and seconds per megapixel
are reported per method and level: a table on stdout, or with --json one JSON document.
Exit codes: 0 done, 1 an image could not be read or a method failed, 2 usage error,
130 interrupted.
"""

from __future__ import annotations

import json
import math
import sys
from typing import List, Optional

import typer

from ispcli.cli.output import EXIT_FAILED, EXIT_INTERRUPTED, usage_error

TASK_NAMES = ("denoise", "demosaic", "raw-denoise")


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
    task: str = typer.Argument(..., metavar="TASK", help="denoise | demosaic | raw-denoise",
                               autocompletion=lambda: list(TASK_NAMES)),
    data: str = typer.Option(..., "--data", metavar="DIR",
                             help="Folder of clean images (e.g. CBSD68, Kodak24); its name is the benchmark's."),
    model: Optional[List[str]] = typer.Option(None, "--model", metavar="NAME",
                                              help="Model to score (repeatable; default: every model of "
                                                   "the task in the weights manifest)."),
    sigma: Optional[List[str]] = typer.Option(None, "--sigma", metavar="S",
                                              help="denoise: noise σ in 0–255 units (repeatable or "
                                                   "comma-separated; default: 15, 25, 50)."),
    iso: Optional[List[str]] = typer.Option(None, "--iso", metavar="ISO",
                                            help="raw-denoise: ISO whose shot/read noise to add (repeatable "
                                                 "or comma-separated; default: 1600, 6400)."),
    seed: int = typer.Option(0, "--seed", help="Seed of the degradations (per image: seed and index)."),
    limit: Optional[int] = typer.Option(None, "--limit", metavar="N", help="Only the first N images (by name)."),
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
    sigmas = _numbers(sigma, "--sigma", 0, 255) if sigma else None
    isos = _numbers(iso, "--iso", 0, 409600) if iso else None
    if limit is not None and limit < 1:
        usage_error(f"--limit {limit}: must be at least 1")
    if seed < 0:
        usage_error(f"--seed {seed}: must be 0 or more")
    if tile != 0 and tile < 64:
        usage_error(f"--tile {tile}: expected 0 (auto) or at least 64 pixels")

    from ispcli.eval.dataset import DataError, find_images

    try:
        find_images(data, limit)
    except DataError as exc:
        usage_error(str(exc))
    models = _check_models(list(model or []), task)

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
    if not models and not json_out:
        console.print(f"no {task} models in the weights manifest: baselines only")
    try:
        with _progress(console) as progress:
            ev = benchmark.evaluate(task, data, models=models, sigmas=sigmas, isos=isos, seed=seed, limit=limit,
                                    device=dev, tile=tile, progress=progress)
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
