"""Synthetic degradations, written once for `train` (random) and `eval` (fixed seed).

Every function takes clean images as (N, 3, H, W) float32 sRGB in [0, 1] and a
`torch.Generator`, and returns what a model sees together with what it should give back.
"""

from __future__ import annotations

import torch

from ispcli.models import conditioning
from ispcli.train import unprocess


def gaussian_noise(clean: torch.Tensor, sigma, generator: torch.Generator) -> torch.Tensor:
    """Additive white Gaussian noise, σ in [0, 1] units (scalar or one per image), unclipped
    as in the denoising literature's benchmarks."""
    sigma = torch.as_tensor(sigma, dtype=clean.dtype).reshape(-1, 1, 1, 1)
    return clean + sigma * torch.randn(clean.shape, generator=generator)


def poisson_gaussian_noise(clean: torch.Tensor, shot, read, generator: torch.Generator):
    """Signal-dependent noise (variance shot·x + read); returns the noisy image and its σ map."""
    shot = torch.as_tensor(shot, dtype=clean.dtype).reshape(-1, 1, 1, 1)
    read = torch.as_tensor(read, dtype=clean.dtype).reshape(-1, 1, 1, 1)
    std = torch.sqrt(shot * clean.clamp_min(0) + read)
    return clean + std * torch.randn(clean.shape, generator=generator), std


def denoise_pair(clean: torch.Tensor, generator: torch.Generator, *, sigma_max: float = 75 / 255,
                 sigma_min: float = 0.0, poisson_fraction: float = 0.0):
    """(model input, target): Gaussian noise with σ uniform in [sigma_min, sigma_max] per image,
    or for `poisson_fraction` of the images Poisson-Gaussian noise with its σ map."""
    n = clean.shape[0]
    sigma = sigma_min + torch.rand(n, generator=generator) * (sigma_max - sigma_min)
    noisy = gaussian_noise(clean, sigma, generator)
    inputs = conditioning.denoise_input(noisy, sigma)
    if poisson_fraction > 0:
        pick = torch.rand(n, generator=generator) < poisson_fraction
        if pick.any():
            k = int(pick.sum())
            shot = torch.rand(k, generator=generator) * (sigma_max ** 2)
            read = torch.rand(k, generator=generator) * (sigma_max / 3) ** 2
            noisy_pg, std = poisson_gaussian_noise(clean[pick], shot, read, generator)
            inputs[pick] = torch.cat([noisy_pg, std.mean(1, keepdim=True)], dim=1)
    return inputs, clean


def demosaic_pair(clean: torch.Tensor, generator: torch.Generator | None = None):
    """(model input, target) for noise-free sRGB-domain demosaicking, as in the literature."""
    mosaic = unprocess.mosaic(clean, "RGGB")
    return conditioning.demosaic_input(mosaic), clean


def raw_pair(clean: torch.Tensor, generator: torch.Generator, shot=None, read=None,
             exposure_range: tuple[float, float] = (0.25, 1.0)):
    """(model input, target) on white-balanced RGGB mosaics made by unprocessing sRGB.

    Each image gets a random camera (matrix mix and illuminant, Brooks et al. 2019), a random
    exposure below clipping, and shot/read noise levels drawn from Brooks' fit over real
    sensors (or the given ones). The target is the clean mosaic after the same white balance.
    """
    n, _, h, w = clean.shape
    inputs, targets = [], []
    for i in range(n):
        camera = unprocess.random_camera(generator)
        scale = exposure_range[0] + (exposure_range[1] - exposure_range[0]) * torch.rand(1, generator=generator).item()
        raw = unprocess.unprocess(clean[i:i + 1], camera, "RGGB") * scale
        if shot is None:
            s, r = unprocess.random_noise_levels(generator)
        else:
            s, r = float(shot), float(read)
        noisy = unprocess.add_shot_read_noise(raw, s, r, generator)
        gains = conditioning.site_gain_plane(camera.wb_gains, h, w)
        inputs.append(conditioning.raw_denoise_input(noisy * gains, gains, s, r))
        targets.append(raw * gains)
    return torch.cat(inputs), torch.cat(targets)


def dehaze_pair(batch: torch.Tensor, generator: torch.Generator, *, airlight_error: float = 0.1):
    """(model input, target) from (N, 6, H, W) photos + depth + frame coordinates
    (`haze.attach_depth`): haze from
    the scattering model, β and a slightly tinted airlight drawn per image, a little wider
    than the eval protocol so that light haze and none at all are seen too. The model is told
    the airlight with the error its estimate has in use (`image_airlight` on a hazy photo)."""
    from ispcli.train import haze

    clean, depth = batch[:, :3], batch[:, 3:4]
    n = clean.shape[0]
    beta = 2.5 * torch.rand(n, generator=generator)
    a = (0.6 + 0.4 * torch.rand(n, 1, generator=generator)).expand(n, 3)
    a = (a + 0.04 * (2 * torch.rand(n, 3, generator=generator) - 1)).clamp(0.05, 1.0)
    hazy = haze.add_haze(clean, depth, beta, a).clamp(0, 1)
    told = a * (1 + airlight_error * torch.randn(a.shape, generator=generator))
    return conditioning.dehaze_input(hazy, told.clamp(0.05, 1.0), batch[:, 4:6]), clean


def deblur_pair(clean: torch.Tensor, generator: torch.Generator, *, noise_max: float = 0.02):
    """(model input, target): a random shake or defocus kernel per image and Gaussian noise
    with σ up to `noise_max` (the eval protocol adds 1%)."""
    from ispcli.train import blur

    kernels = torch.stack([blur.random_kernel(generator) for _ in range(clean.shape[0])])
    sigma = noise_max * torch.rand(clean.shape[0], generator=generator)
    return gaussian_noise(blur.blur(clean, kernels), sigma, generator), clean


def enhance_pair(batch: torch.Tensor, generator: torch.Generator, *, untouched: float = 0.3):
    """(model input, target) from (N, 6, H, W) input+target stacks: real pairs as they are,
    plain photos (input = target) through the phone-like degradations, a fraction
    `untouched` of them left as they are (a good photo should come back unchanged)."""
    from ispcli.train import phone

    inputs, targets = batch[:, :3].clone(), batch[:, 3:]
    for i in range(batch.shape[0]):
        if torch.equal(inputs[i], targets[i]):
            inputs[i] = phone.degrade_one(targets[i:i + 1], generator, identity=untouched)[0]
    return inputs, targets
