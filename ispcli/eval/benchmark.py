"""Benchmark tasks: degrade each clean image with a fixed seed, run every method through the
runner, score the result.

Protocols (what the published tables do, so numbers are comparable):
- denoise: additive white Gaussian noise of σ (0–255 units), unclipped (FFDNet/DnCNN);
  models get the noisy float image and the true σ. Outputs are clipped to [0, 1] and
  quantised to 8 bits (round(x·255)/255) before PSNR/SSIM on RGB.
- demosaic: the sRGB image sampled on an RGGB Bayer pattern, no noise (as the literature,
  in the sRGB domain); learned models via `demosaic_stage(encoded=True)`. CPSNR and SSIM
  ignore a 5-pixel border, after clipping and 8-bit quantisation.
- raw-denoise: `degrade.raw_pair` (unprocessing, Brooks et al. 2019) with a random camera
  and exposure per image drawn from the image's seed, and the shot/read levels of an ISO
  (`unprocess.noise_levels_for_iso`). Scored on the white-balanced mosaic, linear and
  unclipped: PSNR over all sites (peak 1), SSIM on the four half-resolution RGGB planes.

Every method is a `Stage` run by `runner.run`: models exactly as the user commands run them
(tiled, `tile=0` picks the device's size), whole-image baselines as one tile. Seconds are
timed around `runner.run` only (stage construction and model loading excluded; each stage is
warmed up once on a small crop first).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from ispcli.eval import baselines, dataset, metrics
from ispcli.models import conditioning
from ispcli.pipeline import learned, runner
from ispcli.pipeline.stage import Domain, Pipeline, Stage
from ispcli.train import degrade, unprocess

DEMOSAIC_BORDER = 5
DEFAULT_SIGMAS = (15.0, 25.0, 50.0)
DEFAULT_ISOS = (1600.0, 6400.0)


@dataclass(frozen=True)
class Level:
    key: str                  # "sigma=25", "iso=1600", "noise-free": the row label and score key
    params: dict


@dataclass
class Sample:
    """One degraded image at one level: what the methods get and what they should give."""
    source: np.ndarray        # (H, W, 3) or (H, W) float32, the runner's input
    target: torch.Tensor      # (1, C, H, W)
    extra: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Method:
    name: str
    kind: str                                   # "baseline" | "model"
    make: Callable[[Level, Sample, torch.device], Stage]
    per_image: bool = False                     # the stage depends on the image (raw gains)
    whole_frame: bool = False                   # run as one tile (not tile-exact)


@dataclass
class Measurement:
    image: str
    index: int
    method: str
    level: str
    psnr: float
    ssim: float
    seconds: float
    megapixels: float


def _level_value(v: float) -> str:
    return f"{v:g}"


def _quantise(x: torch.Tensor) -> torch.Tensor:
    return torch.round(x.clamp(0, 1) * 255) / 255


# ---- tasks -------------------------------------------------------------------------------------

class DenoiseTask:
    name = "denoise"
    align = 1
    border = 0
    protocol = {"noise": "additive white Gaussian, unclipped, sigma in 0-255 units",
                "scoring": "output clipped to [0,1] and quantised to 8 bits; PSNR and SSIM on RGB",
                "border": 0}

    def __init__(self, sigmas=DEFAULT_SIGMAS):
        self.levels = [Level(f"sigma={_level_value(s)}", {"sigma": float(s)}) for s in sigmas]

    def degrade(self, clean: torch.Tensor, level: Level, seed: int, index: int) -> Sample:
        noisy = degrade.gaussian_noise(clean, level.params["sigma"] / 255.0, dataset.generator(seed, index))
        return Sample(noisy[0].permute(1, 2, 0).contiguous().numpy(), clean)

    def methods(self, models: list[str]) -> list[Method]:
        out = [Method("noisy", "baseline", lambda lv, s, d: baselines.identity("denoise:noisy", Domain.display)),
               Method("nlm", "baseline", lambda lv, s, d: baselines.nlm_denoise(lv.params["sigma"]),
                      whole_frame=True)]
        if baselines.bm3d_available():
            out.append(Method("bm3d", "baseline", lambda lv, s, d: baselines.bm3d_denoise(lv.params["sigma"]),
                              whole_frame=True))
        for name in models:
            out.append(Method(name, "model", lambda lv, s, d, name=name:
                              learned.denoise_stage(name, lv.params["sigma"] / 255.0, device=d)))
        return out

    def score(self, out: torch.Tensor, sample: Sample) -> tuple[float, float]:
        q = _quantise(out)
        return float(metrics.psnr(q, sample.target)), float(metrics.ssim(q, sample.target))


class DemosaicTask:
    name = "demosaic"
    align = 2
    border = DEMOSAIC_BORDER
    protocol = {"mosaic": "RGGB Bayer sampling of the sRGB image, no noise",
                "scoring": "output clipped to [0,1] and quantised to 8 bits; CPSNR and SSIM on RGB",
                "border": DEMOSAIC_BORDER}

    def __init__(self):
        self.levels = [Level("noise-free", {})]

    def degrade(self, clean: torch.Tensor, level: Level, seed: int, index: int) -> Sample:
        inputs, target = degrade.demosaic_pair(clean)
        mosaic = inputs[0, -1].contiguous().numpy()     # the mosaic is the input's last channel
        return Sample(mosaic, target)

    def methods(self, models: list[str]) -> list[Method]:
        out = [Method(m, "baseline", lambda lv, s, d, m=m: baselines.classical_demosaic(m))
               for m in baselines.DEMOSAIC_METHODS]
        for name in models:
            out.append(Method(name, "model", lambda lv, s, d, name=name:
                              learned.demosaic_stage(name, baselines.RGGB, device=d, encoded=True)))
        return out

    def score(self, out: torch.Tensor, sample: Sample) -> tuple[float, float]:
        q = _quantise(out)
        b = self.border
        return float(metrics.psnr(q, sample.target, border=b)), float(metrics.ssim(q, sample.target, border=b))


class RawDenoiseTask:
    name = "raw-denoise"
    align = 2
    border = 0
    protocol = {"noise": "unprocessed to a random camera (Brooks et al. 2019), shot/read noise of the ISO",
                "scoring": "white-balanced RGGB mosaic, linear, unclipped; PSNR (peak 1) over all sites, "
                           "SSIM on the four half-resolution colour planes",
                "border": 0}

    def __init__(self, isos=DEFAULT_ISOS):
        self.levels = []
        for iso in isos:
            shot, read = unprocess.noise_levels_for_iso(iso)
            self.levels.append(Level(f"iso={_level_value(iso)}", {"iso": float(iso), "shot": shot, "read": read}))

    def degrade(self, clean: torch.Tensor, level: Level, seed: int, index: int) -> Sample:
        gen = dataset.generator(seed, index)
        # raw_pair draws the camera first: the same draws from a copy of the generator give
        # the gains the stage needs, checked below against the σ plane raw_pair built.
        twin = torch.Generator().set_state(gen.get_state())
        camera = unprocess.random_camera(twin)
        shot, read = level.params["shot"], level.params["read"]
        inputs, target = degrade.raw_pair(clean, gen, shot=shot, read=read)
        h, w = target.shape[-2:]
        plane = conditioning.site_gain_plane(camera.wb_gains, h, w)
        if not torch.allclose(conditioning.raw_noise_std(inputs[:, :1], plane, shot, read), inputs[:, 1:2]):
            raise RuntimeError("degrade.raw_pair no longer draws the camera first; eval cannot know its gains")
        return Sample(inputs[0, 0].contiguous().numpy(), target,
                      {"gains": [float(g) for g in camera.wb_gains]})

    def methods(self, models: list[str]) -> list[Method]:
        out = [Method("noisy", "baseline",
                      lambda lv, s, d: baselines.identity("raw_denoise:noisy", Domain.mosaic))]
        for name in models:
            out.append(Method(name, "model", lambda lv, s, d, name=name: learned.raw_denoise_stage(
                name, baselines.RGGB, s.extra["gains"], lv.params["shot"], lv.params["read"], device=d),
                per_image=True))
        return out

    def score(self, out: torch.Tensor, sample: Sample) -> tuple[float, float]:
        psnr = float(metrics.psnr(out, sample.target))
        planes = (torch.nn.functional.pixel_unshuffle(t[..., :t.shape[-2] // 2 * 2, :t.shape[-1] // 2 * 2], 2)
                  for t in (out, sample.target))
        return psnr, float(metrics.ssim(*planes))


def make_task(name: str, *, sigmas=None, isos=None):
    if name == "denoise":
        return DenoiseTask(sigmas or DEFAULT_SIGMAS)
    if name == "demosaic":
        return DemosaicTask()
    if name == "raw-denoise":
        return RawDenoiseTask(isos or DEFAULT_ISOS)
    raise ValueError(f"unknown task {name!r} (known: denoise, demosaic, raw-denoise)")


# ---- running -----------------------------------------------------------------------------------

def run_stage(stage: Stage, source: np.ndarray, *, device: torch.device, tile: int, align: int,
              whole_frame: bool = False) -> tuple[torch.Tensor, float]:
    """`stage` applied to `source` by the runner; the (1, C, H, W) CPU result and the seconds
    `runner.run` took."""
    height, width = source.shape[:2]
    out: list[torch.Tensor] = []

    def sink(t, part: torch.Tensor) -> None:
        if not out:
            out.append(torch.empty(1, part.shape[1], height, width))
        out[0][:, :, t.y0:t.y1, t.x0:t.x1] = part.float().cpu()

    tile = max(height, width) if whole_frame else tile
    start = time.perf_counter()
    runner.run(Pipeline([stage]), source, sink, device=device, tile=tile, align=align)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return out[0], time.perf_counter() - start


def warm_up(stage: Stage, source: np.ndarray, *, device: torch.device, tile: int, align: int,
            whole_frame: bool = False) -> None:
    """One run on a small crop, so one-time costs (allocations, kernels) are not timed."""
    crop = np.ascontiguousarray(source[:64, :64])
    run_stage(stage, crop, device=device, tile=tile, align=align, whole_frame=whole_frame)


@dataclass
class Evaluation:
    task: str
    benchmark: str
    data: str
    images: list[str]
    seed: int
    device: str
    tile: int
    levels: list[Level]
    methods: list[Method]
    measurements: list[Measurement]
    protocol: dict


def evaluate(task_name: str, folder: str | Path, *, models: list[str], sigmas=None, isos=None, seed: int = 0,
             limit: int | None = None, device: torch.device | None = None, tile: int = 0,
             progress: Callable[[int, int, str], None] | None = None) -> Evaluation:
    """Score every method on every image at every level of `task_name`."""
    device = device or torch.device("cpu")
    task = make_task(task_name, sigmas=sigmas, isos=isos)
    paths = dataset.find_images(folder, limit)
    methods = task.methods(models)
    stages: dict[tuple[str, str], Stage] = {}
    measurements: list[Measurement] = []
    total, done = len(paths) * len(task.levels) * len(methods), 0
    for index, path in enumerate(paths):
        clean = torch.from_numpy(dataset.load_rgb(path)).permute(2, 0, 1)[None].contiguous()
        megapixels = clean.shape[-2] * clean.shape[-1] / 1e6
        for level in task.levels:
            sample = task.degrade(clean, level, seed, index)
            for method in methods:
                key = (method.name, level.key)
                stage = None if method.per_image else stages.get(key)
                if stage is None:
                    stage = method.make(level, sample, device)
                    warm_up(stage, sample.source, device=device, tile=tile, align=task.align,
                            whole_frame=method.whole_frame)
                    if not method.per_image:
                        stages[key] = stage
                out, seconds = run_stage(stage, sample.source, device=device, tile=tile, align=task.align,
                                         whole_frame=method.whole_frame)
                psnr, ssim = task.score(out, sample)
                measurements.append(Measurement(path.name, index, method.name, level.key, psnr, ssim,
                                                seconds, megapixels))
                done += 1
                if progress:
                    progress(done, total, f"{path.name} {level.key} {method.name}")
    return Evaluation(task_name, dataset.benchmark_name(folder), str(Path(folder).resolve()),
                      [p.name for p in paths], seed, str(device), tile, task.levels, methods, measurements,
                      task.protocol)
