"""The one table that fixes the order of stages, with the reason for each position."""

from __future__ import annotations

ORDER: list[tuple[str, str]] = [
    ("levels", "everything after assumes 0 = black and 1 = clipping"),
    ("white_balance", "before demosaic: interpolating balanced channels avoids colour fringes"),
    ("highlight_clip", "clipping must use the balanced ceilings, and precede interpolation"),
    ("raw_denoise", "noise is simplest (per-pixel, signal-dependent) on the raw mosaic"),
    ("demosaic", "turns the mosaic into camera RGB; all RGB stages follow"),
    ("highlight_recovery", "needs camera RGB with the per-channel ceilings still known"),
    ("color", "camera RGB → output primaries; later stages work in a known space"),
    ("deblur", "blur is linear in light: deconvolve before any tone curve"),
    ("dehaze", ("the scattering model holds in linear light; haze was in the scene before the lens "
                "blurred it, so it is undone after deblur")),
    ("exposure", "scene-referred gain before the tone curve compresses anything"),
    ("tone", "tone curve and transfer function: linear light → display values"),
    ("enhance", "learned look adjustments act on the display image"),
    ("denoise", "display-referred denoising (standalone images) runs last"),
]

_INDEX = {name: i for i, (name, _) in enumerate(ORDER)}


def position(stage_name: str) -> int:
    """Index of a stage in the order table; unknown names are refused by name."""
    base = stage_name.split(":")[0]
    if base not in _INDEX:
        raise KeyError(f"stage {stage_name!r} is not in the order table ({', '.join(_INDEX)})")
    return _INDEX[base]
