"""A benchmark folder: its images in a fixed order, loaded as float RGB, and the seed of each.

Images are the folder's own files (no sub-folders), sorted by name, so `--limit N` always
means the same N images. Each image's degradation is drawn from a generator seeded by the
run's seed and the image's index alone: any prefix of the folder scores the same per image.

The benchmark sets live next to a checkout, in ../shared/data/bench (`default_bench`); paired
sets (`enhance --pairs`) are scored on exactly the pairs `train` held out (`held_out_pairs`).
"""

from __future__ import annotations

from pathlib import Path

BENCH = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "bench"
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


def portable(folder) -> str:
    """How results name a folder: `../shared/...` for the shared data beside a checkout (never
    this machine's absolute path), anything else as it was given."""
    try:
        return "../shared/" + Path(folder).resolve().relative_to(BENCH.parents[1]).as_posix()
    except ValueError:
        return str(folder)


def default_bench(name: str = "Kodak24") -> Path:
    """A benchmark set of ../shared/data/bench next to this checkout (absent in a wheel)."""
    return BENCH / name


def default_kernels() -> Path:
    """The benchmark blur kernels: Levin et al.'s 8 and KAIR's 12 (`*.npy`)."""
    return BENCH / "blur_kernels"


def held_out_pairs(inputs: str | Path, targets: str | Path, count: int) -> list[str]:
    """The names of the pairs `train --pairs INPUTS TARGETS --hold-out COUNT` kept out of
    training: the same rule (`train.data.held_out`), so eval scores exactly those."""
    from ispcli.train import data

    for option, folder in (("input", inputs), ("target", targets)):
        if not Path(folder).is_dir():
            raise DataError(f"--pairs: {option} folder {folder}: no such folder")
    try:
        return data.held_out(data.pair_names(inputs, targets), count)
    except data.DataError as exc:
        raise DataError(f"--pairs: {exc}") from None


def pairs_name(inputs: str | Path, targets: str | Path) -> str:
    """What paired scores are recorded under: the folder holding both (e.g.
    enhance_lowlight_pairs for its low/ and high/), else the input folder's name."""
    a, b = Path(inputs).resolve(), Path(targets).resolve()
    return a.parent.name if a.parent == b.parent else a.name


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
