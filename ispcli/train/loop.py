"""The training loop behind `ispcli train`: seeded patches, on-the-fly degradations,
atomic checkpoints with exact resume, validation PSNR, a JSONL log, optional DDP.

A run lives in a folder (`runs/NAME` unless told otherwise): `config.json`, `checkpoint.pt`
(written atomically every `checkpoint_every` steps and at the end) and `log.jsonl`. At the
end the weights and their manifest entry go to `weights/`.
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from torch.nn import functional as F

from ispcli.eval import metrics
from ispcli.models import registry, weights
from ispcli.train import data, tasks


@dataclass
class TrainConfig:
    task: str
    data: list[str]
    out: str
    val: list[str] = field(default_factory=list)
    steps: int = 10000
    batch: int = 16
    patch: int = 96
    lr: float = 1e-3
    loss: str = "l1"
    seed: int = 0
    checkpoint_every: int = 500
    val_every: int = 500
    val_images: int = 8
    arch_args: dict = field(default_factory=dict)
    device: str = "auto"
    run_dir: str = ""
    command: str = ""
    init: str = ""          # start from this shipped model's weights (fine-tuning)
    resumed: list = field(default_factory=list)   # the commands that continued the run
    pairs: list = field(default_factory=list)     # [[input_dir, target_dir], ...]
    hold_out: int = 6                             # pairs kept out of training for `eval`
    pair_repeat: int = 1                          # each pair counts this many times in sampling
    scenes: float = 0.0                           # fraction of samples that are whole photos, shrunk
    degrade: dict = field(default_factory=dict)   # the task's degradation settings (e.g. denoise's σ range)
    part: str = ""                                # train only this part of the model (see _Part)


class TrainError(ValueError):
    pass


LOSSES = ("l1", "l2", "ms-ssim", "dped")


def loss_fn(name: str, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    if name == "l1":
        return F.l1_loss(pred, target)
    if name == "l2":
        return F.mse_loss(pred, target)
    if name == "ms-ssim":
        # MS-SSIM alone drifts in flat colour; the usual mix keeps a little L1 (Zhao et al. 2017).
        return 0.84 * (1 - metrics.ms_ssim(pred, target).mean()) + 0.16 * F.l1_loss(pred, target)
    if name == "dped":
        # DPED (Ignatov et al. 2017): colour on blurred images, content, total variation. Its
        # content term compares VGG features; no pretrained VGG may be downloaded here, so
        # content is L1 on pixels.
        from ispcli.train.phone import gaussian_blur

        colour = F.mse_loss(gaussian_blur(pred, 3.0), gaussian_blur(target, 3.0))
        tv = (pred[..., 1:, :] - pred[..., :-1, :]).abs().mean() + (pred[..., 1:] - pred[..., :-1]).abs().mean()
        return F.l1_loss(pred, target) + 5.0 * colour + 1e-3 * tv
    raise TrainError(f"--loss {name!r}: expected one of {', '.join(LOSSES)}")


def _lr_factor(step: int, total: int, warmup: int = 200) -> float:
    """Linear warm-up, then cosine decay to 1% of the peak."""
    if step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return 0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


def _atomic_save(obj, path: Path) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as f:
        torch.save(obj, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


class _Distributed:
    """DDP when started by torchrun (WORLD_SIZE > 1); a no-op otherwise."""

    def __init__(self, device: torch.device):
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        if self.world > 1:
            import torch.distributed as dist

            backend = "nccl" if device.type == "cuda" else "gloo"
            dist.init_process_group(backend)
            self.dist = dist

    @property
    def main(self) -> bool:
        return self.rank == 0

    def wrap(self, model, device):
        if self.world == 1:
            return model
        from torch.nn.parallel import DistributedDataParallel

        return DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)

    def close(self):
        if self.world > 1:
            self.dist.destroy_process_group()


def _device(cfg: TrainConfig) -> torch.device:
    from ispcli.pipeline.device import resolve_device

    device = resolve_device(cfg.device)
    if device.type == "cuda" and "LOCAL_RANK" in os.environ:
        device = torch.device("cuda", int(os.environ["LOCAL_RANK"]))
    return device


def _validate(model, val_crops, task, device, seed: int, degrade: dict) -> float:
    g = torch.Generator().manual_seed(seed)
    scores = []
    model.eval()
    with torch.inference_mode():
        for clean in val_crops:
            x, target = task.make_pair(clean, g, **degrade)
            pred = model(x.to(device)).cpu()
            scores.append(float(metrics.psnr(pred.clamp(0, 1) if task.domain == "display" else pred, target)))
    model.train()
    return sum(scores) / len(scores)


def _split_validation(cfg, task, images, files, batch: int):
    """Validation images: `--val` folders, else a fixed slice held out of the training data
    (`batch`: the global batch, which the rest must still fill)."""
    if cfg.val:
        val_images, _ = data.load_images(cfg.val, 32, jpeg_downscale=task.jpeg_downscale)
        if task.depth:
            from ispcli.train.haze import attach_depth

            val_images = [attach_depth(im) for im in val_images]
        return images, val_images[:cfg.val_images]
    k = max(1, min(cfg.val_images, len(images) // 25))
    if len(images) - k < batch:
        return images, images[:k]          # too few to hold any out: validate on training images
    step = len(images) // k
    held = set(range(0, step * k, step))
    return [im for i, im in enumerate(images) if i not in held], [images[i] for i in sorted(held)]


def _initialise(model, cfg: TrainConfig, task, args: dict, weights_dir) -> str:
    """Load --init into `model`: an installed model's name, or another run's checkpoint.pt
    (to continue training it with a changed recipe). Returns what the manifest records."""
    if cfg.init.endswith(".pt"):
        path = Path(cfg.init)
        if not path.is_file():
            raise TrainError(f"--init {cfg.init}: no such checkpoint")
        state = torch.load(path, map_location="cpu", weights_only=True)
        saved = path.parent / "config.json"
        if saved.is_file():
            other = json.loads(saved.read_text())
            if other.get("task") != task.name or {**task.args, **other.get("arch_args", {})} != args:
                raise TrainError(f"--init {cfg.init}: that run trained a different task or architecture")
        try:
            model.load_state_dict(state["model"] if "model" in state else state)
        except (RuntimeError, KeyError) as exc:
            raise TrainError(f"--init {cfg.init}: does not fit this model ({str(exc).splitlines()[0]})") from None
        return f"{cfg.init} (step {state.get('step', '?')}, sha256 {weights.sha256(path)[:12]}…)"
    base = registry.load(cfg.init, task=task.name, weights_dir=weights_dir)
    # growing adds what the base lacks; what both have must agree
    grown = {k: v for k, v in args.items() if k not in GROWTH_ARGS or k in base.entry.args}
    if base.entry.args == args:
        model.load_state_dict(base.state_dict())
    elif base.entry.args == grown and hasattr(model, "grow_from"):
        try:
            model.grow_from(base.state_dict())  # a refined model from an unrefined one
        except RuntimeError as exc:
            raise TrainError(f"--init {cfg.init}: {exc}") from None
    else:
        raise TrainError(f"--init {cfg.init}: its architecture arguments {base.entry.args} differ from "
                         f"this run's {args}")
    return f"{cfg.init} (sha256 {base.entry.sha256[:12]}…)"


# what a model may add to the one it starts from (`--init MODEL` then grows that model)
GROWTH_ARGS = ("refine", "refine_blocks", "airlight_width", "stats_width", "position", "auto_width",
               "airlight_stats")


class _Part(torch.nn.Module):
    """One named part of a model (`Model.PARTS`: parameter-name prefixes), trained alone on
    that part's own output (`Model.part_forward`); every other parameter stays as --init gave
    it. Validation still scores the whole model."""

    def __init__(self, model, part: str):
        super().__init__()
        parts = getattr(model, "PARTS", {})
        if part not in parts:
            raise TrainError(f"--part {part}: this architecture has "
                             + (f"the parts {', '.join(parts)}" if parts else "no parts to train alone"))
        self.model, self.part = model, part
        for name, p in model.named_parameters():
            p.requires_grad_(name.startswith(parts[part]))
        if not any(p.requires_grad for p in model.parameters()):
            raise TrainError(f"--part {part}: this model has none of its parameters "
                             "(grow them with the --arch-arg that adds that part)")

        # a part may learn from a truth the degradation knows (`Model.PART_DEGRADE`) with a loss
        # of its own (`Model.part_loss`), e.g. a dehazer's airlight against the true airlight
        self.degrade = getattr(model, "PART_DEGRADE", {}).get(part, {})
        self.own_loss = getattr(model, "part_loss", None)

    def forward(self, x):
        return self.model.part_forward(self.part, x)

    def loss(self, name: str, pred, x, target):
        if self.own_loss is not None:
            return self.own_loss(self.part, pred, x, target)
        return loss_fn(name, pred, target)


class _Files(list):
    """The training files, plus which pairs were used and held out."""

    def __init__(self):
        super().__init__()
        self.pairs_used: list = []
        self.held: list = []


def _training_images(cfg: TrainConfig, task, batch: int):
    if cfg.pairs and not task.pairs:
        raise TrainError(f"--pairs: the {task.name} task learns from clean images only (--data)")
    if not cfg.data and not cfg.pairs:
        raise TrainError("no training data: give --data DIR"
                         + (" or --pairs INPUT_DIR TARGET_DIR" if task.pairs else ""))
    images, files = [], _Files()
    if cfg.data:
        images, found = data.load_images(cfg.data, cfg.patch, jpeg_downscale=task.jpeg_downscale,
                                         min_count=1 if cfg.pairs else batch)
        files.extend(found)
        if task.depth:
            from ispcli.train.haze import attach_depth

            images = [attach_depth(im) for im in images]
    if cfg.pairs:
        paired, files.pairs_used, files.held = data.load_pairs(cfg.pairs, cfg.patch, cfg.hold_out)
        images = paired * cfg.pair_repeat + images
        if len(images) < batch:
            raise data.DataError(f"{len(images)} usable image(s) of at least {cfg.patch}×{cfg.patch} pixels, "
                                 f"need at least {batch} (the batch size)")
    return images, files


class _Reporter:
    """A rich progress bar on a terminal; a plain line per validation otherwise."""

    def __init__(self, cfg: TrainConfig, start: int, quiet: bool):
        self.cfg, self.quiet = cfg, quiet
        self.progress = None
        if not quiet and sys.stderr.isatty():
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeRemainingColumn,
            )

            self.progress = Progress(TextColumn(f"train {cfg.task} → {cfg.out}"), BarColumn(), MofNCompleteColumn(),
                                     TextColumn("{task.fields[status]}"), TimeRemainingColumn(),
                                     console=Console(stderr=True))
            self.bar = self.progress.add_task("train", total=cfg.steps, completed=start, status="")
            self.progress.start()

    def update(self, step: int, loss: float, val: float | None, validated: bool):
        status = f"loss {loss:.4f}" + (f"  val {val:.2f} dB" if val is not None else "")
        if self.progress:
            self.progress.update(self.bar, completed=step, status=status)
        elif not self.quiet and validated:
            print(f"step {step}/{self.cfg.steps}  {status}", file=sys.stderr, flush=True)

    def close(self):
        if self.progress:
            self.progress.stop()


def train(cfg: TrainConfig, *, resume: bool = False, weights_dir=None, quiet: bool = False,
          steps_override: int | None = None) -> weights.Entry | None:
    """Run (or with `resume`, continue) a training run; returns the manifest entry written.

    `steps_override` on resume changes the run's length (and so its learning-rate schedule),
    e.g. to end a run early at a lower rate; everything else keeps the run's recipe."""
    task = tasks.get(cfg.task)
    if cfg.loss not in LOSSES:
        raise TrainError(f"--loss {cfg.loss!r}: expected one of {', '.join(LOSSES)}")
    if cfg.steps < 1 or cfg.batch < 1 or cfg.patch < 32 or cfg.patch % 32:
        raise TrainError("--steps and --batch must be ≥ 1 and --patch a multiple of 32")
    run_dir = Path(cfg.run_dir or Path("runs") / cfg.out)
    ckpt_path = run_dir / "checkpoint.pt"
    if resume:
        if not ckpt_path.is_file():
            raise TrainError(f"{ckpt_path}: no checkpoint to resume from")
        ckpt = torch.load(ckpt_path, map_location="cpu", weights_only=True)
        saved = json.loads((run_dir / "config.json").read_text())
        resume_command = cfg.command
        cfg = TrainConfig(**{**saved, "device": cfg.device})   # a resumed run keeps its recipe
        cfg.resumed = [*cfg.resumed, f"{resume_command}  (at step {int(ckpt['step'])})"]
        if steps_override is not None:
            if steps_override < int(ckpt["step"]):
                raise TrainError(f"--steps {steps_override}: the run is already past it, at step {int(ckpt['step'])}")
            cfg.steps = steps_override
        (run_dir / "config.json").write_text(json.dumps(asdict(cfg), indent=2) + "\n")
    elif ckpt_path.exists():
        raise TrainError(f"{ckpt_path} exists: use --resume to continue that run, or another --run-dir")

    device = _device(cfg)
    dist = _Distributed(device)
    batch = cfg.batch * dist.world     # the global batch: every process draws it, trains on its slice
    images, files = _training_images(cfg, task, batch)
    train_images, val_images = _split_validation(cfg, task, images, files, batch)
    val_crops = data.centre_crops(val_images, 256, task.channels)

    if cfg.init and not cfg.init.endswith(".pt") and not resume:
        # fine-tuning keeps the --init model's architecture: --arch-arg may only grow it or repeat it
        base_args = registry.check(cfg.init, task=task.name, weights_dir=weights_dir).args
        cfg.arch_args = {**{k: v for k, v in base_args.items() if task.args.get(k) != v}, **cfg.arch_args}
    args = {**task.args, **cfg.arch_args}
    torch.manual_seed(cfg.seed)
    model = registry.build(task.arch, **args)
    init_note = cfg.init or None
    if cfg.init and not resume:
        init_note = _initialise(model, cfg, task, args, weights_dir)
    model = model.to(device)
    part = _Part(model, cfg.part) if cfg.part else None
    trained = part or model
    degrade = {**cfg.degrade, **(part.degrade if part else {})}
    optimizer = torch.optim.Adam([p for p in trained.parameters() if p.requires_grad], lr=cfg.lr)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: _lr_factor(s, cfg.steps))
    # Every process draws the same global batch (batch x processes) and trains on its own slice,
    # so N processes follow exactly the run one process would make with the global batch.
    sampler = data.PatchSampler(train_images, cfg.patch, cfg.seed * 1000, task.channels, cfg.scenes)
    degrade_gen = torch.Generator().manual_seed(cfg.seed * 1000 + 500)
    mine = slice(dist.rank * cfg.batch, (dist.rank + 1) * cfg.batch)
    start, elapsed_before, best = 0, 0.0, None
    if resume:
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        scheduler.load_state_dict(ckpt["scheduler"])
        sampler.restore(ckpt["sampler"][0])
        degrade_gen.set_state(ckpt["degrade"][0])
        start, elapsed_before = int(ckpt["step"]), float(ckpt["elapsed"])
        init_note = ckpt.get("initialised_from", init_note)   # what --init was when the run began
        best = ckpt.get("val_psnr")
    elif dist.main:
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "config.json").write_text(json.dumps(asdict(cfg), indent=2) + "\n")
    net = dist.wrap(trained, device)

    def checkpoint(step: int, val: float | None):
        states = [sampler.state()], [degrade_gen.get_state()]   # the same in every process
        if dist.main:
            _atomic_save({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                          "scheduler": scheduler.state_dict(), "sampler": states[0], "degrade": states[1],
                          "step": step, "elapsed": elapsed_before + time.time() - t0, "val_psnr": val,
                          "initialised_from": init_note}, ckpt_path)

    reporter = _Reporter(cfg, start, quiet or not dist.main)
    log = open(run_dir / "log.jsonl", "a") if dist.main else None
    t0 = time.time()
    val = best
    running = None
    try:
        model.train()
        for step in range(start, cfg.steps):
            x, target = task.make_pair(sampler.batch(batch), degrade_gen, **degrade)
            x, target = x[mine].to(device, non_blocking=True), target[mine].to(device, non_blocking=True)
            pred = net(x)
            loss = part.loss(cfg.loss, pred, x, target) if part else loss_fn(cfg.loss, pred, target)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            value = float(loss.detach())
            if not math.isfinite(value):
                raise TrainError(f"loss became {value} at step {step + 1}; lower --lr")
            running = value if running is None else 0.98 * running + 0.02 * value
            done = step + 1
            val_now = None
            if done % cfg.val_every == 0 or done == cfg.steps:
                val = val_now = (_validate(model, val_crops, task, device, cfg.seed, cfg.degrade)
                                 if dist.main else None)
            if log is not None and (done % 50 == 0 or val_now is not None):
                log.write(json.dumps({"step": done, "loss": round(running, 6), "lr": scheduler.get_last_lr()[0],
                                      "val_psnr": None if val_now is None else round(val_now, 3),
                                      "elapsed_s": round(elapsed_before + time.time() - t0, 1)}) + "\n")
                log.flush()
            reporter.update(done, running, val, val_now is not None)
            if done % cfg.checkpoint_every == 0 or done == cfg.steps:
                checkpoint(done, val)
    finally:
        reporter.close()
        if log is not None:
            log.close()
    entry = None
    if dist.main:
        entry = weights.Entry(
            name=cfg.out, task=task.name, domain=task.domain, arch=task.arch, args=args,
            file=f"{cfg.out}.pt", sha256="", parameters=0,
            training={"command": cfg.command, "resumed": cfg.resumed, "data": cfg.data, "images": len(train_images),
                      "validation_images": len(val_images), "steps": cfg.steps, "batch": batch,
                      "patch": cfg.patch, **({"scenes": cfg.scenes} if cfg.scenes else {}),
                      **({"part": cfg.part} if cfg.part else {}),
                      **({"degradation_settings": degrade} if degrade else {}),
                      "loss": cfg.loss, "lr": cfg.lr, "seed": cfg.seed,
                      "degradation": task.summary, "device": str(device), "processes": dist.world,
                      "seconds": round(elapsed_before + time.time() - t0),
                      "initialised_from": init_note,
                      **({"pairs": cfg.pairs, "pair_repeat": cfg.pair_repeat, "pairs_used": files.pairs_used,
                          "pairs_held_out": files.held}
                         if cfg.pairs else {}),
                      "validation_psnr": None if val is None else round(val, 2)})
        # a fresh entry: scores of any earlier weights of this name do not describe the new ones
        weights.save(model, entry, weights_dir)
    dist.close()
    return entry
