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


def load_images(folders, patch: int, *, jpeg_downscale: int = 1,
                min_count: int = 1) -> tuple[list[np.ndarray], list[Path]]:
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


def load_pairs(pairs, patch: int, hold_out: int = 0) -> tuple[list[np.ndarray], list[str], list[str]]:
    """Paired images (input folder, target folder, matched by file name) as (H, W, 6) arrays:
    input RGB then target RGB. Every k-th pair in name order is held out (`hold_out` of them),
    the same rule `eval enhance --pairs` uses to pick its test pairs.
    Returns (arrays, names used, names held out)."""
    arrays, used = [], []
    held: list[str] = []
    for inputs, targets in pairs:
        names = pair_names(inputs, targets)
        test = set(held_out(names, hold_out))
        held += [n for n in names if n in test]
        for name in names:
            if name in test:
                continue
            a, b = _load(Path(inputs) / name, 1), _load(Path(targets) / name, 1)
            if a.shape != b.shape:
                raise DataError(f"{Path(inputs) / name}: {a.shape[1]}x{a.shape[0]} pixels but its target is "
                                f"{b.shape[1]}x{b.shape[0]}")
            if min(a.shape[:2]) >= patch:
                arrays.append(np.concatenate([a, b], axis=2))
                used.append(name)
    return arrays, used, held


def pair_names(inputs, targets) -> list[str]:
    """File names present in both folders; a name in only one of them is an error."""
    a = {p.name for p in list_images(inputs)}
    b = {p.name for p in list_images(targets)}
    if a != b:
        odd = sorted(a ^ b)
        raise DataError(f"{inputs} and {targets}: {len(odd)} file(s) without a partner "
                        f"({', '.join(odd[:3])}{', …' if len(odd) > 3 else ''})")
    return sorted(a, key=lambda n: (len(n), n))


def held_out(names: list[str], count: int) -> list[str]:
    """Every k-th name (k = len // count), starting with the first: spread over the set."""
    if count <= 0:
        return []
    if count >= len(names):
        raise DataError(f"cannot hold out {count} of {len(names)} pairs")
    step = len(names) // count
    return [names[i * step] for i in range(count)]


def _fill(crop: torch.Tensor, channels: int) -> torch.Tensor:
    """A plain RGB image where the task expects (input, target) pairs: input = target."""
    return crop.repeat(channels // crop.shape[0], 1, 1) if crop.shape[0] < channels else crop


class PatchSampler:
    """Random crops with random flips and 90° turns, from a generator whose state checkpoints.

    With `scenes` > 0 that fraction of the samples is a whole scene instead of a crop: the
    largest square of the photo, shrunk to the patch size. A model with a global branch (enhance)
    meets whole pictures in use; crops alone teach it the statistics of a fragment, where a
    dark wall and an underexposed photo look alike."""

    def __init__(self, images: list[np.ndarray], patch: int, seed: int, channels: int = 3, scenes: float = 0.0):
        self.images, self.patch, self.channels, self.scenes = images, patch, channels, scenes
        self.generator = torch.Generator().manual_seed(seed)

    def batch(self, size: int) -> torch.Tensor:
        g, p = self.generator, self.patch
        out = torch.empty(size, self.channels, p, p)
        for i in range(size):
            img = self.images[int(torch.randint(len(self.images), (1,), generator=g))]
            scene = self.scenes > 0 and float(torch.rand(1, generator=g)) < self.scenes
            side = min(img.shape[:2]) if scene else p
            y = int(torch.randint(img.shape[0] - side + 1, (1,), generator=g))
            x = int(torch.randint(img.shape[1] - side + 1, (1,), generator=g))
            crop = torch.from_numpy(img[y:y + side, x:x + side]).permute(2, 0, 1).float() / 255
            if side != p:
                crop = torch.nn.functional.interpolate(crop[None], size=(p, p), mode="bilinear",
                                                       antialias=True, align_corners=False)[0].clamp(0, 1)
            crop = _fill(crop, self.channels)
            turn, flip = torch.randint(4, (1,), generator=g).item(), torch.randint(2, (1,), generator=g).item()
            crop = torch.rot90(crop, turn, (1, 2))
            out[i] = crop.flip(2) if flip else crop
        return out

    def state(self) -> torch.Tensor:
        return self.generator.get_state()

    def restore(self, state: torch.Tensor) -> None:
        self.generator.set_state(state)


def centre_crops(images: list[np.ndarray], size: int, channels: int = 3) -> list[torch.Tensor]:
    """Fixed validation crops (at most size×size, cut to a multiple of 16)."""
    crops = []
    for img in images:
        h = min(size, img.shape[0]) // 16 * 16
        w = min(size, img.shape[1]) // 16 * 16
        y, x = (img.shape[0] - h) // 2, (img.shape[1] - w) // 2
        crop = torch.from_numpy(img[y:y + h, x:x + w]).permute(2, 0, 1).float() / 255
        crops.append(_fill(crop, channels).unsqueeze(0))
    return crops
