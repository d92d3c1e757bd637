"""Learned stages: trained networks wrapped as `Stage`s, interchangeable with classical ones.

Each builder loads its model through the registry (so the manifest's task and domain are
checked), declares a halo of the network's receptive field and asks the runner for
reflected context at the frame's edges: tiled output then equals whole-frame output.
Inputs are built by `models.conditioning`, the same code `train` used.
"""

from __future__ import annotations

import contextlib

import torch

from ispcli.models import conditioning, registry
from ispcli.pipeline.stage import Domain, Stage

PRECISIONS = ("auto", "fp32", "fp16", "bf16")


class StageError(ValueError):
    """A learned stage that cannot run on this input (e.g. an X-Trans mosaic)."""


def _autocast(device: torch.device, precision: str):
    """Half precision only on CUDA, where it is fast and the models were checked in it;
    on the CPU fp32 is exact and deterministic."""
    if device.type != "cuda" or precision in ("fp32",):
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast("cuda", dtype=dtype)


def _prepare(model, device: torch.device, compile: bool = False):
    """The model on `device` with channels-last weights: oneDNN's and cuDNN's fast convolution
    layout (measured on this project's 2-core CPU: the U-Nets run 1.5-2.9x faster). With
    `compile`, through torch.compile: it pays ~10-20 s of compilation per process once and
    compiles for any tile size (dynamic shapes), so it is for long batches."""
    model = model.to(device, memory_format=torch.channels_last)
    if compile:
        # the module itself stays (its receptive_field, multiple...); its forward is compiled
        model.forward = torch.compile(model.forward, dynamic=True)
    return model


def denoise_stage(model_name: str, sigma: float, *, device: torch.device, precision: str = "auto",
                  compile: bool = False) -> Stage:
    """Display-referred denoising with a known noise σ (in [0, 1] units)."""
    model = _prepare(registry.load(model_name, task="denoise", domain="display"), device, compile)

    def fn(x: torch.Tensor) -> torch.Tensor:
        with _autocast(x.device, precision):
            out = model(conditioning.denoise_input(x, sigma))
        return out.float()

    return Stage("denoise", Domain.display, Domain.display, fn, halo=model.receptive_field, extend=True,
                 align=model.multiple)


def _bayer(cfa) -> list[list[int]]:
    pattern = torch.as_tensor(cfa).tolist()
    if len(pattern) != 2:
        raise StageError("learned raw stages handle Bayer mosaics only (this file is X-Trans); "
                         "use a classical --demosaic and no raw --denoise")
    return pattern


def _srgb_encode(x: torch.Tensor) -> torch.Tensor:
    """sRGB's curve, odd-symmetric below 0 and continued above 1 (raw values can be either)."""
    a = x.abs()
    y = torch.where(a <= 0.0031308, a * 12.92, 1.055 * a.clamp_min(0.0031308) ** (1 / 2.4) - 0.055)
    return torch.copysign(y, x)


def _srgb_decode(y: torch.Tensor) -> torch.Tensor:
    a = y.abs()
    x = torch.where(a <= 0.04045, a / 12.92, ((a.clamp_min(0.04045) + 0.055) / 1.055) ** 2.4)
    return torch.copysign(x, y)


def demosaic_stage(model_name: str, cfa, *, device: torch.device, precision: str = "auto", compile: bool = False,
                   encoded: bool = False) -> Stage:
    """A learned demosaicker. It was trained on sRGB-encoded mosaics, so linear data
    (`encoded=False`, as in develop) goes through the sRGB curve and back around it."""
    model = _prepare(registry.load(model_name, task="demosaic", domain="mosaic"), device, compile)
    pattern = _bayer(cfa)
    from ispcli.isp.demosaic import HALO

    def fn(x: torch.Tensor) -> torch.Tensor:
        m, offset = conditioning.to_rggb(x, pattern)
        if not encoded:
            m = _srgb_encode(m)
        with _autocast(x.device, precision):
            out = model(conditioning.demosaic_input(m)).float()
        out = conditioning.from_rggb(out, offset)
        return out if encoded else _srgb_decode(out)

    return Stage("demosaic", Domain.mosaic, Domain.camera, fn,
                 halo=model.receptive_field + HALO["menon"] + 1, extend=True, align=model.multiple)


def raw_denoise_stage(model_name: str, cfa, gains, shot: float, read: float, *,
                      device: torch.device, precision: str = "auto", compile: bool = False) -> Stage:
    """A raw-mosaic denoiser on the white-balanced mosaic; `shot`/`read` are the noise
    variances of the unbalanced normalised sensor data (Brooks et al.'s model)."""
    model = _prepare(registry.load(model_name, task="raw-denoise", domain="mosaic"), device, compile)
    pattern = _bayer(cfa)
    gains = torch.as_tensor(gains, dtype=torch.float32)

    def fn(x: torch.Tensor) -> torch.Tensor:
        m, offset = conditioning.to_rggb(x, pattern)
        plane = conditioning.site_gain_plane(gains.to(x.device), m.shape[-2], m.shape[-1], m.shape[0])
        with _autocast(x.device, precision):
            out = model(conditioning.raw_denoise_input(m, plane, shot, read)).float()
        return conditioning.from_rggb(out, offset)

    return Stage("raw_denoise", Domain.mosaic, Domain.mosaic, fn, halo=model.receptive_field + 1, extend=True,
                 align=model.multiple)


# ---- restoration and enhancement (display-trained models, usable on linear data too) ----------

