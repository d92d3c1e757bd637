"""`Recipe`: every setting of a run in one frozen, versioned dataclass.

A recipe is what makes an output reproducible: it is loaded from TOML/JSON (`--recipe`),
overridden by flags, and written next to the output (`--sidecar`). Settings layer in one
order: defaults < recipe file < command-line flags.
"""

from __future__ import annotations

import dataclasses
import json
import re
from dataclasses import dataclass, field, fields
from enum import Enum
from pathlib import Path
from typing import Any

RECIPE_VERSION = 1


class RecipeError(ValueError):
    """A recipe file or option value that cannot be used; the message says which and why."""


class WhiteBalanceMode(str, Enum):
    camera = "camera"
    auto = "auto"
    daylight = "daylight"


class Highlights(str, Enum):
    clip = "clip"
    blend = "blend"
    reconstruct = "reconstruct"


class Look(str, Enum):
    neutral = "neutral"
    default = "default"


class OutputFormat(str, Enum):
    jpg = "jpg"
    png = "png"
    tif = "tif"


COLOR_SPACE_NAMES = ("srgb", "display-p3", "adobe-rgb", "prophoto", "rec2020", "linear-srgb")
DEMOSAIC_NAMES = ("default", "menon", "malvar", "bilinear")
DEVICE_NAMES = ("auto", "cpu", "cuda", "mps")
DEFAULT_NAME_TEMPLATE = "{stem}"


@dataclass(frozen=True)
class Recipe:
    """All settings of a develop run. Field defaults are the documented defaults."""

    # white balance: 'camera', 'auto', 'daylight' or explicit 'R,G,B' multipliers
    wb: str = "camera"
    highlights: str = Highlights.blend.value
    demosaic: str = "default"
    color_space: str = "srgb"
    exposure: float = 0.0
    auto_exposure: bool = False
    look: str = Look.default.value
    # learned stages: develop's raw-mosaic denoiser ('none' or a model name); the model of a
    # one-stage command (denoise, demosaic, enhance, dehaze, deblur); the noise σ in 0-255
    # units (-1: estimate it)
    denoise: str = "none"
    model: str = ""
    sigma: float = -1.0
    # develop's restoration and look stages ('none' or a model name; dehaze also 'dcp', the
    # dark channel prior) and how much of the enhancement to keep (0: none, 1: all)
    deblur: str = "none"
    dehaze: str = "none"
    enhance: str = "none"
    strength: float = 1.0
    precision: str = "auto"
    # output
    format: str = OutputFormat.jpg.value
    bits: int = 8
    quality: int = 92
    name: str = DEFAULT_NAME_TEMPLATE
    gps: bool = True
    # execution (does not change pixels, kept for the record)
    tile: int = 0
    device: str = "auto"
    compile: bool = False            # learned stages through torch.compile
    version: int = RECIPE_VERSION
    extra: dict = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        validate(self)

    def replace(self, **changes: Any) -> Recipe:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        d = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "extra"}
        return d

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @property
    def extension(self) -> str:
        """The output suffix; '' for format 'same' (each output keeps its input's suffix)."""
        return {"jpg": ".jpg", "png": ".png", "tif": ".tif", "same": ""}[self.format]


_WB_TRIPLET = re.compile(r"^\s*[0-9.eE+-]+\s*,\s*[0-9.eE+-]+\s*,\s*[0-9.eE+-]+\s*$")


def parse_wb(value: str) -> tuple[str, tuple[float, float, float] | None]:
    """Split a `--wb` value into its mode and, for 'R,G,B', the multipliers."""
    v = value.strip().lower()
    if v in {m.value for m in WhiteBalanceMode}:
        return v, None
    if _WB_TRIPLET.match(v):
        r, g, b = (float(x) for x in v.split(","))
        if min(r, g, b) <= 0:
            raise RecipeError(f"--wb {value!r}: multipliers must be positive")
        return "custom", (r, g, b)
    raise RecipeError(f"--wb {value!r}: expected camera, auto, daylight or R,G,B (e.g. 2.0,1,1.5)")


