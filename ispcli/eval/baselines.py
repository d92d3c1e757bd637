"""Classical baselines, as `Stage`s so they go through the runner like every model.

Denoising:
- `noisy`: the input itself (what doing nothing scores).
- `nlm`: OpenCV's fastNlMeansDenoisingColored (Buades et al.'s non-local means, run by
  OpenCV on CIELab). It takes 8-bit input, so the noisy image is clipped and quantised
  first, as any user of it must. Parameters: h = hColor = 0.65·σ (σ in 0–255 units),
  5×5 patches, 21×21 search window. Chosen by a grid over h, hColor ∈ {0.4…1.1}·σ and
  patch/search sizes {5, 7}/{21, 35} on four scikit-image photos (astronaut, coffee,
  chelsea, rocket; never the benchmark sets): 0.6–0.7·σ with 5×5 patches was best at
  σ = 15, 25 and 50, within 0.1–0.2 dB of each other; the default 7×7 patches lost
  0.2–0.4 dB, h = σ lost 1 dB.
- `bm3d`: CBM3D (Dabov et al. 2007) from the PyPI package `bm3d` (`bm3d.bm3d_rgb`, its
  default profile and opponent colour space) with the true σ, only where that package is
  installed; it is not a dependency of ispcli.

NLM and BM3D are whole-image algorithms (their search windows make tiles differ from the
whole frame), so they run as one tile: `whole_frame=True`.

Demosaicking: the classical methods of `ispcli.isp.demosaic` (bilinear, malvar, menon,
default), with their declared halos.

Deblurring, given the true kernel (the learned models are blind): Wiener–Hunt deconvolution
(`skimage.restoration.wiener`, Laplacian regulariser, per channel) and Richardson–Lucy
(scikit-image's algorithm, see `richardson_lucy_iterates`). Both are FFT methods with
circular or zero boundaries, which ring at a photo's edges: the image is padded
symmetrically by the kernel's size first (and a little more, to sizes whose FFT is fast) and
cropped back. RL models Poisson data, so its input is clipped to [0, 1]. Their parameters are
an oracle's choice from a grid (`WIENER_BALANCES`, `RL_ITERATIONS`): the benchmark scores
every value and reports the best mean, favouring the baselines. Whole-frame methods
(`whole_frame=True`).

Enhancement: `auto`, the classical auto-enhance of `ispcli.isp.autoenhance` (global
parameters from the whole image, applied per pixel, halo 0).
"""

from __future__ import annotations

import hashlib

import numpy as np
import torch

from ispcli.pipeline.stage import Domain, Stage

NLM_H_PER_SIGMA = 0.65      # h and hColor, per unit of σ in 0–255
NLM_TEMPLATE = 5            # patch size
NLM_SEARCH = 21             # search window
RGGB = [[0, 1], [1, 2]]
DEMOSAIC_METHODS = ("bilinear", "malvar", "menon", "default")
# The oracle grids bracket the optimum: on Kodak24 × Levin 8 + KAIR 12 at 1% noise, wider grids
# (balance 0.001–0.1, 5–30 iterations) chose 0.01 and 20 in every row, every other value
# scoring lower in every row (by 0.004 to 2.1 dB). Each value costs a scoring pass (SSIM is
# most of the benchmark's time); RL's counts share one run.
WIENER_BALANCES = (0.003, 0.01, 0.03)
RL_ITERATIONS = (10, 20, 30)


def bm3d_available() -> bool:
    try:
        import bm3d  # noqa: F401
    except Exception:  # noqa: BLE001 - absent or broken: either way not usable
        return False
    return True


def identity(stage_name: str, domain: Domain) -> Stage:
    """The degraded input unchanged."""
    return Stage(stage_name, domain, domain, lambda x: x)


def _numpy_rgb(x: torch.Tensor):
    return x[0].permute(1, 2, 0).float().cpu().numpy()


def _tensor_rgb(a, like: torch.Tensor) -> torch.Tensor:
    import numpy as np

    return torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32)).permute(2, 0, 1)[None].to(like.device)