def _load(model, task: str):
    """A model by name (checked against the manifest for `task`), or one already loaded."""
    if isinstance(model, str):
        return registry.load(model, task=task, domain="display")
    return model


def _rgb3(value, what: str) -> torch.Tensor:
    t = torch.as_tensor(value, dtype=torch.float32).reshape(-1)
    if t.numel() != 3:
        raise ValueError(f"{what} must be three numbers (R, G, B), got {tuple(t.shape)}")
    return t


def _around_srgb(fn, encoded: bool):
    """`fn` works on sRGB-encoded values (what the models were trained on); on linear data
    (`encoded=False`, as in develop) it runs between the sRGB curve and its inverse."""
    if encoded:
        return fn
    return lambda x, *where: _srgb_decode(fn(_srgb_encode(x), *where))


def _restore_domain(encoded: bool) -> Domain:
    return Domain.display if encoded else Domain.linear


def dehaze_airlight(model_name, image: torch.Tensor, *, device: torch.device, precision: str = "auto") -> torch.Tensor:
    """The analysis pass of a learned dehazer: the airlight (N, 3) of whole sRGB-encoded images,
    from their downscaled copies: the dark-channel estimate (`isp.dehaze.image_airlight`),
    corrected by the model's global branch when it has one. Give it to `dehaze_stage`."""
    from ispcli.isp.dehaze import analysis_copy

    model = _prepare(_load(model_name, "dehaze"), device)
    with torch.inference_mode(), _autocast(device, precision):
        airlight = model.analyse(analysis_copy(image.to(device, torch.float32)))
    return airlight.float().cpu()


def dehaze_stage(model_name, airlight, *, device: torch.device, precision: str = "auto", compile: bool = False,
                 encoded: bool = True) -> Stage:
    """Learned dehazing with the image's airlight ((3,), sRGB-encoded, from `dehaze_airlight`:
    estimated once per image, so every tile uses the same)."""
    model = _prepare(_load(model_name, "dehaze"), device, compile)
    a = _rgb3(airlight, "the airlight")

    def net(x: torch.Tensor, where=None) -> torch.Tensor:
        coords = where.planes(*x.shape[-2:], device=x.device) if model.position else None
        with _autocast(x.device, precision):
            out = model.apply(x, a.to(x.device), coords)
        return out.float()

    d = _restore_domain(encoded)
    return Stage("dehaze", d, d, _around_srgb(net, encoded), halo=model.receptive_field, extend=True,
                 align=model.multiple, positional=model.position)


def dcp_stage(airlight, encoded: bool = True) -> Stage:
    """Dark channel prior dehazing (He et al.) with the image's airlight, as `dehaze_stage`."""
    from ispcli.isp import dehaze

    a = _rgb3(airlight, "the airlight")
    d = _restore_domain(encoded)
    return Stage("dehaze", d, d, _around_srgb(lambda x: dehaze.dcp_dehaze(x, a.to(x.device)), encoded),
                 halo=dehaze.HALO, extend=True)


def deblur_stage(model_name, *, device: torch.device, precision: str = "auto", compile: bool = False,
                 encoded: bool = True) -> Stage:
    """Blind deblurring: the network sees only the blurred image."""
    model = _prepare(_load(model_name, "deblur"), device, compile)

    def net(x: torch.Tensor) -> torch.Tensor:
        with _autocast(x.device, precision):
            out = model(x)
        return out.float()

    d = _restore_domain(encoded)
    return Stage("deblur", d, d, _around_srgb(net, encoded), halo=model.receptive_field, extend=True,
                 align=model.multiple)


def enhance_params(model_name, image: torch.Tensor, *, device: torch.device,
                   precision: str = "auto") -> torch.Tensor:
    """The analysis pass of the enhancer: its global branch's parameters (N, P) for whole
    display images (N, 3, H, W), computed on their downscaled copies (`isp.dehaze.analysis_copy`,
    which leaves a copy already that small unchanged). Give them to `enhance_stage`."""
    from ispcli.isp.dehaze import analysis_copy

    model = _prepare(_load(model_name, "enhance"), device)
    with torch.inference_mode(), _autocast(device, precision):
        params = model.analyse(analysis_copy(image.to(device, torch.float32)))
    return params.float().cpu()


def enhance_stage(model_name, params, strength: float = 1.0, *, device: torch.device,
                  precision: str = "auto", compile: bool = False) -> Stage:
    """The enhancer applied per tile with the whole image's `params` (from `enhance_params`;
    never from the tile itself, which would make the result depend on tiling), blended with
    the input: out = in + strength·(enhanced − in)."""
    if params is None:
        raise ValueError("enhance_stage needs the whole image's params (enhance_params), not None")
    if not 0.0 <= strength <= 1.0:
        raise ValueError(f"strength {strength:g}: expected 0..1")
    model = _prepare(_load(model_name, "enhance"), device, compile)
    p = torch.as_tensor(params, dtype=torch.float32).reshape(1, -1)
    expected = model.n_params
    if p.shape[1] != expected:
        raise ValueError(f"enhance params have {p.shape[1]} values; this model takes {expected}")

    def fn(x: torch.Tensor) -> torch.Tensor:
        if strength == 0.0:
            return x
        with _autocast(x.device, precision):
            out = model.apply(x, p.to(x.device).expand(x.shape[0], -1))
        return torch.lerp(x, out.float(), strength)    # exact at 0 and 1

    return Stage("enhance", Domain.display, Domain.display, fn, halo=model.receptive_field, extend=True,
                 align=model.multiple)
