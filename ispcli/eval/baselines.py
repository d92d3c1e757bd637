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
"""

from __future__ import annotations

import torch

from ispcli.pipeline.stage import Domain, Stage

NLM_H_PER_SIGMA = 0.65      # h and hColor, per unit of σ in 0–255
NLM_TEMPLATE = 5            # patch size
NLM_SEARCH = 21             # search window
RGGB = [[0, 1], [1, 2]]
DEMOSAIC_METHODS = ("bilinear", "malvar", "menon", "default")


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
