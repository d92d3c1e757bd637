"""Phone-like degradations of good photographs, the synthetic half of `train enhance` and the
Kodak24 part of `eval enhance` (DPED, Ignatov et al. 2017, pairs phone photos with DSLR ones;
without such pairs these are the faults a phone adds): wrong exposure and colour cast in
linear light, flat contrast, dull or garish saturation, softness, noise and JPEG.

A fraction of the images is left untouched so that a model learns to leave a good photo alone.
"""

from __future__ import annotations

import io

import numpy as np
import torch
from torch.nn import functional as F


def _u(generator, lo, hi) -> float:
    return lo + (hi - lo) * torch.rand(1, generator=generator).item()


def _chance(generator, p) -> bool:
    return torch.rand(1, generator=generator).item() < p


def gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    r = max(1, int(3 * sigma + 0.5))
    t = torch.arange(-r, r + 1, dtype=x.dtype)
    k = torch.exp(-t * t / (2 * sigma * sigma))
    k = (k / k.sum()).to(x.device)
    c = x.shape[1]
    x = F.conv2d(F.pad(x, (r, r, 0, 0), mode="reflect"), k.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    return F.conv2d(F.pad(x, (0, 0, r, r), mode="reflect"), k.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)


def jpeg(x: torch.Tensor, quality: int) -> torch.Tensor:
    """One (1, 3, H, W) image through Pillow's JPEG encoder and back."""
    from PIL import Image

    a = (x[0].clamp(0, 1).permute(1, 2, 0).numpy() * 255 + 0.5).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(a).save(buf, "JPEG", quality=int(quality))
    buf.seek(0)
    with Image.open(buf) as im:
        out = np.asarray(im.convert("RGB"), dtype=np.float32) / 255
    return torch.from_numpy(out).permute(2, 0, 1).unsqueeze(0)


def degrade_one(x: torch.Tensor, generator: torch.Generator, identity: float = 0.15) -> torch.Tensor:
    """A random phone-like version of one (1, 3, H, W) sRGB image in [0, 1]."""
    if _chance(generator, identity):
        return x.clone()
    lin = x.clamp(0, 1) ** 2.2
    if _chance(generator, 0.8):                                   # exposure, mostly under
        lin = lin * 2 ** _u(generator, -2.0, 0.8)
    if _chance(generator, 0.7):                                   # white balance off
        cast = torch.exp(0.15 * torch.randn(3, generator=generator))
        lin = lin * (cast / cast.mean()).view(1, 3, 1, 1)
    y = lin.clamp(0, 1) ** (1 / 2.2)
    if _chance(generator, 0.7):                                   # flat or harsh contrast
        mean = y.mean(dim=(1, 2, 3), keepdim=True)
        y = mean + _u(generator, 0.55, 1.15) * (y - mean)
    if _chance(generator, 0.5):                                   # saturation
        grey = y.mean(dim=1, keepdim=True)
        y = grey + _u(generator, 0.5, 1.3) * (y - grey)
    y = y.clamp(0, 1)
    if _chance(generator, 0.5):                                   # soft lens / aggressive NR
        y = gaussian_blur(y, _u(generator, 0.4, 1.5))
    if _chance(generator, 0.5):                                   # sensor noise
        y = y + _u(generator, 0.0, 0.03) * torch.randn(y.shape, generator=generator)
    y = y.clamp(0, 1)
    if _chance(generator, 0.5):
        y = jpeg(y, int(_u(generator, 30, 95)))
    return y


def degrade(clean: torch.Tensor, generator: torch.Generator, identity: float = 0.15) -> torch.Tensor:
    return torch.cat([degrade_one(clean[i:i + 1], generator, identity) for i in range(clean.shape[0])])
