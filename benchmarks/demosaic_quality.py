"""Quality and speed of ispcli's demosaicing methods on Kodak24, with colour-demosaicing as reference.

    python benchmarks/demosaic_quality.py [--data ../shared/data/bench/Kodak24] [--threads 2]
                                          [--speed-mp 24] [--no-reference]

Protocols (CPSNR over R, G and B together, mean over the 24 images, a 5-pixel border excluded):
  srgb    the literature's: the 8-bit sRGB values / 255 are mosaicked directly (RGGB),
          demosaicked, clipped to [0, 1] and compared with the original.
  linear  the sRGB values are decoded to linear light (sRGB EOTF) and mosaicked there, in each
          of the four Bayer orders; the result is encoded back to sRGB (clipped to [0, 1]) and
          compared with the original; the four orders are averaged. This is what a raw
          pipeline sees: ispcli's methods expect linear, white-balanced input.
Speed: megapixels per second on a 6000x4000 synthetic mosaic (smoothed noise; --speed-mp scales
it), median of 3 runs after one warm-up, torch.set_num_threads(--threads); ispcli's methods are
timed as the pipeline calls them (float32 tensor in and out), the reference implementations
(numpy, float64) on the same mosaic as a numpy array.
Run by hand; nothing here runs in CI.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
from ispcli.isp import demosaic as dm  # noqa: E402

ORDERS = {"RGGB": [[0, 1], [1, 2]], "BGGR": [[2, 1], [1, 0]],
          "GRBG": [[1, 0], [2, 1]], "GBRG": [[1, 2], [0, 1]]}
BORDER = 5


def srgb_to_linear(v: np.ndarray) -> np.ndarray:
    return np.where(v <= 0.04045, v / 12.92, ((v + 0.055) / 1.055) ** 2.4)


def linear_to_srgb(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return np.where(x <= 0.0031308, 12.92 * x, 1.055 * x ** (1 / 2.4) - 0.055)


def mosaic(rgb: np.ndarray, order: str) -> np.ndarray:
    """(H, W, 3) -> (H, W): pixel (y, x) keeps colour ORDERS[order][y % 2][x % 2]."""
    cfa = np.asarray(ORDERS[order])
    h, w, _ = rgb.shape
    idx = cfa[np.arange(h)[:, None] % 2, np.arange(w)[None, :] % 2]
    return np.take_along_axis(rgb, idx[..., None], axis=2)[..., 0]


def cpsnr(a: np.ndarray, b: np.ndarray) -> float:
    d = (a - b)[BORDER:-BORDER, BORDER:-BORDER]
    return float(10 * np.log10(1.0 / np.mean(d ** 2)))


def ours(name: str):
    """(numpy runner for the quality loop, timed call on a torch tensor as the pipeline makes it)."""
    fn = dm.METHODS[name]

    def run(cfa_plane: np.ndarray, order: str) -> np.ndarray:
        x = torch.from_numpy(np.ascontiguousarray(cfa_plane, dtype=np.float32))[None, None]
        return fn(x, ORDERS[order])[0].permute(1, 2, 0).double().numpy()

    def timed(plane: np.ndarray):
        x = torch.from_numpy(plane)[None, None]
        return lambda: fn(x, ORDERS["RGGB"])
    return run, timed


def reference(name: str):
    """The same pair for colour-demosaicing (numpy, float64 in and out)."""
    import colour_demosaicing as cd
    fn = {"Menon2007": cd.demosaicing_CFA_Bayer_Menon2007,
          "Malvar2004": cd.demosaicing_CFA_Bayer_Malvar2004}[name]
    run = lambda cfa_plane, order: fn(cfa_plane.astype(np.float64), order)  # noqa: E731
    return run, lambda plane: (lambda: run(plane, "RGGB"))


def quality(run, images: list[np.ndarray]) -> dict[str, float]:
    srgb = [cpsnr(np.clip(run(mosaic(img, "RGGB"), "RGGB"), 0, 1), img) for img in images]
    linear = [cpsnr(linear_to_srgb(run(mosaic(srgb_to_linear(img), o), o)), img)
              for img in images for o in ORDERS]
    return {"srgb": statistics.mean(srgb), "linear": statistics.mean(linear)}


def speed(call, pixels: int) -> float:
    """Megapixels per second: median of 3 timed calls after one warm-up."""
    call()
    times = []
    for _ in range(3):
        t0 = time.perf_counter()
        call()
        times.append(time.perf_counter() - t0)
    return pixels / statistics.median(times) / 1e6


def synthetic_plane(megapixels: float) -> np.ndarray:
    w = int(round((megapixels * 1e6 * 1.5) ** 0.5 / 2)) * 2
    h = int(round(w / 1.5 / 2)) * 2
    g = torch.Generator().manual_seed(0)
    coarse = torch.rand(1, 1, h // 8 + 3, w // 8 + 3, generator=g)
    plane = torch.nn.functional.interpolate(coarse, size=(h, w), mode="bilinear", align_corners=False)
    return plane[0, 0].clamp(0, 1).numpy().astype(np.float32)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=REPO.parent / "shared/data/bench/Kodak24")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--speed-mp", type=float, default=24.0)
    ap.add_argument("--no-reference", action="store_true", help="skip colour-demosaicing")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore")     # colour warns about matplotlib at import

    import imageio.v3 as iio
    files = sorted(args.data.glob("*.png"))
    if not files:
        sys.exit(f"no PNG images in {args.data}")
    images = [iio.imread(f)[..., :3].astype(np.float64) / 255 for f in files]
    plane = synthetic_plane(args.speed_mp)

    methods = {name: ours(name) for name in dm.METHODS}
    if not args.no_reference:
        methods.update({f"colour:{n}": reference(n) for n in ("Menon2007", "Malvar2004")})
    print(f"{len(images)} images from {args.data}; speed on {plane.shape[1]}x{plane.shape[0]}, "
          f"{args.threads} threads\n")
    print(f"{'method':18s} {'srgb dB':>8s} {'linear dB':>10s} {'MP/s':>7s} {'s/frame':>8s}")
    for name, (run, timed) in methods.items():
        q = quality(run, images)
        mps = speed(timed(plane), plane.size)
        print(f"{name:18s} {q['srgb']:8.2f} {q['linear']:10.2f} {mps:7.1f} {plane.size / mps / 1e6:8.2f}",
              flush=True)
    print("\nsrgb: RGGB mosaic of the sRGB values. linear: mosaic in linear light, 4 orders, CPSNR "
          "in sRGB.\nispcli's default encodes its (linear) input with a cube root before "
          "interpolating, so on\nthe srgb protocol it is fed already-encoded values: the "
          "linear protocol is its real test.")


if __name__ == "__main__":
    main()
