"""The one-stage commands' workers, one file in, one out: `denoise_file`, `dehaze_file`,
`deblur_file`, `enhance_file` (one display-image stage each, through one worker) and
`demosaic_file`.

Like `develop_file` they never raise for a problem with their file (`jobs.run_guarded` turns
it into a failed result). Pixels go through the one runner: the source stays in its own
compact dtype and a `levels` stage scales each tile's integer samples to [0, 1] on the way in;
float images pass unscaled and unclipped.
"""

from __future__ import annotations

import warnings
from functools import partial
from pathlib import Path

import numpy as np

from ispcli import __version__
from ispcli.io.errors import FileError
from ispcli.pipeline.jobs import Canvas, FileResult, Job, read_job_raw, run_guarded
from ispcli.recipe import Recipe

MIN_SIZE = 16  # pixels on the short side; a network's context is meaningless below this
SUFFIX_FORMATS = {".jpg": "jpg", ".jpeg": "jpg", ".png": "png", ".tif": "tif", ".tiff": "tif"}
CFA_PATTERNS = {"RGGB": [[0, 1], [1, 2]], "BGGR": [[2, 1], [1, 0]],
                "GRBG": [[1, 0], [2, 1]], "GBRG": [[1, 2], [0, 1]]}


# ---- inputs -------------------------------------------------------------------------------------

def sample_scale(image: np.ndarray, path) -> tuple[np.ndarray, float, int]:
    """(image, factor to [0, 1], bits): integer samples are scaled by the runner, float
    samples are used as they are (values outside [0, 1] included)."""
    if image.dtype == np.uint8:
        return image, 1 / 255, 8
    if image.dtype == np.uint16:
        return image, 1 / 65535, 16
    if image.dtype.kind == "f":
        return image.astype(np.float32, copy=False), 1.0, 32
    raise FileError(path, f"has {image.dtype} samples; expected 8- or 16-bit integers or float")


def check_size(image: np.ndarray, path) -> None:
    h, w = image.shape[:2]
    if min(h, w) < MIN_SIZE:
        raise FileError(path, f"is {w}x{h} pixels; images must be at least {MIN_SIZE}x{MIN_SIZE}")


def check_rgb(image: np.ndarray, info: dict, path, command: str) -> None:
    """Refuse anything but three colour channels, naming what the file is instead."""
    mode, channels = info.get("mode") or "", image.shape[2]
    if channels == 3 and mode not in ("P", "CMYK"):
        return
    if mode == "P":
        what = "is a palette image"
    elif mode == "CMYK" or (channels == 4 and mode.startswith("CMYK")):
        what = "is a CMYK image"
    elif channels in (2, 4) or mode.endswith("A"):
        what = "has an alpha channel"
    elif channels == 1:
        what = "is greyscale"
    else:
        what = f"has {channels} channels"
    raise FileError(path, f"{what}; {command} takes RGB images")


def output_format(recipe: Recipe, path: str, in_bits: int) -> tuple[str, int]:
    """The format and bits of this file's output: the recipe's, or the input's where it says
    "same" / 0, within what the format can hold (JPEG 8-bit, PNG up to 16)."""
    if recipe.format == "same":
        fmt = SUFFIX_FORMATS.get(Path(path).suffix.lower())
        if fmt is None:
            raise FileError(path, f"cannot keep the format of a {Path(path).suffix or 'suffix-less'} file; "
                                  "choose one with --format jpg|png|tif")
    else:
        fmt = recipe.format
    bits = recipe.bits
    if bits == 0:
        bits = 8 if fmt == "jpg" else min(in_bits, 16) if fmt == "png" else in_bits
    elif fmt == "jpg" and bits != 8:
        raise FileError(path, f"--bits {bits}: this output is a JPEG, which is 8-bit only; add --format png or tif")
    elif fmt == "png" and bits == 32:
        raise FileError(path, "--bits 32: this output is a PNG; float output needs --format tif")
    return fmt, bits


