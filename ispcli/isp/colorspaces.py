"""Output colour spaces: primaries, white points, transfer curves and XYZ matrices.

torch is imported inside `encode`/`decode` only, so that `ispcli.io.icc` (and anything on the
CLI's fast path) can read the colour-space definitions without paying for torch.

Conventions:
* XYZ is always relative to a D65 white with Y = 1. Spaces with another native white (ProPhoto,
  D50) get a Bradford adaptation folded into their matrices, so D65 XYZ maps to RGB (1, 1, 1)
  everywhere and a neutral stays neutral whichever space it is written to.
* Curves are odd-symmetric (negative light keeps its sign) and extend past 1 with the same
  formula, so out-of-gamut and super-white values survive until the caller decides to clamp.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    import torch

__all__ = [
    "ColorSpace", "COLOR_SPACES", "get", "names",
    "D65", "D50", "BRADFORD", "bradford", "xy_to_xyz", "XYZ_D65_TO_D50", "XYZ_D50_TO_D65",
    "rgb_to_xyz_matrix", "xyz_to_rgb_matrix", "rgb_to_rgb_matrix", "SRGB_TO_XYZ", "XYZ_TO_SRGB",
    "encode", "decode", "encode_np", "decode_np",
]

D65: tuple[float, float] = (0.3127, 0.3290)
D50: tuple[float, float] = (0.3457, 0.3585)  # ROMM / ISO 22028-2 value, as colour-science uses

BRADFORD = np.array([
    [0.8951, 0.2664, -0.1614],
    [-0.7502, 1.7135, 0.0367],
    [0.0389, -0.0685, 1.0296],
])


@dataclass(frozen=True)
class ColorSpace:
    """An RGB output space.

    The curve is the generic "linear toe + offset power" family, which covers every space here:
        encode(L) = slope * L                            for L <= threshold
                  = alpha * L ** (1 / gamma) - (alpha - 1)  otherwise
    `transfer` names the family member for humans and for the ICC writer.
    """

    name: str
    description: str
    primaries: tuple[tuple[float, float], tuple[float, float], tuple[float, float]]
    white: tuple[float, float]
    transfer: str  # "srgb" | "gamma" | "romm" | "bt2020" | "linear"
    gamma: float = 1.0  # decoding exponent
    alpha: float = 1.0
    slope: float = 0.0
    threshold: float = 0.0  # in linear light

    @property
    def is_linear(self) -> bool:
        return self.transfer == "linear"


_REC709 = ((0.64, 0.33), (0.30, 0.60), (0.15, 0.06))
_SRGB_CURVE = dict(transfer="srgb", gamma=2.4, alpha=1.055, slope=12.92, threshold=0.0031308)

COLOR_SPACES: dict[str, ColorSpace] = {cs.name: cs for cs in (
    ColorSpace("srgb", "sRGB IEC61966-2.1", _REC709, D65, **_SRGB_CURVE),
    ColorSpace("display-p3", "Display P3",
               ((0.680, 0.320), (0.265, 0.690), (0.150, 0.060)), D65, **_SRGB_CURVE),
    # 563/256 is Adobe's own rounding of 2.2; it is exact in the ICC u8Fixed8 gamma encoding.
    ColorSpace("adobe-rgb", "Adobe RGB (1998) compatible",
               ((0.64, 0.33), (0.21, 0.71), (0.15, 0.06)), D65,
               transfer="gamma", gamma=563 / 256),
    # ROMM: Et = 16 ** (1.8 / (1 - 1.8)) = 1/512, where 16 * Et == Et ** (1/1.8) == 1/32 exactly.
    ColorSpace("prophoto", "ProPhoto RGB (ROMM)",
               ((0.7347, 0.2653), (0.1596, 0.8404), (0.0366, 0.0001)), D50,
               transfer="romm", gamma=1.8, slope=16.0, threshold=1 / 512),
    # BT.2020 OETF with the 12-bit-system constants (alpha 1.0993, beta 0.0181): the more precise
    # of the two published pairs; the ICC profile encodes the very same curve.
    ColorSpace("rec2020", "Rec.2020 (ITU-R BT.2020)",
               ((0.708, 0.292), (0.170, 0.797), (0.131, 0.046)), D65,
               transfer="bt2020", gamma=1 / 0.45, alpha=1.0993, slope=4.5, threshold=0.0181),
    ColorSpace("linear-srgb", "Linear sRGB (Rec.709 primaries, gamma 1.0)", _REC709, D65,
               transfer="linear"),
)}


def names() -> list[str]:
    return list(COLOR_SPACES)


def get(name: str | ColorSpace) -> ColorSpace:
    if isinstance(name, ColorSpace):
        return name
    try:
        return COLOR_SPACES[name.lower()]
    except (KeyError, AttributeError):
        raise ValueError(
            f"unknown colour space {name!r}; known: {', '.join(COLOR_SPACES)}") from None


# ----------------------------------------------------------------------------- matrices

def xy_to_xyz(xy) -> np.ndarray:
    """Chromaticity (x, y) -> XYZ with Y = 1."""
    x, y = float(xy[0]), float(xy[1])
    return np.array([x / y, 1.0, (1.0 - x - y) / y])


def _as_xyz(white) -> np.ndarray:
    w = np.asarray(white, dtype=np.float64)
    return xy_to_xyz(w) if w.shape == (2,) else w.reshape(3)


def bradford(src, dst) -> np.ndarray:
    """Bradford (von Kries in the Bradford cone space) adaptation matrix mapping XYZ seen under
    `src` white to XYZ under `dst` white. Whites are xy pairs or XYZ triples; the triple form
    lets the ICC writer hit the PCS D50 (0.9642, 1, 0.8249) exactly."""
    s, d = BRADFORD @ _as_xyz(src), BRADFORD @ _as_xyz(dst)
    return np.linalg.solve(BRADFORD, np.diag(d / s) @ BRADFORD)


def _native_rgb_to_xyz(cs: ColorSpace) -> np.ndarray:
    """Normalised primary matrix: RGB -> XYZ relative to the space's own white."""
    p = np.stack([xy_to_xyz(xy) for xy in cs.primaries], axis=1)  # columns: R, G, B at Y = 1
    scale = np.linalg.solve(p, xy_to_xyz(cs.white))
    return p * scale