def validate(r: Recipe) -> None:
    """Refuse values no run could use, with the option's name in the message."""
    parse_wb(r.wb)

    def one_of(opt: str, value: Any, allowed) -> None:
        if value not in allowed:
            raise RecipeError(f"{opt} {value!r}: expected one of {', '.join(map(str, allowed))}")

    one_of("--highlights", r.highlights, [h.value for h in Highlights])
    one_of("--color-space", r.color_space, COLOR_SPACE_NAMES)
    one_of("--look", r.look, [v.value for v in Look])
    one_of("--format", r.format, [f.value for f in OutputFormat] + ["same"])
    one_of("--precision", r.precision, ("auto", "fp32", "fp16", "bf16"))
    if r.sigma != -1.0 and not 0.0 <= r.sigma <= 255.0:
        raise RecipeError(f"--sigma {r.sigma:g}: expected a noise level from 0 to 255 (0-255 units)")
    for opt, value in (("--denoise", r.denoise), ("--deblur", r.deblur), ("--enhance", r.enhance)):
        if not value.strip():
            raise RecipeError(f"{opt}: expected a model name or none")
    if not r.dehaze.strip():
        raise RecipeError("--dehaze: expected a model name, dcp or none")
    if not 0.0 <= r.strength <= 1.0:
        raise RecipeError(f"--strength {r.strength:g}: expected 0..1 (0 leaves the image as it is, "
                          "1 applies the whole enhancement)")
    one_of("--device", r.device.split(":")[0], DEVICE_NAMES)
    if not (r.demosaic in DEMOSAIC_NAMES or r.demosaic.startswith("net:")):
        raise RecipeError(f"--demosaic {r.demosaic!r}: expected one of {', '.join(DEMOSAIC_NAMES)}")
    if r.bits not in (0, 8, 16, 32):
        raise RecipeError(f"--bits {r.bits}: expected 8 or 16 (or 32 for float TIFF; 0 keeps the input's)")
    if r.format == "jpg" and r.bits not in (0, 8):
        raise RecipeError(f"--bits {r.bits}: JPEG is 8-bit only; use --format png or tif")
    if r.format == "png" and r.bits == 32:
        raise RecipeError("--bits 32: float output needs --format tif")
    if not 1 <= r.quality <= 100:
        raise RecipeError(f"--quality {r.quality}: expected 1..100")
    if not -10.0 <= r.exposure <= 10.0:
        raise RecipeError(f"--exposure {r.exposure}: expected -10..10 EV")
    if r.tile != 0 and r.tile < 64:
        raise RecipeError(f"--tile {r.tile}: expected 0 (auto) or at least 64 pixels")
    if not r.name or r.name.strip() == "":
        raise RecipeError("--name: the template is empty")
    if r.version > RECIPE_VERSION:
        raise RecipeError(f"recipe version {r.version} is newer than this ispcli understands ({RECIPE_VERSION})")


def _migrate(data: dict) -> dict:
    """Bring an older recipe forward; today there is only version 1."""
    data = dict(data)
    data.setdefault("version", RECIPE_VERSION)
    return data


def from_mapping(data: dict, base: Recipe | None = None, source: str = "recipe") -> Recipe:
    """Build a recipe from a mapping (sidecar or TOML), refusing unknown keys by name."""
    data = _migrate(data.get("recipe", data))
    known = {f.name for f in fields(Recipe)} - {"extra"}
    unknown = sorted(set(data) - known)
    if unknown:
        raise RecipeError(f"{source}: unknown setting(s) {', '.join(unknown)}")
    base = base or Recipe()
    values = base.to_dict()
    for key, value in data.items():
        expected = type(values[key])
        if expected is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, expected):
            raise RecipeError(f"{source}: {key} = {value!r} should be {expected.__name__}")
        values[key] = value
    values["version"] = RECIPE_VERSION
    try:
        return Recipe(**values)
    except RecipeError as exc:
        raise RecipeError(f"{source}: {exc}") from None


def load(path: str | Path) -> Recipe:
    """Load a TOML recipe or a JSON sidecar."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise RecipeError(f"{path}: cannot read recipe ({exc.strerror or exc})") from None
    try:
        if path.suffix.lower() == ".json":
            data = json.loads(text)
        else:
            try:
                import tomllib
            except ModuleNotFoundError:  # Python 3.10
                import tomli as tomllib

            data = tomllib.loads(text)
    except (ValueError, json.JSONDecodeError) as exc:
        raise RecipeError(f"{path}: not a valid recipe ({exc})") from None
    if not isinstance(data, dict):
        raise RecipeError(f"{path}: not a valid recipe (expected a table of settings)")
    return from_mapping(data, source=str(path))


def to_toml(recipe: Recipe) -> str:
    import tomli_w

    return tomli_w.dumps(recipe.to_dict())
