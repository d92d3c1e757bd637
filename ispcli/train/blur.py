"""Blur kernels and blurring, for `train deblur` (random) and `eval deblur` (benchmark kernels).

Camera shake follows a random trajectory with inertia, after Boracchi and Foi (TIP 2012),
rasterised with sub-pixel splatting; mild defocus is a disc. Blurring is a true convolution
(the kernel flipped, as `scipy.ndimage.convolve` and scikit-image's deconvolutions assume) with
reflected edges.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F

KERNEL_SIZE = 31     # covers the largest benchmark kernel (Levin's 27×27)


def trajectory_kernel(generator: torch.Generator, size: int = KERNEL_SIZE, length=(4.0, 26.0)) -> torch.Tensor:
    """A camera-shake kernel: a random walk whose velocity changes smoothly and sometimes jerks."""
    steps = 96
    extent = length[0] + (length[1] - length[0]) * torch.rand(1, generator=generator).item()
    angle = 2 * math.pi * torch.rand(1, generator=generator).item()
    v = torch.tensor([math.cos(angle), math.sin(angle)])
    pos = torch.zeros(2)
    points = [pos.clone()]
    smooth = 0.1 + 0.4 * torch.rand(1, generator=generator).item()
    for _ in range(steps - 1):
        v = v + smooth * torch.randn(2, generator=generator) - 0.05 * pos / max(extent, 1.0)
        if torch.rand(1, generator=generator).item() < 0.02:          # an abrupt jerk
            v = v + torch.randn(2, generator=generator)
        v = v / v.norm().clamp_min(1e-6)
        pos = pos + v
        points.append(pos.clone())
    path = torch.stack(points)
    path = path - path.mean(0)
    span = (path.amax(0) - path.amin(0)).max().clamp_min(1e-6)
    path = path * (extent / span)
    return _rasterise(path, size)


def _rasterise(path: torch.Tensor, size: int) -> torch.Tensor:
    kernel = torch.zeros(size, size)
    c = (size - 1) / 2
    for x, y in path.tolist():
        x, y = min(max(x + c, 0.0), size - 1.001), min(max(y + c, 0.0), size - 1.001)
        x0, y0 = int(x), int(y)
        fx, fy = x - x0, y - y0
        kernel[y0, x0] += (1 - fx) * (1 - fy)
        kernel[y0, x0 + 1] += fx * (1 - fy)
        kernel[y0 + 1, x0] += (1 - fx) * fy
        kernel[y0 + 1, x0 + 1] += fx * fy
    return kernel / kernel.sum()


def disc_kernel(radius: float, size: int = KERNEL_SIZE) -> torch.Tensor:
    """Defocus: a uniform disc with anti-aliased rim."""
    c = (size - 1) / 2
    y, x = torch.meshgrid(torch.arange(size) - c, torch.arange(size) - c, indexing="ij")
    k = (radius + 0.5 - torch.sqrt(x * x + y * y)).clamp(0, 1)
    return k / k.sum()


def random_kernel(generator: torch.Generator, size: int = KERNEL_SIZE) -> torch.Tensor:
    """Mostly camera shake, sometimes defocus (one in five)."""
    if torch.rand(1, generator=generator).item() < 0.2:
        return disc_kernel(0.5 + 3.5 * torch.rand(1, generator=generator).item(), size)
    return trajectory_kernel(generator, size)


def blur(images: torch.Tensor, kernels: torch.Tensor) -> torch.Tensor:
    """Convolve each (3, H, W) image with its own (k, k) kernel; edges reflected."""
    n, c, h, w = images.shape
    k = kernels.shape[-1]
    r = k // 2
    padded = F.pad(images.reshape(1, n * c, h, w), (r, r, r, r), mode="reflect")
    weight = kernels.flip(-1, -2).to(images).repeat_interleave(c, dim=0).unsqueeze(1)   # (n·c, 1, k, k)
    return F.conv2d(padded, weight, groups=n * c).reshape(n, c, h, w)


def load_kernels(folder) -> list[tuple[str, torch.Tensor]]:
    """The benchmark kernels of a folder (`*.npy`, normalised to sum 1), sorted by name."""
    kernels = []
    for path in sorted(Path(folder).glob("*.npy")):
        k = torch.from_numpy(np.load(path).astype(np.float32))
        if k.ndim == 2 and k.shape[0] % 2 == 1 and k.shape[0] == k.shape[1] and float(k.sum()) > 0:
            kernels.append((path.stem, k / k.sum()))
    return kernels
