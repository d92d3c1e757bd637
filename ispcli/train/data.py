"""Clean training images and the patches sampled from them.

Images are held in memory as uint8 (a few hundred BSDS-sized images are a few hundred MB) and
patches are cut in the main process from one seeded generator, so a run and its resumption
see exactly the same patches.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp"}


class DataError(ValueError):
    """A training folder that cannot be used (missing, empty, too few or too small images)."""


def list_images(folder) -> list[Path]:
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"{folder}: not a folder")
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if not files:
        raise DataError(f"{folder}: no images (looked for {', '.join(sorted(IMAGE_SUFFIXES))})")
    return files


def _load(path: Path, jpeg_downscale: int) -> np.ndarray:
    from PIL import Image

    try:
        with Image.open(path) as im:
            im = im.convert("RGB")
            # JPEG's 4:2:0 chroma is smoother than real scenes; halving its size hides that.
            if jpeg_downscale > 1 and path.suffix.lower() in {".jpg", ".jpeg"}:
                im = im.reduce(jpeg_downscale)
            return np.asarray(im, dtype=np.uint8).copy()
    except Exception as exc:  # noqa: BLE001 - name the file, whatever Pillow raised
        raise DataError(f"{path}: cannot read image ({exc})") from None


def load_images(folders, patch: int, *, jpeg_downscale: int = 1, min_count: int = 1) -> tuple[list[np.ndarray], list[Path]]:
    files = [f for folder in folders for f in list_images(folder)]
    images, kept = [], []
    for f in files:
        a = _load(f, jpeg_downscale)
        if min(a.shape[:2]) >= patch:
            images.append(a)
            kept.append(f)
    if len(images) < min_count:
        raise DataError(f"{', '.join(map(str, folders))}: {len(images)} usable image(s) of at least "
                        f"{patch}×{patch} pixels, need at least {min_count} (the batch size)")
    return images, kept


class PatchSampler:
    """Random crops with random flips and 90° turns, from a generator whose state checkpoints."""

    def __init__(self, images: list[np.ndarray], patch: int, seed: int):
        self.images, self.patch = images, patch
        self.generator = torch.Generator().manual_seed(seed)

    def batch(self, size: int) -> torch.Tensor:
        g, p = self.generator, self.patch
        out = torch.empty(size, 3, p, p)
        for i in range(size):
            img = self.images[int(torch.randint(len(self.images), (1,), generator=g))]
            y = int(torch.randint(img.shape[0] - p + 1, (1,), generator=g))
            x = int(torch.randint(img.shape[1] - p + 1, (1,), generator=g))
            crop = torch.from_numpy(img[y:y + p, x:x + p]).permute(2, 0, 1).float() / 255
            turn, flip = torch.randint(4, (1,), generator=g).item(), torch.randint(2, (1,), generator=g).item()
            crop = torch.rot90(crop, turn, (1, 2))
            out[i] = crop.flip(2) if flip else crop
        return out

    def state(self) -> torch.Tensor:
        return self.generator.get_state()

    def restore(self, state: torch.Tensor) -> None:
        self.generator.set_state(state)


def centre_crops(images: list[np.ndarray], size: int) -> list[torch.Tensor]:
    """Fixed validation crops (at most size×size, cut to a multiple of 16)."""
    crops = []
    for img in images:
        h = min(size, img.shape[0]) // 16 * 16
        w = min(size, img.shape[1]) // 16 * 16
        y, x = (img.shape[0] - h) // 2, (img.shape[1] - w) // 2
        crops.append(torch.from_numpy(img[y:y + h, x:x + w]).permute(2, 0, 1).float().unsqueeze(0) / 255)
    return crops
