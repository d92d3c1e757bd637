"""Train a model from folders of clean images (and, for enhance, paired photos); degradations
are synthesised on the fly.

TASK is denoise, raw-denoise, demosaic, dehaze, deblur or enhance. The run keeps checkpoints in --run-dir
(default runs/NAME): --resume continues it exactly. At the end the weights and their
manifest entry are written to the weights folder. Multi-GPU: torchrun --nproc_per_node N
-m ispcli train ...
Exit codes: 0 trained, 1 training failed, 2 usage error, 130 interrupted.
"""

from __future__ import annotations

import json
import shlex
import sys
from typing import List, Optional, Tuple

import typer

from ispcli.cli.output import usage_error

TASK_NAMES = ("denoise", "raw-denoise", "demosaic", "dehaze", "deblur", "enhance")


def _ints(text: str, option: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        usage_error(f"{option} {text!r}: expected comma-separated integers, e.g. 32,64,128,256")
    if not values or any(v < 1 for v in values):
        usage_error(f"{option} {text!r}: expected positive integers")
    return values


def _arch_arg(text: str) -> tuple[str, object]:
    key, sep, value = text.partition("=")
    if not sep or not key.isidentifier():
        usage_error(f"--arch-arg {text!r}: expected NAME=VALUE, e.g. refine=32")
    try:
        parsed = json.loads(value)
    except ValueError:
        usage_error(f"--arch-arg {text!r}: the value must be a number, true/false or a [list]")
    if not isinstance(parsed, (int, float, bool, list)):
        usage_error(f"--arch-arg {text!r}: the value must be a number, true/false or a [list]")
    return key, parsed


def _noise_range(text: str) -> dict:
    try:
        lo, hi = (float(v) for v in text.split(","))
    except ValueError:
        usage_error(f"--noise-range {text!r}: expected LO,HI in 0-255 units, e.g. 0,55")
    if not 0 <= lo < hi <= 255:
        usage_error(f"--noise-range {text!r}: expected 0 <= LO < HI <= 255")
    return {"sigma_min": lo / 255, "sigma_max": hi / 255}


def train(
    task: str = typer.Argument(..., metavar="TASK", help="denoise | raw-denoise | demosaic | dehaze | deblur | enhance",
                               autocompletion=lambda: list(TASK_NAMES)),
    data: Optional[List[str]] = typer.Option(None, "--data", help="Folder of clean training images (repeatable)."),
    pairs: Optional[Tuple[str, str]] = typer.Option(
        None, "--pairs", metavar="INPUT_DIR TARGET_DIR", show_default=False,
        help="enhance: folders of input photos and their targets, matched by file name."),
    hold_out: int = typer.Option(6, "--hold-out", help="Pairs kept out of training for `eval enhance --pairs` "
                                 "(every k-th by name)."),
    out: str = typer.Option(..., "--out", help="Name of the model to write (weights/NAME.pt + manifest)."),
    val: Optional[List[str]] = typer.Option(None, "--val",
                                            help="Validation folder(s); default: a slice held out of --data."),
    steps: Optional[int] = typer.Option(None, "--steps", help="Optimiser steps; with --resume, a new "
                                        "length for the run (its schedule follows).  [default: 10000]"),
    batch: int = typer.Option(16, "--batch", help="Patches per step (per process)."),
    patch: int = typer.Option(96, "--patch", help="Patch size in pixels (a multiple of 32)."),
    lr: float = typer.Option(1e-3, "--lr", help="Peak learning rate (Adam; warm-up then cosine decay)."),
    loss: Optional[str] = typer.Option(None, "--loss", metavar="l1|l2|ms-ssim|dped",
                                       help="Training loss.", show_default="dped for enhance, else l1"),
    seed: int = typer.Option(0, "--seed", help="Seed for weights, patches and degradations."),
    checkpoint_every: int = typer.Option(500, "--checkpoint-every", help="Steps between checkpoints."),
    val_every: int = typer.Option(500, "--val-every", help="Steps between validations."),
    channels: Optional[str] = typer.Option(None, "--channels", metavar="C1,C2,...",
                                           help="U-Net widths per level (default: the task's)."),
    blocks: Optional[int] = typer.Option(None, "--blocks", help="Convolutions per U-Net level."),
    arch_arg: Optional[List[str]] = typer.Option(None, "--arch-arg", metavar="NAME=VALUE",
                                                 help="An architecture argument (repeatable), e.g. refine=32 "
                                                      "(unet: full-resolution layers after it), airlight_width=64 "
                                                      "(dehaze-net: a global airlight correction; airlight_stats=32 "
                                                      "adds one fed dark-channel percentiles), stats_width=64 "
                                                      "(enhance-net: a branch fed the image's histogram; "
                                                      "auto_width=64: a blend with classical auto-enhance). With "
                                                      "--init such additions grow that model."),
    device: str = typer.Option("auto", "--device", help="auto | cpu | cuda | cuda:N | mps"),
    threads: Optional[int] = typer.Option(None, "--threads", help="CPU threads (default: all cores)."),
    init: Optional[str] = typer.Option(None, "--init", metavar="MODEL|CHECKPOINT",
                                       help="Start from the weights of an installed model (its architecture arguments "
                                            "carry over) or of another run's checkpoint.pt (fine-tuning)."),
    pair_repeat: int = typer.Option(1, "--pair-repeat", help="enhance: each pair counts N times when patches "
                                    "are drawn (weights real pairs against synthetic ones)."),
    noise_range: Optional[str] = typer.Option(None, "--noise-range", metavar="LO,HI",
                                              help="denoise: the Gaussian σ drawn per patch, uniform in LO..HI "
                                                   "(0-255 units).", show_default="0,75"),
    untouched: Optional[float] = typer.Option(None, "--untouched", metavar="F",
                                              help="enhance: fraction of the plain photos left as they are "
                                                   "(to learn to leave a good photo alone).", show_default="0.3"),
    scenes: float = typer.Option(0.0, "--scenes", metavar="F",
                                 help="Fraction of samples that are whole photos shrunk to --patch instead of "
                                      "crops (for models that look at the whole image, e.g. enhance)."),
    part: Optional[str] = typer.Option(None, "--part", metavar="PART",
                                       help="Train only this part of the --init model, on its own output "
                                            "(enhance-net: global, the whole-image colour and tone transform, or "
                                            "auto, its blend with auto-enhance; "
                                            "dehaze-net with airlight_width: airlight, against the true airlight)."),
    run_dir: Optional[str] = typer.Option(None, "--run-dir", help="Checkpoint folder. [default: runs/NAME]"),
    resume: bool = typer.Option(False, "--resume", help="Continue the run in --run-dir from its checkpoint."),
    weights_dir: Optional[str] = typer.Option(None, "--weights-dir", help="Where to write the weights."),
    quiet: bool = typer.Option(False, "-q", "--quiet", help="No progress output."),
) -> None:
    if task not in TASK_NAMES:
        usage_error(f"unknown task {task!r} (known: {', '.join(TASK_NAMES)})")
    for name, value in (("--steps", steps or 10000), ("--batch", batch), ("--checkpoint-every", checkpoint_every),
                        ("--val-every", val_every)):
        if value < 1:
            usage_error(f"{name} {value}: must be at least 1")
    if patch < 32 or patch % 32:
        usage_error(f"--patch {patch}: must be a multiple of 32 (the U-Net's downsampling)")
    if not lr > 0:
        usage_error(f"--lr {lr}: must be positive")
    if loss is not None and loss not in ("l1", "l2", "ms-ssim", "dped"):
        usage_error(f"--loss {loss!r}: expected l1, l2, ms-ssim or dped")
    if pair_repeat < 1:
        usage_error(f"--pair-repeat {pair_repeat}: must be at least 1")
    if not 0 <= scenes <= 1:
        usage_error(f"--scenes {scenes:g}: must be between 0 and 1")
    if hold_out < 0:
        usage_error(f"--hold-out {hold_out}: must be 0 or more")
    if not data and not pairs and not resume:
        usage_error("no training data: give --data DIR"
                    + (" or --pairs INPUT_DIR TARGET_DIR" if task == "enhance" else ""))
    if part and not init and not resume:
        usage_error(f"--part {part}: give --init MODEL, the model whose other parts stay as they are")
    if not out or "/" in out or out.startswith("."):
        usage_error(f"--out {out!r}: a model name, not a path")
    arch_args = {}
    if channels:
        arch_args["channels"] = _ints(channels, "--channels")
    if blocks is not None:
        arch_args["blocks"] = _ints(str(blocks), "--blocks")[0]
    degrade = {}
    if noise_range is not None:
        if task != "denoise":
            usage_error("--noise-range: only for the denoise task")
        degrade = _noise_range(noise_range)
    if untouched is not None:
        if task != "enhance":
            usage_error("--untouched: only for the enhance task")
        if not 0 <= untouched <= 1:
            usage_error(f"--untouched {untouched:g}: must be between 0 and 1")
        degrade = {"untouched": untouched}
    for item in arch_arg or []:
        key, value = _arch_arg(item)
        arch_args[key] = value

    import torch

    from ispcli.pipeline.device import DeviceError
    from ispcli.train import tasks
    from ispcli.train.data import DataError
    from ispcli.train.loop import TrainConfig, TrainError
    from ispcli.train.loop import train as run_training

    if threads:
        torch.set_num_threads(threads)
    cfg = TrainConfig(task=task, data=list(data or []), val=list(val or []),
                      pairs=[list(pairs)] if pairs else [], hold_out=hold_out, pair_repeat=pair_repeat,
                      scenes=scenes, degrade=degrade, part=part or "", out=out,
                      steps=steps or 10000, batch=batch, patch=patch, lr=lr, loss=loss or tasks.get(task).loss,
                      seed=seed, checkpoint_every=checkpoint_every,
                      val_every=val_every, arch_args=arch_args, device=device, run_dir=run_dir or "", init=init or "",
                      command="ispcli " + shlex.join(sys.argv[1:]))
    try:
        entry = run_training(cfg, resume=resume, weights_dir=weights_dir, quiet=quiet,
                             steps_override=steps if resume else None)
    except (DataError, TrainError, DeviceError, ValueError) as exc:
        sys.stderr.write(f"ispcli: error: {exc}\n")
        raise typer.Exit(1 if isinstance(exc, TrainError) and "loss became" in str(exc) else 2)
    except KeyboardInterrupt:
        sys.stderr.write("ispcli: interrupted; the last checkpoint is kept (--resume continues)\n")
        raise typer.Exit(130)
    if entry is not None and not quiet:
        psnr = entry.training.get("validation_psnr")
        sys.stderr.write(f"wrote model {entry.name} ({entry.parameters:,} parameters, "
                         f"validation {psnr} dB) sha256 {entry.sha256[:12]}…\n")