def nlm_denoise(sigma255: float) -> Stage:
    """OpenCV non-local means with h chosen from σ (see the module docstring)."""
    import cv2
    import numpy as np

    h = NLM_H_PER_SIGMA * float(sigma255)

    def fn(x: torch.Tensor) -> torch.Tensor:
        outs = []
        for i in range(x.shape[0]):
            u8 = np.round(np.clip(_numpy_rgb(x[i:i + 1]), 0, 1) * 255).astype(np.uint8)
            bgr = np.ascontiguousarray(u8[..., ::-1])
            den = cv2.fastNlMeansDenoisingColored(bgr, None, h, h, NLM_TEMPLATE, NLM_SEARCH)
            outs.append(_tensor_rgb(den[..., ::-1].astype(np.float32) / 255.0, x))
        return torch.cat(outs)

    return Stage("denoise:nlm", Domain.display, Domain.display, fn)


def bm3d_denoise(sigma255: float) -> Stage:
    """CBM3D with the true σ (in [0, 1] units, as the image)."""
    import bm3d

    sigma = float(sigma255) / 255.0

    def fn(x: torch.Tensor) -> torch.Tensor:
        import numpy as np

        # a scalar sigma_psd is the noise's standard deviation, in the image's units
        return torch.cat([_tensor_rgb(bm3d.bm3d_rgb(_numpy_rgb(x[i:i + 1]).astype(np.float64), sigma), x)
                          for i in range(x.shape[0])])

    return Stage("denoise:bm3d", Domain.display, Domain.display, fn)


def classical_demosaic(method: str) -> Stage:
    """A classical demosaicker on an RGGB mosaic, tile-exact with its declared halo."""
    from ispcli.isp import demosaic

    return Stage(f"demosaic:{method}", Domain.mosaic, Domain.camera,
                 lambda x: demosaic.demosaic(x, RGGB, method), halo=demosaic.HALO[method])


# ---- deblurring ----------------------------------------------------------------------------------

def _fft_workers() -> int:
    return max(1, torch.get_num_threads())


def pad_for_deconvolution(image: np.ndarray, size: int) -> tuple[np.ndarray, tuple[slice, slice]]:
    """(C, H, W) padded symmetrically by `size` on every side, then at the bottom and right up
    to sizes whose FFT is fast; also the slices that crop the result back."""
    from scipy import fft

    _, h, w = image.shape
    ph = fft.next_fast_len(h + 2 * size, real=True)
    pw = fft.next_fast_len(w + 2 * size, real=True)
    padded = np.pad(image, ((0, 0), (size, ph - h - size), (size, pw - w - size)), mode="symmetric")
    return padded, (slice(size, size + h), slice(size, size + w))


def _per_image(x: torch.Tensor, size: int, restore) -> torch.Tensor:
    """`restore` ((C, H', W') padded float32 → same) on each padded image of x, cropped back."""
    outs = []
    for i in range(x.shape[0]):
        padded, (ys, xs) = pad_for_deconvolution(x[i].float().cpu().numpy(), size)
        outs.append(torch.from_numpy(np.ascontiguousarray(restore(padded)[:, ys, xs], dtype=np.float32)))
    return torch.stack(outs).to(x.device)


