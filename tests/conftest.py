"""Shared fixtures: paths to real raws, synthetic raws whose truth is known, CLI runners."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
# some test modules import their helpers as `tests.<module>`, which `python -m pytest` allows
# (it puts the working folder on sys.path) and a bare `pytest` did not
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))
SAMPLES = REPO / "samples"
SHARED_DATA = REPO.parent / "shared" / "data"
SHARED_RAWS = SHARED_DATA / "raw"

requires_shared = pytest.mark.skipif(
    not SHARED_RAWS.is_dir(), reason="../shared/data/raw is absent: the real-camera tests need it")


def natural_image(height: int = 192, width: int = 256, seed: int = 0) -> np.ndarray:
    """A photo-like sRGB float image in [0, 1] (a crop of scikit-image's 'coffee')."""
    from skimage import data, transform

    img = data.coffee().astype(np.float32) / 255.0
    rng = np.random.default_rng(seed)
    y = int(rng.integers(0, img.shape[0] - 300))
    x = int(rng.integers(0, img.shape[1] - 400))
    crop = img[y:y + 300, x:x + 400]
    return transform.resize(crop, (height, width), anti_aliasing=True).astype(np.float32)


def synthetic_raw_file(path: Path, srgb: np.ndarray, *, cfa: str = "RGGB", camera: str = "Canon EOS 30D",
                       black: int = 512, white: int = 16383, orientation: int = 1, peak: float = 0.8,
                       linear: bool = False, **dng_kwargs) -> dict:
    """Write a DNG that a real camera with `camera`'s matrix would have recorded of `srgb`.

    The scene's brightest channel lands at `peak` of the sensor range. Returns the truth:
    the camera matrix, the as-shot neutral and the linear sRGB scene.
    """
    import torch

    from ispcli.io.dng import write_dng
    from ispcli.train import unprocess

    xyz_to_cam = unprocess.xyz_camera_matrices()[camera]
    lin = unprocess.srgb_to_linear(torch.from_numpy(srgb).permute(2, 0, 1)[None])
    cam = unprocess.rgb_to_camera(lin, xyz_to_cam)
    neutral = unprocess.camera_neutral(xyz_to_cam)
    cam = cam * (peak / float(cam.max()))
    if linear:
        counts = (black + cam[0].permute(1, 2, 0).numpy() * (white - black)).round().clip(0, 65535)
        data = counts.astype(np.uint16)
    else:
        mos = unprocess.mosaic(cam, cfa)
        data = (black + mos[0, 0].numpy() * (white - black)).round().clip(0, 65535).astype(np.uint16)
    write_dng(path, data, cfa=cfa, black_level=black, white_level=white, color_matrix1=xyz_to_cam.numpy(),
              calibration_illuminant1=21, as_shot_neutral=neutral.numpy(), orientation=orientation,
              make="Canon", model=camera, **dng_kwargs)
    return {"xyz_to_cam": xyz_to_cam.numpy(), "neutral": neutral.numpy(), "linear": lin[0].permute(1, 2, 0).numpy()}


def psnr_after_gain(out_srgb: np.ndarray, truth_srgb: np.ndarray, border: int = 4) -> float:
    """PSNR of two sRGB images after the one global exposure gain (fitted in linear light)
    that best matches them: develop's absolute exposure is a choice, not an error."""
    import torch

    from ispcli.train.unprocess import linear_to_srgb, srgb_to_linear

    a = srgb_to_linear(torch.from_numpy(out_srgb.astype(np.float64)))
    b = srgb_to_linear(torch.from_numpy(truth_srgb.astype(np.float64)))
    if border:
        a, b = a[border:-border, border:-border], b[border:-border, border:-border]
    gain = float((a * b).sum() / (a * a).sum())
    a_s = linear_to_srgb((a * gain).clamp(0, 1)).numpy()
    mse = float(np.mean((a_s - linear_to_srgb(b).numpy()) ** 2))
    return 10 * np.log10(1.0 / max(mse, 1e-12))


def run_cli(*args: str, stdin: str | None = None, cwd: Path | None = None, timeout: float = 300,
            env: dict | None = None) -> subprocess.CompletedProcess:
    """Run `python -m ispcli ARGS` as a user's shell would (fresh process, real exit code)."""
    full_env = {**os.environ, "COLUMNS": "200", **(env or {})}
    return subprocess.run([sys.executable, "-m", "ispcli", *args], input=stdin, capture_output=True,
                          text=True, cwd=cwd, timeout=timeout, env=full_env, check=False)


@pytest.fixture
def cli():
    return run_cli


SHIPPED_WEIGHTS = REPO / "weights"


def make_tiny_model(directory: Path, name: str, task: str) -> Path:
    """An untrained, small model of `task`'s family saved through the real weights code.

    For tests of the machinery (tiling, I/O, manifests); quality tests use the shipped weights.
    """
    import torch

    from ispcli.models import registry, weights
    from ispcli.train import tasks

    spec = tasks.get(task)
    args = {**spec.args, "channels": [8, 16], "blocks": 1}
    torch.manual_seed(0)
    model = registry.build(spec.arch, **args)
    entry = weights.Entry(name=name, task=task, domain=spec.domain, arch=spec.arch, args=args,
                          file=f"{name}.pt", sha256="", parameters=0, training={"note": "untrained test model"})
    weights.save(model, entry, directory)
    return Path(directory)


@pytest.fixture
def tiny_weights(tmp_path, monkeypatch):
    """A weights folder with an untrained model per task (tiny-denoise, tiny-demosaic,
    tiny-raw-denoise, tiny-dehaze, tiny-deblur, tiny-enhance), selected through ISPCLI_WEIGHTS
    for this process and its children."""
    directory = tmp_path / "weights"
    for task in ("denoise", "demosaic", "raw-denoise", "dehaze", "deblur", "enhance"):
        make_tiny_model(directory, f"tiny-{task}", task)
    monkeypatch.setenv("ISPCLI_WEIGHTS", str(directory))
    return directory


@pytest.fixture
def disk_full(monkeypatch):
    """Every output write fills the disk halfway through (ENOSPC), as a real full disk does."""
    import errno

    from ispcli.io import images

    real_fdopen = os.fdopen

    class Full:
        def __init__(self, fh):
            self.fh = fh

        def __getattr__(self, name):  # seek, tell, flush... as the real file
            return getattr(self.fh, name)

        def fileno(self):  # no descriptor, so that encoders (Pillow) write through write()
            raise io.UnsupportedOperation("fileno")

        def __enter__(self):
            return self

        def __exit__(self, *a):
            self.fh.close()

        def write(self, data):
            self.fh.write(data[: len(data) // 2])
            raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(images.os, "fdopen", lambda fd, mode: Full(real_fdopen(fd, mode)))
