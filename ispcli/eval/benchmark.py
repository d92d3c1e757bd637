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
- dehaze: `haze.random_haze` (I = J·t + A·(1 − t) over `haze.depth_proxy`, β uniform in
  0.5–2, grey airlight uniform in 0.7–1, its defaults) from the image's seed. No dehazer is
  given the true airlight: DCP gets the one `dehaze.image_airlight` estimates on the hazy
  image, a model its own analysis pass (`learned.dehaze_airlight`: that estimate, corrected by
  the model's global branch if it has one). Scored as denoise (clipped, 8-bit, PSNR and SSIM
  on RGB).
- deblur: every image blurred by every kernel of a folder (`blur.load_kernels`; by default
  Levin et al.'s 8 and KAIR's 12) with `blur.blur` (true convolution, reflected edges), then
  Gaussian noise of σ = 1% (`--noise`), unclipped, drawn from the image's seed. The models
  are blind; the baselines (Wiener, Richardson–Lucy) get the true kernel, and each its best
  parameter from a grid (an oracle choice; see `baselines`). Rows per kernel set (the part of
  the file name before its last "_": levin09, k12) and over all kernels. Scored as denoise.
- enhance: three parts. Phone-degraded: `phone.degrade` of each image from its seed, every
  image degraded (no untouched draws: those are the third part), scored against the image.
  Unchanged: the image as it is, scored against itself ("a good photo is left alone"; the
  untouched input is not a method there). Held-out pairs (`--pairs INPUT_DIR TARGET_DIR`):
  exactly the pairs `train enhance` left out (`train.data.held_out` of `pair_names`, `--hold-out`
  of them), scored against their targets. The auto baseline and the models get global
  parameters from the whole image (`autoenhance.analyse`, `learned.enhance_params`), strength 1.
  Scored as denoise.