def rgb_to_xyz_matrix(space: str | ColorSpace) -> np.ndarray:
    """(3, 3) float64: linear RGB -> XYZ (D65 white, Y = 1)."""
    cs = get(space)
    m = _native_rgb_to_xyz(cs)
    if cs.white != D65:
        m = bradford(cs.white, D65) @ m
    return m


def xyz_to_rgb_matrix(space: str | ColorSpace) -> np.ndarray:
    """(3, 3) float64: XYZ (D65 white, Y = 1) -> linear RGB; D65 white maps to (1, 1, 1)."""
    return np.linalg.inv(rgb_to_xyz_matrix(space))


def rgb_to_rgb_matrix(src: str | ColorSpace, dst: str | ColorSpace) -> np.ndarray:
    """(3, 3) float64: linear `src` RGB -> linear `dst` RGB (white-preserving)."""
    return xyz_to_rgb_matrix(dst) @ rgb_to_xyz_matrix(src)


XYZ_D65_TO_D50 = bradford(D65, D50)
XYZ_D50_TO_D65 = bradford(D50, D65)
SRGB_TO_XYZ = rgb_to_xyz_matrix("srgb")
XYZ_TO_SRGB = xyz_to_rgb_matrix("srgb")


# ----------------------------------------------------------------------------- curves

# Keeps pow() off exact zero in the branch torch.where discards, whose backward would
# otherwise be 0 * inf = NaN.
_POW_FLOOR = 1e-30


