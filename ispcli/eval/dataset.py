"""A benchmark folder: its images in a fixed order, loaded as float RGB, and the seed of each.

Images are the folder's own files (no sub-folders), sorted by name, so `--limit N` always
means the same N images. Each image's degradation is drawn from a generator seeded by the
run's seed and the image's index alone: any prefix of the folder scores the same per image.
"""

from __future__ import annotations

from pathlib import Path

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".ppm", ".pgm", ".webp")


class DataError(ValueError):
    """A benchmark folder that is missing, empty or holds an unreadable image."""


def find_images(folder: str | Path, limit: int | None = None) -> list[Path]:
    """The images directly in `folder`, sorted by name; the first `limit` of them."""
    root = Path(folder)
    if not root.exists():
        raise DataError(f"--data {folder}: no such folder")
    if not root.is_dir():
        raise DataError(f"--data {folder}: not a folder")
    files = sorted(p for p in root.iterdir()
                   if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS and not p.name.startswith("."))
    if not files:
        raise DataError(f"--data {folder}: no images in this folder (looked for {', '.join(IMAGE_EXTENSIONS)})")
    return files[:limit] if limit else files


def benchmark_name(folder: str | Path) -> str:
    """The name scores are recorded under: the folder's own name (e.g. CBSD68)."""
    return Path(folder).resolve().name


def load_rgb(path: Path):
    """(H, W, 3) float32 sRGB in [0, 1]: grey is repeated to three channels, alpha dropped,
    palette images expanded, 16-bit scaled by 65535."""
    import numpy as np
    from PIL import Image

    from ispcli.io.errors import FileError
    from ispcli.io.images import read_image

    try:
        with Image.open(path) as im:
            mode = im.mode
            if mode in ("P", "PA", "1", "CMYK", "YCbCr", "LAB", "HSV"):
                arr = np.asarray(im.convert("RGB"))
            else:
                arr = None
        if arr is None:
            arr, _ = read_image(path)
    except FileError as exc:
        raise DataError(str(exc)) from None
    except Exception as exc:  # noqa: BLE001 - PIL raises many kinds for a bad file
        raise DataError(f"{path}: not a readable image ({exc})") from None
    if arr.ndim == 2:
        arr = arr[..., None]
    if arr.dtype == np.uint8:
        img = arr.astype(np.float32) / 255.0
    elif arr.dtype == np.uint16:
        img = arr.astype(np.float32) / 65535.0
    elif arr.dtype.kind == "f":
        img = arr.astype(np.float32)
    else:
        raise DataError(f"{path}: unsupported pixel type {arr.dtype}")
    channels = img.shape[2]
    if channels in (1, 2):                      # grey, grey + alpha
        img = np.repeat(img[..., :1], 3, axis=2)
    elif channels >= 3:
        img = img[..., :3]
    if min(img.shape[:2]) < 16:
        raise DataError(f"{path}: {img.shape[1]}×{img.shape[0]} is too small to score (at least 16×16)")
    return np.ascontiguousarray(img)


def image_seed(seed: int, index: int) -> int:
    """A well-mixed 63-bit seed from the run's seed and the image's index."""
    import numpy as np

    state = np.random.SeedSequence([int(seed), int(index)]).generate_state(2, np.uint32)
    return int(state[0]) << 31 | int(state[1]) >> 1


def generator(seed: int, index: int):
    """A fresh CPU generator for image `index`: the same draws whatever else is evaluated."""
    import torch

    return torch.Generator().manual_seed(image_seed(seed, index))