def _levels(scale: float, domain_out):
    from ispcli.pipeline.stage import Domain, Stage

    return Stage("levels", Domain.counts, domain_out, lambda x: x * scale)


# ---- one display-image stage: denoise, dehaze, deblur, enhance -----------------------------------

def analysis_copy(image: np.ndarray, scale: float):
    """`isp.dehaze.analysis_copy` of the whole (H, W, 3) image scaled to [0, 1], as a
    (1, 3, h, w) tensor, computed a band of rows at a time: memory does not grow with the
    image. Every whole-image analysis (airlight, enhance's global branch) runs on it."""
    import torch
    from torch.nn import functional as F

    from ispcli.isp.dehaze import ANALYSIS_SIZE

    h, w = image.shape[:2]
    factor = max(1, -(-max(h, w) // ANALYSIS_SIZE))
    rows = factor * max(1, 64 // factor)     # whole pooling windows per band: same sums as the whole
    parts = []
    for y in range(0, h, rows):
        x = torch.from_numpy(np.ascontiguousarray(image[y:y + rows], dtype=np.float32)).permute(2, 0, 1)[None]
        if scale != 1.0:
            x = x * scale                        # as the runner's levels stage scales
        parts.append(F.avg_pool2d(x, factor, ceil_mode=True) if factor > 1 else x)
    return torch.cat(parts, dim=2)


def _denoise_plan(image: np.ndarray, scale: float, recipe: Recipe, device, result: FileResult):
    """Without a σ in the recipe it is estimated once from the whole image, so tiling
    cannot change it; the σ used is reported."""
    from ispcli.isp.noise import estimate_sigma
    from ispcli.pipeline import learned

    if recipe.sigma >= 0:
        sigma = recipe.sigma
    else:
        with warnings.catch_warnings():  # a read-only array (Pillow's) is only read here
            warnings.simplefilter("ignore", UserWarning)
            sigma = estimate_sigma(image) * scale * 255.0
    result.sigma = round(float(sigma), 2)
    return learned.denoise_stage(recipe.model, sigma / 255.0, device=device, precision=recipe.precision,
                                 compile=recipe.compile)


def _dehaze_plan(image: np.ndarray, scale: float, recipe: Recipe, device, result: FileResult):
    """The airlight is estimated once, on the whole image's downscaled copy."""
    from ispcli.isp.dehaze import image_airlight
    from ispcli.models import registry
    from ispcli.pipeline import learned

    copy = analysis_copy(image, scale)
    if recipe.model == "dcp":
        return learned.dcp_stage(image_airlight(copy)[0])
    model = registry.load(recipe.model, task="dehaze", domain="display")
    airlight = learned.dehaze_airlight(model, copy, device=device, precision=recipe.precision)[0]
    return learned.dehaze_stage(model, airlight, device=device, precision=recipe.precision, compile=recipe.compile)


def _deblur_plan(image: np.ndarray, scale: float, recipe: Recipe, device, result: FileResult):
    from ispcli.pipeline import learned

    return learned.deblur_stage(recipe.model, device=device, precision=recipe.precision, compile=recipe.compile)


def _enhance_plan(image: np.ndarray, scale: float, recipe: Recipe, device, result: FileResult):
    """The global branch runs once, on the whole image's downscaled copy; tiles get its numbers."""
    from ispcli.models import registry
    from ispcli.pipeline import learned

    model = registry.load(recipe.model, task="enhance", domain="display")
    params = learned.enhance_params(model, analysis_copy(image, scale), device=device,
                                    precision=recipe.precision)
    return learned.enhance_stage(model, params, recipe.strength, device=device, precision=recipe.precision,
                                 compile=recipe.compile)


def stage_array(image: np.ndarray, scale: float, stage, bits: int, *, device, tile: int = 0) -> np.ndarray:
    """Run one display-referred stage over an (H, W, 3) image through the runner."""
    from ispcli.pipeline import runner
    from ispcli.pipeline.stage import Domain, Pipeline

    stages = [_levels(scale, Domain.display)] if scale != 1.0 else []
    canvas = Canvas(image.shape[0], image.shape[1], 1, bits)
    runner.run(Pipeline(stages + [stage]), image, canvas, device=device, tile=tile)
    return canvas.image


def _one_stage(command: str, plan, job: Job, result: FileResult):
    """Read an RGB image, check it, let `plan` build the command's stage (after any
    whole-image analysis it needs) and run it; returns the step that writes the output with
    the input's ICC profile and EXIF (see `jobs.run_guarded`)."""
    from ispcli.io.exif import image_output_tags, read_image_exif
    from ispcli.io.images import read_image, save_image
    from ispcli.pipeline.device import resolve_device

    image, info = read_image(job.input)
    result.megapixels = round(image.shape[0] * image.shape[1] / 1e6, 3)
    check_rgb(image, info, job.input, command)
    check_size(image, job.input)
    image, scale, in_bits = sample_scale(image, job.input)
    fmt, bits = output_format(job.recipe, job.input, in_bits)
    device = resolve_device(job.recipe.device)
    stage = plan(image, scale, job.recipe, device, result)
    out = stage_array(image, scale, stage, bits, device=device, tile=job.recipe.tile)
    del image
    tags = image_output_tags(read_image_exif(job.input), width=out.shape[1], height=out.shape[0],
                             software=f"ispcli {__version__}")

    def write() -> None:
        Path(job.output).parent.mkdir(parents=True, exist_ok=True)
        save_image(job.output, out, fmt, quality=job.recipe.quality, icc=info.get("icc"), exif=tags,
                   overwrite=job.overwrite)

    return write


def denoise_file(job: Job) -> FileResult:
    """Denoise one image into one output file; every per-file problem becomes a failed result."""
    return run_guarded(job, "denoised", partial(_one_stage, "denoise", _denoise_plan))


def dehaze_file(job: Job) -> FileResult:
    """Dehaze one image (learned, or `dcp` as the recipe's model)."""
    return run_guarded(job, "dehazed", partial(_one_stage, "dehaze", _dehaze_plan))


def deblur_file(job: Job) -> FileResult:
    """Deblur one image (blind)."""
    return run_guarded(job, "deblurred", partial(_one_stage, "deblur", _deblur_plan))


def enhance_file(job: Job) -> FileResult:
    """Enhance one image, blended with it by the recipe's strength."""
    return run_guarded(job, "enhanced", partial(_one_stage, "enhance", _enhance_plan))


# ---- demosaic -----------------------------------------------------------------------------------

def _demosaic_stage(method: str, cfa, kind: str, *, device, precision: str, encoded: bool, warnings: list,
                    compile: bool = False):
    """The demosaic stage for `method` (classical name or net:NAME) and the CFA period."""
    import torch

    from ispcli.isp import demosaic
    from ispcli.pipeline import learned
    from ispcli.pipeline.stage import Domain, Stage

    period = len(cfa)
    if method.startswith("net:"):
        return learned.demosaic_stage(method[4:], cfa, device=device, precision=precision, encoded=encoded,
                                      compile=compile), period
    if kind != "bayer" and method not in ("default", "bilinear"):
        warnings.append(f"--method {method} is for Bayer mosaics; this X-Trans file used default")
        method = "default"
    table = torch.as_tensor(cfa)
    return Stage("demosaic", Domain.mosaic, Domain.camera, lambda x: demosaic.demosaic(x, table, method),
                 halo=demosaic.HALO[method]), period


def _demosaic_raw(job: Job, result: FileResult):
    import torch

    from ispcli.io.exif import output_tags
    from ispcli.isp.cfa import cfa_plane
    from ispcli.isp.levels import normalize_levels
    from ispcli.pipeline import runner
    from ispcli.pipeline.device import resolve_device
    from ispcli.pipeline.stage import Domain, Pipeline, Stage

    raw = read_job_raw(job)
    result.megapixels = round(raw.megapixels, 3)
    result.warnings = list(raw.warnings)
    if raw.cfa is None:
        raise FileError(job.input, "already demosaicked (a linear raw with three colours per pixel); "
                                   "nothing to demosaic")
    r = job.recipe
    device = resolve_device(r.device)
    black = torch.as_tensor(raw.black, dtype=torch.float32)
    white = float(raw.white)
    levels = Stage("levels", Domain.counts, Domain.mosaic,
                   lambda x: normalize_levels(x, cfa_plane(black.to(x.device), x.shape[-2], x.shape[-1]), white))
    stage, align = _demosaic_stage(r.demosaic, raw.cfa.tolist(), raw.kind, device=device, precision=r.precision,
                                   encoded=False, warnings=result.warnings, compile=r.compile)
    bits = r.bits or 16
    canvas = Canvas(raw.height, raw.width, raw.orientation, bits)
    runner.run(Pipeline([levels, stage]), raw.data, canvas, device=device, tile=r.tile, align=align)
    tags = output_tags(raw.exif, gps=r.gps, width=canvas.image.shape[1], height=canvas.image.shape[0],
                       software=f"ispcli {__version__}")
    return canvas.image, tags


def _demosaic_mosaic_image(job: Job, result: FileResult):
    from ispcli.io.batch import RAW_EXTENSIONS
    from ispcli.io.exif import image_output_tags, read_image_exif
    from ispcli.io.images import read_image
    from ispcli.pipeline import runner
    from ispcli.pipeline.device import resolve_device
    from ispcli.pipeline.stage import Domain, Pipeline

    if Path(job.input).suffix.lower() in RAW_EXTENSIONS:
        raise FileError(job.input, "is a raw file; --cfa is for single-channel mosaic images (leave it out for raws)")
    image, info = read_image(job.input)
    result.megapixels = round(image.shape[0] * image.shape[1] / 1e6, 3)
    if image.shape[2] != 1 or info.get("mode") in ("P", "LA"):
        what = "is a palette image" if info.get("mode") == "P" else f"has {image.shape[2]} channels"
        raise FileError(job.input, f"{what}; --cfa takes single-channel mosaic images")
    check_size(image, job.input)
    image, scale, in_bits = sample_scale(image, job.input)
    r = job.recipe
    device = resolve_device(r.device)
    stage, align = _demosaic_stage(r.demosaic, CFA_PATTERNS[job.cfa], "bayer", device=device,
                                   precision=r.precision, encoded=True, warnings=result.warnings,
                                   compile=r.compile)
    stages = ([_levels(scale, Domain.mosaic)] if scale != 1.0 else []) + [stage]
    canvas = Canvas(image.shape[0], image.shape[1], 1, r.bits or in_bits)
    runner.run(Pipeline(stages), image[..., 0], canvas, device=device, tile=r.tile, align=align)
    tags = image_output_tags(read_image_exif(job.input), width=image.shape[1], height=image.shape[0],
                             software=f"ispcli {__version__}")
    return canvas.image, tags


def _demosaic(job: Job, result: FileResult):
    from ispcli.io.images import save_image

    image, tags = (_demosaic_mosaic_image if job.cfa else _demosaic_raw)(job, result)

    def write() -> None:
        Path(job.output).parent.mkdir(parents=True, exist_ok=True)
        save_image(job.output, image, "tif", exif=tags, overwrite=job.overwrite)

    return write


def demosaic_file(job: Job) -> FileResult:
    """Demosaic one raw (or, with `job.cfa`, one mosaic image) into a linear camera-RGB TIFF."""
    return run_guarded(job, "demosaicked", _demosaic)