def wiener_deblur(kernel: torch.Tensor, balance: float) -> Stage:
    """Wiener–Hunt deconvolution with the true kernel and a Laplacian regulariser of weight
    `balance`, one channel at a time: `skimage.restoration.wiener`'s filter (its transfer
    functions, its clipping to [-1, 1]), with the image's channels through one FFT call and
    the Laplacian's transfer function in closed form (tests compare the two)."""
    from scipy import fft

    psf = kernel.double().numpy()

    def restore(padded: np.ndarray) -> np.ndarray:
        h, w = padded.shape[-2:]
        shifted = np.zeros((h, w))                      # skimage's uft.ir2tf: the kernel's centre at 0
        shifted[:psf.shape[0], :psf.shape[1]] = psf
        shifted = np.roll(shifted, (-(psf.shape[0] // 2), -(psf.shape[1] // 2)), axis=(0, 1))
        transfer = fft.rfft2(shifted)
        fy, fx = np.fft.fftfreq(h)[:, None], np.fft.rfftfreq(w)[None, :]
        laplacian = 4 - 2 * np.cos(2 * np.pi * fy) - 2 * np.cos(2 * np.pi * fx)   # uft.laplacian's transfer
        filt = (np.conj(transfer) / (np.abs(transfer) ** 2 + balance * laplacian ** 2)).astype(np.complex64)
        workers = _fft_workers()
        out = fft.irfft2(fft.rfft2(padded, workers=workers) * filt, (h, w), workers=workers)
        return np.clip(out, -1, 1)

    return Stage(f"deblur:wiener-{balance:g}", Domain.display, Domain.display,
                 lambda x: _per_image(x, psf.shape[0], restore))


def richardson_lucy_iterates(image: np.ndarray, psf: np.ndarray, counts) -> dict[int, np.ndarray]:
    """Richardson–Lucy deconvolution of each (H, W) plane of `image` (C, H, W) with `psf`,
    returning the iterate after each of `counts` iterations from one run.

    The algorithm is `skimage.restoration.richardson_lucy`'s step for step (start at 0.5,
    "same"-size linear convolutions, 1e-12 against division by zero, result clipped to
    [-1, 1]); only the kernels' FFTs are computed once and the planes go together, which
    gives every grid value for the cost of the largest (tests compare the two)."""
    from scipy import fft

    image = image.astype(np.float32, copy=False)
    psf = psf.astype(np.float32)
    _, h, w = image.shape
    kh, kw = psf.shape
    shape = (fft.next_fast_len(h + kh - 1, real=True), fft.next_fast_len(w + kw - 1, real=True))
    ys, xs = slice((kh - 1) // 2, (kh - 1) // 2 + h), slice((kw - 1) // 2, (kw - 1) // 2 + w)
    forward = fft.rfft2(psf, shape)
    mirrored = fft.rfft2(np.ascontiguousarray(psf[::-1, ::-1]), shape)
    workers = _fft_workers()

    def convolve(u: np.ndarray, transfer: np.ndarray) -> np.ndarray:
        return fft.irfft2(fft.rfft2(u, shape, workers=workers) * transfer, shape, workers=workers)[:, ys, xs]

    estimate = np.full(image.shape, 0.5, dtype=np.float32)
    wanted, out = set(counts), {}
    for i in range(1, max(wanted) + 1):
        estimate *= convolve(image / (convolve(estimate, forward) + 1e-12), mirrored)
        if i in wanted:
            out[i] = np.clip(estimate, -1, 1)
    return out


class RichardsonLucy:
    """Richardson–Lucy with the true kernel at several iteration counts: a `stage` per kernel
    and count, where the counts share one run per image and kernel (the iterates of the last
    two inputs are kept)."""

    def __init__(self, counts=RL_ITERATIONS):
        self.counts = tuple(counts)
        self._runs: dict[bytes, dict[int, torch.Tensor]] = {}

    def _run(self, x: torch.Tensor, psf: np.ndarray, count: int) -> torch.Tensor:
        data = x.float().cpu().numpy()
        digest = hashlib.blake2b(digest_size=16)
        for part in (data.tobytes(), str(data.shape).encode(), psf.tobytes(), str(psf.shape).encode()):
            digest.update(part)
        key = digest.digest()
        if key not in self._runs:
            runs: dict[int, list[torch.Tensor]] = {c: [] for c in self.counts}
            for image in data:
                padded, (ys, xs) = pad_for_deconvolution(image.clip(0, 1), psf.shape[0])
                for c, out in richardson_lucy_iterates(padded, psf, self.counts).items():
                    runs[c].append(torch.from_numpy(np.ascontiguousarray(out[:, ys, xs])))
            # two inputs kept: a new stage's warm-up crop must not push out the image it then runs on
            self._runs = {**dict(list(self._runs.items())[-1:]), key: {c: torch.stack(v) for c, v in runs.items()}}
        return self._runs[key][count].to(x.device)

    def stage(self, kernel: torch.Tensor, count: int) -> Stage:
        if count not in self.counts:
            raise ValueError(f"{count} is not one of the iteration counts {self.counts}")
        psf = kernel.float().numpy()
        return Stage(f"deblur:rl-{count}", Domain.display, Domain.display, lambda x: self._run(x, psf, count))


# ---- enhancement ---------------------------------------------------------------------------------

def auto_enhance(params: torch.Tensor) -> Stage:
    """Classical auto-enhance with the global parameters `autoenhance.analyse` measured on
    the whole image; per pixel, so any tiling gives the same result."""
    from ispcli.isp import autoenhance

    return Stage("enhance:auto", Domain.display, Domain.display, lambda x: autoenhance.apply(x, params),
                 halo=autoenhance.HALO)