Every method is a `Stage` run by `runner.run`: models exactly as the user commands run them
(tiled, `tile=0` picks the device's size), whole-image baselines as one tile. Seconds are
timed around `runner.run` only (stage construction, model loading and analysis passes excluded;
each stage is warmed up once on a small crop first).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import torch

from ispcli.eval import baselines, dataset, metrics
from ispcli.models import conditioning
from ispcli.pipeline import learned, runner
from ispcli.pipeline.stage import Domain, Pipeline, Stage
from ispcli.train import degrade, unprocess

TASK_NAMES = ("denoise", "demosaic", "raw-denoise", "dehaze", "deblur", "enhance")
DEMOSAIC_BORDER = 5
DEFAULT_SIGMAS = (15.0, 25.0, 50.0)
DEFAULT_ISOS = (1600.0, 6400.0)
HAZE_BETA = (0.5, 2.0)            # train.haze.random_haze's defaults: the dehaze protocol
HAZE_AIRLIGHT = (0.7, 1.0)
DEFAULT_BLUR_NOISE = 1.0          # percent of the white level
KERNEL_SETS = {"levin09": "Levin", "k12": "KAIR"}    # file-name prefix → the set's name, in row order
DEFAULT_HOLD_OUT = 6


@dataclass(frozen=True)
class Level:
    key: str                  # "sigma=25", "iso=1600", "levin09_k1": the per-image label, and (unless
    params: dict              # the task pools levels into rows) the row label and score key
    benchmark: str | None = None          # the data it is measured on, when not --data's folder


@dataclass(frozen=True)
class RowSpec:
    """A row of the result table: the mean over every sample of some levels."""
    label: str
    levels: tuple[str, ...]
    params: dict
    benchmark: str | None = None


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
    # one value of a baseline's parameter grid: methods of one name and several settings are
    # all run, and each row reports the setting with the best mean PSNR (an oracle's choice)
    setting: dict = field(default_factory=dict, hash=False)
    levels: tuple[str, ...] | None = None       # the levels it runs on (None: all)

    def runs_on(self, level_key: str) -> bool:
        return self.levels is None or level_key in self.levels


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
    setting: dict = field(default_factory=dict)


def _level_value(v: float) -> str:
    return f"{v:g}"


def _quantise(x: torch.Tensor) -> torch.Tensor:
    return torch.round(x.clamp(0, 1) * 255) / 255


def _hwc(image: torch.Tensor) -> np.ndarray:
    return image[0].permute(1, 2, 0).contiguous().numpy()


def _nchw(image: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(image).permute(2, 0, 1)[None].contiguous()


def score_rgb(out: torch.Tensor, sample: Sample) -> tuple[float, float]:
    """The denoising literature's scoring: clipped, quantised to 8 bits, PSNR and SSIM on RGB."""
    q = _quantise(out)
    return float(metrics.psnr(q, sample.target)), float(metrics.ssim(q, sample.target))


class Task:
    """A benchmark protocol: its levels, how each clean image is degraded at each, the methods
    and how an output is scored. Subclasses set `levels` and write `degrade`, `methods` and
    `score`; tasks whose samples are not (image × level) override `samples`."""

    name = ""
    align = 1
    border = 0
    protocol: dict = {}
    levels: list[Level] = []

    @property
    def rows(self) -> list[RowSpec]:
        """The table's rows, in order: by default one per level."""
        return [RowSpec(lv.key, (lv.key,), lv.params, lv.benchmark) for lv in self.levels]

    def samples(self, paths: list[Path], seed: int) -> Iterator[tuple[str, int, Level, Sample]]:
        """(image name, index, level, sample) for every image of `paths` at every level."""
        for index, path in enumerate(paths):
            clean = _nchw(dataset.load_rgb(path))
            for level in self.levels:
                yield path.name, index, level, self.degrade(clean, level, seed, index)

    def sample_levels(self, paths: list[Path]) -> list[str]:
        """The level of each sample `samples` will give, in order (for progress)."""
        return [level.key for _ in paths for level in self.levels]

    def warnings(self, models: list[str]) -> list[str]:
        return []

    def degrade(self, clean: torch.Tensor, level: Level, seed: int, index: int) -> Sample:
        raise NotImplementedError

    def methods(self, models: list[str]) -> list[Method]:
        raise NotImplementedError

    def score(self, out: torch.Tensor, sample: Sample) -> tuple[float, float]:
        return score_rgb(out, sample)


class _Models:
    """Each model loaded once per device, whatever number of stages is built from it."""

    def __init__(self, task: str):
        self.task, self.loaded = task, {}

    def __call__(self, name: str, device: torch.device):
        from ispcli.models import registry

        key = (name, str(device))
        if key not in self.loaded:
            self.loaded[key] = registry.load(name, task=self.task, domain="display").to(device).eval()
        return self.loaded[key]


# ---- tasks -------------------------------------------------------------------------------------

class DenoiseTask(Task):
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
        return Sample(_hwc(noisy), clean)

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

class DemosaicTask(Task):
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


class RawDenoiseTask(Task):
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


class DehazeTask(Task):
    name = "dehaze"
    protocol = {"haze": "train.haze.random_haze: I = J*t + A*(1-t), t = exp(-beta*depth_proxy), "
                        f"beta uniform in {HAZE_BETA[0]:g}-{HAZE_BETA[1]:g}, grey airlight uniform in "
                        f"{HAZE_AIRLIGHT[0]:g}-{HAZE_AIRLIGHT[1]:g}, clipped to [0,1]",
                "airlight": "estimated on the hazy image: isp.dehaze.image_airlight for DCP, a model's own "
                            "analysis pass (learned.dehaze_airlight: the same estimate, corrected by its "
                            "global branch if it has one)",
                "scoring": "output clipped to [0,1] and quantised to 8 bits; PSNR and SSIM on RGB",
                "border": 0}

    def __init__(self):
        (b0, b1), (a0, a1) = HAZE_BETA, HAZE_AIRLIGHT
        self.levels = [Level(f"haze β{b0:g}-{b1:g} A{a0:g}-{a1:g}", {"beta": [b0, b1], "airlight": [a0, a1]})]
        self.model = _Models("dehaze")

    def degrade(self, clean: torch.Tensor, level: Level, seed: int, index: int) -> Sample:
        from ispcli.isp.dehaze import image_airlight
        from ispcli.train import haze

        hazy, true_airlight = haze.random_haze(clean, dataset.generator(seed, index), beta=HAZE_BETA,
                                               airlight=HAZE_AIRLIGHT)
        airlight = image_airlight(hazy)[0]                      # the analysis pass, on the hazy image
        return Sample(_hwc(hazy), clean, {"airlight": [float(v) for v in airlight],
                                          "true_airlight": [float(v) for v in true_airlight[0]]})

    def methods(self, models: list[str]) -> list[Method]:
        out = [Method("none", "baseline", lambda lv, s, d: baselines.identity("dehaze:none", Domain.display)),
               Method("dcp", "baseline", lambda lv, s, d: learned.dcp_stage(s.extra["airlight"]), per_image=True)]
        for name in models:
            out.append(Method(name, "model", lambda lv, s, d, name=name: learned.dehaze_stage(
                self.model(name, d), learned.dehaze_airlight(self.model(name, d), _nchw(s.source), device=d)[0],
                device=d), per_image=True))
        return out


def kernel_set(kernel_name: str) -> str:
    """The set a benchmark kernel belongs to: its file name up to the last "_" (levin09_k3 → levin09)."""
    return kernel_name.rsplit("_", 1)[0] if "_" in kernel_name else kernel_name


class DeblurTask(Task):
    name = "deblur"

    def __init__(self, kernels=None, noise: float = DEFAULT_BLUR_NOISE, kernel_limit: int | None = None):
        from ispcli.train import blur

        folder = Path(kernels) if kernels else dataset.default_kernels()
        if not folder.is_dir():
            raise dataset.DataError(f"--kernels {folder}: no such folder")
        found = blur.load_kernels(folder)
        if not found:
            raise dataset.DataError(f"--kernels {folder}: no usable kernels (square, odd-sized .npy arrays)")
        sets: dict[str, list] = {}
        for name, kernel in found:
            sets.setdefault(kernel_set(name), []).append((name, kernel))
        order = sorted(sets, key=lambda k: (list(KERNEL_SETS).index(k) if k in KERNEL_SETS else len(KERNEL_SETS), k))
        sets = {k: sets[k][:kernel_limit] if kernel_limit else sets[k] for k in order}
        self.sigma = noise / 100
        self.kernels = {name: kernel for members in sets.values() for name, kernel in members}
        tail = f" blur, {noise:g}% noise"
        labels = {k: f"{KERNEL_SETS.get(k, k)}{len(v)}" for k, v in sets.items()}
        overall = "+".join(labels.values()) + tail
        self.levels = [Level(name, {"kernel": name, "size": int(kernel.shape[-1])})
                       for members in sets.values() for name, kernel in members]
        self._rows = [RowSpec(labels[k] + tail, tuple(n for n, _ in v), {"kernels": [n for n, _ in v],
                                                                           "noise_sigma": self.sigma})
                      for k, v in sets.items()]
        if len(sets) > 1:
            self._rows.append(RowSpec(overall, tuple(self.kernels), {"kernels": list(self.kernels),
                                                                      "noise_sigma": self.sigma}))
        self.protocol = {"blur": "train.blur.blur: true convolution with each kernel, reflected edges",
                         "kernels": {k: [n for n, _ in v] for k, v in sets.items()},
                         "noise": f"additive white Gaussian, sigma {self.sigma:g}, unclipped, one draw per image",
                         "baselines": "given the true kernel; parameter chosen per row from a grid by best mean "
                                      f"PSNR (Wiener balance {list(baselines.WIENER_BALANCES)}, Richardson-Lucy "
                                      f"iterations {list(baselines.RL_ITERATIONS)}); models are blind",
                         "scoring": "output clipped to [0,1] and quantised to 8 bits; PSNR and SSIM on RGB",
                         "border": 0}
        self.model = _Models("deblur")
        self.rl = baselines.RichardsonLucy()

    @property
    def rows(self) -> list[RowSpec]:
        return self._rows

    def degrade(self, clean: torch.Tensor, level: Level, seed: int, index: int) -> Sample:
        from ispcli.train import blur

        blurred = blur.blur(clean, self.kernels[level.key][None])
        return Sample(_hwc(degrade.gaussian_noise(blurred, self.sigma, dataset.generator(seed, index))), clean)

    def methods(self, models: list[str]) -> list[Method]:
        out = [Method("none", "baseline", lambda lv, s, d: baselines.identity("deblur:none", Domain.display))]
        out += [Method("wiener", "baseline", lambda lv, s, d, b=b: baselines.wiener_deblur(self.kernels[lv.key], b),
                       whole_frame=True, setting={"balance": b}) for b in baselines.WIENER_BALANCES]
        out += [Method("rl", "baseline", lambda lv, s, d, n=n: self.rl.stage(self.kernels[lv.key], n),
                       whole_frame=True, setting={"iterations": n}) for n in baselines.RL_ITERATIONS]
        for name in models:
            out.append(Method(name, "model", lambda lv, s, d, name=name: learned.deblur_stage(
                self.model(name, d), device=d)))
        return out


class EnhanceTask(Task):
    name = "enhance"
    protocol = {"phone-degraded": "train.phone.degrade of each image from its seed, every image degraded "
                                  "(identity=0); scored against the image",
                "unchanged": "the image as it is, scored against itself",
                "pairs": "held-out pairs: train.data.held_out(pair_names(INPUT_DIR, TARGET_DIR), hold_out), "
                         "scored against the targets",
                "global parameters": "from the whole image (autoenhance.analyse, learned.enhance_params); "
                                     "strength 1",
                "scoring": "output clipped to [0,1] and quantised to 8 bits; PSNR and SSIM on RGB",
                "border": 0}

    def __init__(self, pairs=None, hold_out: int = DEFAULT_HOLD_OUT):
        self.phone = Level("phone-degraded", {"identity": 0.0})
        self.unchanged = Level("unchanged (PSNR to input)", {})
        self.levels = [self.phone, self.unchanged]
        self.pairs, self.held = None, []
        if pairs:
            inputs, targets = (Path(p) for p in pairs)
            self.pairs, self.held = (inputs, targets), dataset.held_out_pairs(inputs, targets, hold_out)
            self.pair_level = Level(f"held-out pairs ({len(self.held)})",
                                    {"input": str(inputs), "target": str(targets), "hold_out": hold_out,
                                     "names": self.held}, benchmark=dataset.pairs_name(inputs, targets))
            self.levels = self.levels + [self.pair_level]
        self.model = _Models("enhance")

    def samples(self, paths: list[Path], seed: int) -> Iterator[tuple[str, int, Level, Sample]]:
        for index, path in enumerate(paths):
            clean = _nchw(dataset.load_rgb(path))
            for level in (self.phone, self.unchanged):
                yield path.name, index, level, self.degrade(clean, level, seed, index)
        for index, name in enumerate(self.held):
            source, target = (dataset.load_rgb(folder / name) for folder in self.pairs)
            if source.shape != target.shape:
                raise dataset.DataError(f"{self.pairs[0] / name}: {source.shape[1]}×{source.shape[0]} pixels but "
                                        f"its target is {target.shape[1]}×{target.shape[0]}")
            yield name, index, self.pair_level, Sample(source, _nchw(target))

    def sample_levels(self, paths: list[Path]) -> list[str]:
        return [k for _ in paths for k in (self.phone.key, self.unchanged.key)] + \
            [self.pair_level.key for _ in self.held]

    def degrade(self, clean: torch.Tensor, level: Level, seed: int, index: int) -> Sample:
        from ispcli.train import phone

        if level is self.unchanged:
            return Sample(_hwc(clean), clean)
        return Sample(_hwc(phone.degrade(clean, dataset.generator(seed, index), identity=0.0)), clean)

    def methods(self, models: list[str]) -> list[Method]:
        from ispcli.isp import autoenhance

        inputs = tuple(lv.key for lv in self.levels if lv is not self.unchanged)
        out = [Method("none", "baseline", lambda lv, s, d: baselines.identity("enhance:none", Domain.display),
                      levels=inputs),
               Method("auto", "baseline", lambda lv, s, d: baselines.auto_enhance(
                   autoenhance.analyse(_nchw(s.source))), per_image=True)]
        for name in models:
            out.append(Method(name, "model", lambda lv, s, d, name=name: learned.enhance_stage(
                self.model(name, d), learned.enhance_params(self.model(name, d), _nchw(s.source), device=d),
                1.0, device=d), per_image=True))
        return out

    def warnings(self, models: list[str]) -> list[str]:
        """Models that were trained on some of the pairs scored here."""
        from ispcli.models import weights

        out = []
        for name in models:
            used = set(weights.entry(name).training.get("pairs_used") or ())
            seen = sorted(used & set(self.held))
            if seen:
                out.append(f"{name} was trained on {len(seen)} of the held-out pairs scored here "
                           f"({', '.join(seen[:3])}{', …' if len(seen) > 3 else ''}); its scores on them are "
                           "not held-out scores (was it trained with another --hold-out?)")
        return out


def make_task(name: str, *, sigmas=None, isos=None, kernels=None, noise=None, kernel_limit=None, pairs=None,
              hold_out: int = DEFAULT_HOLD_OUT) -> Task:
    if name == "denoise":
        return DenoiseTask(sigmas or DEFAULT_SIGMAS)
    if name == "demosaic":
        return DemosaicTask()
    if name == "raw-denoise":
        return RawDenoiseTask(isos or DEFAULT_ISOS)
    if name == "dehaze":
        return DehazeTask()
    if name == "deblur":
        return DeblurTask(kernels, DEFAULT_BLUR_NOISE if noise is None else noise, kernel_limit)
    if name == "enhance":
        return EnhanceTask(pairs, hold_out)
    raise ValueError(f"unknown task {name!r} (known: {', '.join(TASK_NAMES)})")


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
    rows: list[RowSpec] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def evaluate(task_name: str, folder: str | Path, *, models: list[str], sigmas=None, isos=None, seed: int = 0,
             limit: int | None = None, device: torch.device | None = None, tile: int = 0,
             progress: Callable[[int, int, str], None] | None = None, **options) -> Evaluation:
    """Score every method on every sample of `task_name` (each image at each level, and for
    enhance the held-out pairs); `options` go to `make_task`."""
    device = device or torch.device("cpu")
    task = make_task(task_name, sigmas=sigmas, isos=isos, **options)
    paths = dataset.find_images(folder, limit)
    methods = task.methods(models)
    warnings = task.warnings(models)
    stages: dict[tuple[int, str], Stage] = {}
    measurements: list[Measurement] = []
    total = sum(m.runs_on(key) for key in task.sample_levels(paths) for m in methods)
    done = 0
    for name, index, level, sample in task.samples(paths, seed):
        megapixels = sample.target.shape[-2] * sample.target.shape[-1] / 1e6
        for number, method in enumerate(methods):
            if not method.runs_on(level.key):
                continue
            key = (number, level.key)
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
            measurements.append(Measurement(name, index, method.name, level.key, psnr, ssim, seconds, megapixels,
                                            dict(method.setting)))
            done += 1
            if progress:
                progress(done, total, f"{name} {level.key} {method.name}")
    return Evaluation(task_name, dataset.benchmark_name(folder), dataset.portable(folder),
                      [p.name for p in paths], seed, str(device), tile, task.levels, methods, measurements,
                      task.protocol, task.rows, warnings)