def encode_np(x, space: str | ColorSpace) -> np.ndarray:
    """numpy (float64) twin of `encode`, for table building and tests."""
    cs = get(space)
    x = np.asarray(x, dtype=np.float64)
    if cs.is_linear:
        return x.copy()
    a = np.abs(x)
    floor = max(cs.threshold, _POW_FLOOR)
    pw = cs.alpha * np.maximum(a, floor) ** (1.0 / cs.gamma) - (cs.alpha - 1.0)
    return np.copysign(np.where(a <= cs.threshold, cs.slope * a, pw), x)


def decode_np(y, space: str | ColorSpace) -> np.ndarray:
    """numpy (float64) twin of `decode`."""
    cs = get(space)
    y = np.asarray(y, dtype=np.float64)
    if cs.is_linear:
        return y.copy()
    a = np.abs(y)
    knee = cs.slope * cs.threshold
    base = (np.maximum(a, max(knee, _POW_FLOOR)) + (cs.alpha - 1.0)) / cs.alpha
    lin = a / cs.slope if cs.slope else np.zeros_like(a)
    return np.copysign(np.where(a <= knee, lin, base ** cs.gamma), y)


def _float(x) -> torch.Tensor:
    import torch

    x = torch.as_tensor(x)
    # float64 stays float64 (tests, offline tools); everything else computes in float32 because
    # half precision cannot resolve the sRGB toe.
    return x if x.dtype == torch.float64 else x.to(torch.float32)


def encode(x, space: str | ColorSpace, *, nonnegative: bool = False) -> torch.Tensor:
    """Linear light -> encoded signal. Any shape, any device; float32 out (float64 kept).

    Negative values are mirrored (sign(x) * f(|x|)), values above 1 follow the same power law;
    nothing is clamped here. `nonnegative=True` promises x >= 0 (after a clamp, say) and skips
    the sign handling: the output stage runs this on every pixel.
    """
    import torch

    cs = get(space)
    x = _float(x)
    if cs.is_linear:
        return x.clone()
    if nonnegative:
        return _encode_magnitude(x, cs)
    return torch.copysign(_encode_magnitude(x.abs(), cs), x)


def _encode_magnitude(a, cs: ColorSpace):
    """`encode` of a >= 0. pow() and torch.where are the output stage's slowest kernels on a
    CPU (3x and ~20x a clamp): exp2(log2) computes the same power, and the two pieces are
    blended with a 0/1 mask made by sign(), which gives each piece's value exactly."""
    import torch

    floor = max(cs.threshold, _POW_FLOOR)
    above = (a - cs.threshold).sign_().clamp_min_(0)           # 1 above the knee, else 0
    if torch.is_grad_enabled() and a.requires_grad:
        pw = cs.alpha * torch.exp2(torch.log2(a.clamp_min(floor)) / cs.gamma) - (cs.alpha - 1.0)
        return (a * cs.slope) * (1 - above) + pw * above
    pw = a.clamp_min(floor).log2_().mul_(1.0 / cs.gamma).exp2_().mul_(cs.alpha).sub_(cs.alpha - 1.0)
    lin = a * cs.slope
    return lin.sub_(lin * above).addcmul_(pw, above)


def decode(x, space: str | ColorSpace) -> torch.Tensor:
    """Encoded signal -> linear light; the inverse of `encode` (same sign/extension rules).

    The knee is placed at the end of the linear segment (slope * threshold); for Rec.2020's
    rounded constants the two segments overlap by ~3e-6, and this choice makes
    encode(decode(y)) exact while decode(encode(x)) stays within ~7e-7.
    """
    import torch

    cs = get(space)
    x = _float(x)
    if cs.is_linear:
        return x.clone()
    a = x.abs()
    knee = cs.slope * cs.threshold
    pw = ((a.clamp_min(max(knee, _POW_FLOOR)) + (cs.alpha - 1.0)) / cs.alpha).pow(cs.gamma)
    lin = a / cs.slope if cs.slope else torch.zeros_like(a)
    return torch.copysign(torch.where(a <= knee, lin, pw), x)
