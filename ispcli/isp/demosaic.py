"""Demosaicing: turn a white-balanced CFA mosaic into RGB.

Every method takes ``mosaic``, (N,1,H,W) float32, white-balanced and normalised so that white is
about 1 (values may exceed 1 a little or go negative; nothing is clamped), and ``cfa``, the colour
of each site of one period of the pattern: a (2,2) Bayer or (6,6) X-Trans table (LongTensor or
nested list; 0=R, 1=G, 2=B; ``cfa[i][j]`` is the colour of pixel (y, x) with y % P == i and
x % P == j). The mosaic's origin is at phase (0,0). Each returns (N,3,H,W) float32 on the mosaic's
device, linear like its input, with the sampled values kept exactly.

Tiling: running a method on a crop with ``HALO[name]`` pixels of context on each side (clipped at
the frame's edges, starting at a multiple of the CFA period) and keeping the interior gives the
whole-frame result exactly. Borders are extended by reflection, which keeps the Bayer phase
(pixel -k mirrors pixel +k, of the same parity).

    >>> rgb = demosaic(mosaic, [[0, 1], [1, 2]])           # RGGB, default method
    >>> rgb = demosaic(mosaic, cfa, method="menon")
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

# Reach of each method in pixels, measured by perturbing inputs (bilinear 1, or 2 for X-Trans;
# malvar 2; menon 7; default 11), rounded up to even so that crops keep the Bayer phase.
HALO = {"bilinear": 2, "malvar": 2, "menon": 8, "default": 12}

# Large frames run tile by tile: ~0.25 MP of intermediates stay in cache, and bigger frames
# measured up to 2x slower per pixel on CPU. On a GPU the tiles only bound memory.
_TILE = {"cpu": 512}
_OTHER_DEVICE_TILE = 4096


# ---- inputs ------------------------------------------------------------------------------------

def _pattern(cfa) -> list[list[int]]:
    """The CFA as a list of lists, or ValueError saying what arrived."""
    pattern = torch.as_tensor(cfa).tolist()
    p = len(pattern)
    if p not in (2, 6) or any(len(row) != p for row in pattern):
        raise ValueError(f"cfa must be 2x2 (Bayer) or 6x6 (X-Trans), got {pattern!r}")
    values = sorted(v for row in pattern for v in row)
    if set(values) != {0, 1, 2} or (p == 2 and values != [0, 1, 1, 2]):
        raise ValueError(f"cfa must hold 0=R, 1=G, 2=B (Bayer: one R, two G, one B), got {pattern!r}")
    return pattern


def _check_mosaic(mosaic) -> None:
    if not torch.is_tensor(mosaic) or mosaic.dim() != 4 or mosaic.shape[1] != 1:
        got = tuple(mosaic.shape) if torch.is_tensor(mosaic) else type(mosaic).__name__
        raise ValueError(f"mosaic must be a (N,1,H,W) tensor, got {got}")
    if mosaic.dtype != torch.float32:
        raise ValueError(f"mosaic must be float32, got {mosaic.dtype}")


def _roll(pattern, dy, dx):
    """The pattern seen by a crop whose origin is pixel (dy, dx) of the frame."""
    p = len(pattern)
    return [[pattern[(i + dy) % p][(j + dx) % p] for j in range(p)] for i in range(p)]


# ---- filtering with shifted slices -------------------------------------------------------------
# Single-channel conv2d is slow on CPU (im2col); sums of shifted slices are several times faster.
# Results keep the input's size, and a border as wide as the kernel's radius holds zeros instead
# of values: callers pad the frame beforehand by at least the total reach and crop afterwards.

def _taps(x, taps):
    """Correlate x (..., H, W) with a sparse kernel {(dy, dx): weight}."""
    taps = {offset: weight for offset, weight in taps.items() if weight}
    ry = max(abs(dy) for dy, _ in taps)
    rx = max(abs(dx) for _, dx in taps)
    h, w = x.shape[-2:]
    out = torch.empty_like(x)
    inner = out[..., ry:h - ry, rx:w - rx]
    for n, ((dy, dx), weight) in enumerate(taps.items()):
        src = x[..., ry + dy:h - ry + dy, rx + dx:w - rx + dx]
        if n == 0:
            torch.mul(src, weight, out=inner)
        else:
            inner.add_(src, alpha=weight)
    if ry:
        out[..., :ry, :].zero_()
        out[..., h - ry:, :].zero_()
    if rx:
        out[..., :, :rx].zero_()
        out[..., :, w - rx:].zero_()
    return out


def _h(x, weights):
    return _taps(x, {(0, k - len(weights) // 2): w for k, w in enumerate(weights)})


def _v(x, weights):
    return _taps(x, {(k - len(weights) // 2, 0): w for k, w in enumerate(weights)})


def _interior(a, dy, dx, m):
    """a shifted by (dy, dx), cropped by m on every side: a shift without a copy."""
    h, w = a.shape[-2:]
    return a[..., m + dy:h - m + dy, m + dx:w - m + dx]


def _pick(a, b, m):
    """a where the float mask m is 1, else b (torch.where is slower on CPU)."""
    return b + m * (a - b)


def _reflect_pad(x, left, right, top, bottom):
    """Reflect padding of any width, repeated when the frame is smaller than the pad."""
    while left or right or top or bottom:
        h, w = x.shape[-2:]
        step = [min(left, w - 1), min(right, w - 1), min(top, h - 1), min(bottom, h - 1)]
        x = F.pad(x, step, mode="reflect")
        left, right, top, bottom = left - step[0], right - step[1], top - step[2], bottom - step[3]
    return x


def _rggb_canvas(mosaic, pattern, pad):
    """Reflect-pad by `pad` (+1 where needed) into an even-sized canvas whose pattern is RGGB.

    Reflection keeps each pixel's parity, so one extra row or column on the top or left turns
    any Bayer order into RGGB: the Bayer methods are written once, for RGGB. Returns the canvas
    and the slices that cut the frame back out.
    """
    ry, rx = next((i, j) for i in range(2) for j in range(2) if pattern[i][j] == 0)
    h, w = mosaic.shape[-2:]
    top, left = pad + (ry - pad) % 2, pad + (rx - pad) % 2
    bottom, right = pad + (top + h + pad) % 2, pad + (left + w + pad) % 2
    return _reflect_pad(mosaic, left, right, top, bottom), (slice(top, top + h), slice(left, left + w))


# Views of the four sites of an RGGB canvas.
def _r(x): return x[..., 0::2, 0::2]
def _g1(x): return x[..., 0::2, 1::2]    # green in red rows
def _g2(x): return x[..., 1::2, 0::2]    # green in blue rows
def _b(x): return x[..., 1::2, 1::2]


# ---- bilinear ----------------------------------------------------------------------------------

def _normalised_conv(x, pattern, colours, taps1d):
    """Per colour, the weighted mean of x over that colour's sites nearby; samples are kept.

    Outside the frame there are no samples (zero padding of values and weights alike), so any
    pattern, border or tile works without phase care.
    """
    r = len(taps1d) // 2
    h, w = x.shape[-2:]
    p = len(pattern)
    table = torch.tensor(pattern, device=x.device)
    planes = []
    for c in colours:
        sampled = (table == c).repeat(-(-h // p), -(-w // p))[:h, :w].expand_as(x)
        weight = sampled.to(x.dtype)
        num = _v(_h(F.pad(x * weight, [r] * 4), taps1d), taps1d)[..., r:r + h, r:r + w]
        den = _v(_h(F.pad(weight, [r] * 4), taps1d), taps1d)[..., r:r + h, r:r + w]
        planes.append(torch.where(sampled, x, num / den.clamp_min(1e-6)))
    return torch.cat(planes, 1)


def _bilinear(mosaic, pattern):
    taps1d = [1.0, 2.0, 1.0] if len(pattern) == 2 else [1.0, 2.0, 3.0, 2.0, 1.0]
    return _normalised_conv(mosaic, pattern, (0, 1, 2), taps1d)


def demosaic_bilinear(mosaic: torch.Tensor, cfa) -> torch.Tensor:
    """Bilinear, for Bayer and X-Trans: each missing colour is the mean of that colour's samples
    in a 3x3 window (Bayer; exactly bilinear) or a tent-weighted 5x5 window (X-Trans).

    mosaic (N,1,H,W) float32 -> (N,3,H,W) float32.
    """
    return _run(_bilinear, mosaic, cfa, HALO["bilinear"])


# ---- Malvar, He & Cutler 2004 ------------------------------------------------------------------

_MALVAR_CROSS = {(0, 0): 4, (0, -1): 2, (0, 1): 2, (-1, 0): 2, (1, 0): 2,
                 (0, -2): -1, (0, 2): -1, (-2, 0): -1, (2, 0): -1}
_MALVAR_ROW = {(0, 0): 5, (0, -1): 4, (0, 1): 4, (0, -2): -1, (0, 2): -1, (-2, 0): 0.5, (2, 0): 0.5,
               (-1, -1): -1, (-1, 1): -1, (1, -1): -1, (1, 1): -1}    # same colour left and right
_MALVAR_COL = {(dx, dy): w for (dy, dx), w in _MALVAR_ROW.items()}
_MALVAR_DIAG = {(0, 0): 6, (-1, -1): 2, (-1, 1): 2, (1, -1): 2, (1, 1): 2,
                (0, -2): -1.5, (0, 2): -1.5, (-2, 0): -1.5, (2, 0): -1.5}


def _malvar(mosaic, pattern):
    if len(pattern) != 2:
        return _bilinear(mosaic, pattern)
    x, crop = _rggb_canvas(mosaic, pattern, HALO["malvar"])
    g, by_row, by_col, by_diag = (_taps(x, {k: w / 8 for k, w in kernel.items()})
                                  for kernel in (_MALVAR_CROSS, _MALVAR_ROW, _MALVAR_COL, _MALVAR_DIAG))
    r, b = x.clone(), x.clone()
    for site, src in ((_g1, by_row), (_g2, by_col), (_b, by_diag)):
        site(r).copy_(site(src))
    for site, src in ((_g2, by_row), (_g1, by_col), (_r, by_diag)):
        site(b).copy_(site(src))
    _g1(g).copy_(_g1(x))
    _g2(g).copy_(_g2(x))
    return torch.cat([r, g, b], 1)[..., crop[0], crop[1]]


def demosaic_malvar(mosaic: torch.Tensor, cfa) -> torch.Tensor:
    """Malvar, He & Cutler (ICASSP 2004): bilinear plus a gradient correction, 5x5 linear filters.

    Bayer only: X-Trans input falls back to `demosaic_bilinear`.
    mosaic (N,1,H,W) float32 -> (N,3,H,W) float32.
    """
    return _run(_malvar, mosaic, cfa, HALO["malvar"])


# ---- Menon, Andriani & Calvagno 2007 -----------------------------------------------------------

_HAMILTON_ADAMS = [-0.25, 0.5, 0.5, 0.5, -0.25]
_PAIR = [0.5, 0.0, 0.5]
_THIRDS = [1 / 3, 1 / 3, 1 / 3]


def _menon_green(x):
    """Green by directional filtering, and the decision: m = 1 where horizontal wins."""
    ch, cv = x - _h(x, _HAMILTON_ADAMS), x - _v(x, _HAMILTON_ADAMS)   # colour minus green
    for c in (ch, cv):
        _g1(c).zero_()
        _g2(c).zero_()
    dh, dv = ch.clone(), cv.clone()
    dh[..., :, :-2] -= ch[..., :, 2:]
    dv[..., :-2, :] -= cv[..., 2:, :]
    dh.abs_()
    dv.abs_()
    # The paper's classifiers: these gradients summed over a 5x5 window around the pixel.
    sh = _v(_h(dh, [1, 0, 1]), [1, 0, 3, 0, 1]) + _v(dh, [1, 0, 1])
    sv = _h(_v(dv, [1, 0, 1]), [1, 0, 3, 0, 1]) + _h(dv, [1, 0, 1])
    m = (_taps(sv, {(-1, 0): 1.0}) >= _taps(sh, {(0, -1): 1.0})).to(x.dtype)
    return x - _pick(ch, cv, m), m


def _menon_rb(x, g, m):
    """Red and blue from the colour differences; at R/B sites along the chosen direction."""
    diff = x - g
    along_row, along_col = _h(diff, _PAIR), _v(diff, _PAIR)
    r, b = g.clone(), g.clone()
    _r(r).copy_(_r(x))
    _b(b).copy_(_b(x))
    _g1(r).add_(_g1(along_row))
    _g2(r).add_(_g2(along_col))
    _g2(b).add_(_g2(along_row))
    _g1(b).add_(_g1(along_col))
    rb = r - b
    d = _pick(_h(rb, _PAIR), _v(rb, _PAIR), m)
    _b(r).copy_(_b(b) + _b(d))
    _r(b).copy_(_r(r) - _r(d))
    return r, b


def _menon_refine(r, g, b, m):
    """The paper's refining step: each colour again from smoothed colour differences."""
    rg, bg = r - g, b - g
    _r(g).copy_(_r(r) - _r(_pick(_h(rg, _THIRDS), _v(rg, _THIRDS), m)))
    _b(g).copy_(_b(b) - _b(_pick(_h(bg, _THIRDS), _v(bg, _THIRDS), m)))
    rg, bg = r - g, b - g
    _g2(r).copy_(_g2(g) + _g2(_v(rg, _PAIR)))
    _g1(r).copy_(_g1(g) + _g1(_h(rg, _PAIR)))
    _g1(b).copy_(_g1(g) + _g1(_v(bg, _PAIR)))
    _g2(b).copy_(_g2(g) + _g2(_h(bg, _PAIR)))
    d = r - b
    d = _pick(_h(d, _THIRDS), _v(d, _THIRDS), m)
    _b(r).copy_(_b(b) + _b(d))
    _r(b).copy_(_r(r) - _r(d))
    return r, g, b


def _menon(mosaic, pattern):
    if len(pattern) != 2:
        return _bilinear(mosaic, pattern)
    x, crop = _rggb_canvas(mosaic, pattern, HALO["menon"])
    g, m = _menon_green(x)
    r, b = _menon_rb(x, g, m)
    return torch.cat(_menon_refine(r, g, b, m), 1)[..., crop[0], crop[1]]


def demosaic_menon(mosaic: torch.Tensor, cfa) -> torch.Tensor:
    """Menon, Andriani & Calvagno (IEEE TIP 2007), directional filtering with a posteriori
    decision (DDFAPD), with the refining step. Equals colour-demosaicing's
    ``demosaicing_CFA_Bayer_Menon2007`` away from the borders, where it pads differently.

    Bayer only: X-Trans input falls back to `demosaic_bilinear`.
    mosaic (N,1,H,W) float32 -> (N,3,H,W) float32.
    """
    return _run(_menon, mosaic, cfa, HALO["menon"])


# ---- default: GBTF on a perceptually encoded mosaic --------------------------------------------
# Colour-difference interpolation assumes that the channels move together, which holds far better
# after a display-like curve than in linear light: on Kodak the same algorithm gains ~6 dB by
# interpolating encoded values. A cube root (the shape of CIE L*) measured best: +0.09 dB over
# the sRGB curve, +0.55 dB over a square root; and its inverse needs no pow().

_KNEE = 0.0031308                  # linear below (sRGB's knee), so that noise and negatives
_KNEE_Y = _KNEE ** (1 / 3)         # near black are not amplified without bound
_SLOPE = _KNEE ** (-2 / 3) / 3     # the cube root's slope at the knee: the curve is C1


def _encode(x):
    # exp2(log2(x) / 3): a third of pow()'s time on a CPU
    return x.clamp_min(_KNEE).log2_().div_(3).exp2_().add_((x - _KNEE).clamp_max_(0), alpha=_SLOPE)


def _decode(y):
    t = y.clamp_min(_KNEE_Y)
    return (t * t).mul_(t).add_((y - _KNEE_Y).clamp_max_(0), alpha=1 / _SLOPE)


# Hamilton-Adams estimate of the missing colour along a line, minus the centre's colour.
_HA_DIFF = [-0.25, 0.5, -0.5, 0.5, -0.25]
# Paliy et al.'s 7x7 filter: a colour difference at R (B) sites from the B (R) sites around.
_PALIY = {(dy, dx): (10 if abs(dy) == abs(dx) == 1 else -1) / 32
          for dy in (-3, -1, 1, 3) for dx in (-3, -1, 1, 3) if abs(dy) + abs(dx) in (2, 4)}


def _gbtf_weights(x):
    """Green-minus-colour differences along rows (dh) and columns (dv), and inverse gradient
    energies uh, uv: |gradient of the differences| summed over 5x5, to the power -2.5. The
    direction west of a pixel is weighted by uh two columns west, and so on."""
    dh, dv = _h(x, _HA_DIFF), _v(x, _HA_DIFF)
    for d in (dh, dv):                 # colour minus green at green sites: flip to green minus
        _g1(d).neg_()
        _g2(d).neg_()
    box = [1.0] * 5
    eh = _v(_h(_h(dh, [-1, 0, 1]).abs_(), box), box).add_(1e-6)
    ev = _h(_v(_v(dv, [-1, 0, 1]).abs_(), box), box).add_(1e-6)
    # Power 2.5 measured best on Kodak (GBTF's 2: -0.07 dB; 3: -0.01 dB).
    uh, uv = (e.sqrt().mul_(e).mul_(e).reciprocal_() for e in (eh, ev))
    return dh, dv, uh, uv


def _gbtf_green(x, dh, dv, uh, uv):
    """Green minus colour at R/B sites (0 at G sites), and the horizontal share of the weights.
    Each direction offers the mean of the four differences on its side (GBTF: five; four
    measured +0.2 dB)."""
    m = 3
    quad_h = _taps(dh, {(0, k): 0.25 for k in range(4)})
    quad_v = _taps(dv, {(k, 0): 0.25 for k in range(4)})
    wn, ws = _interior(uv, -2, 0, m), _interior(uv, 2, 0, m)
    ww, we = _interior(uh, 0, -2, m), _interior(uh, 0, 2, m)
    num = wn * _interior(quad_v, -3, 0, m)
    num.addcmul_(ws, _interior(quad_v, 0, 0, m))
    num.addcmul_(ww, _interior(quad_h, 0, -3, m)).addcmul_(we, _interior(quad_h, 0, 0, m))
    horizontal = ww + we
    total = (wn + ws).add_(horizontal)
    delta, share = torch.zeros_like(x), torch.zeros_like(x)
    torch.div(num, total, out=_interior(delta, 0, 0, m))
    torch.div(horizontal, total, out=_interior(share, 0, 0, m))
    _g1(delta).zero_()
    _g2(delta).zero_()
    return delta, share


def _gbtf_rb(x, delta, share):
    """Red and blue: Paliy's filter at B/R sites; at G sites the neighbours' mean along each
    axis, mixed by the green step's weights (GBTF: plain mean of four; +0.02 dB)."""
    g = x + delta
    other = _taps(delta, _PALIY)
    kr, kb = delta.clone(), delta      # green minus red, green minus blue
    _b(kr).copy_(_b(other))
    _r(kb).copy_(_r(other))
    r, b = g - kr, g - kb
    for k, out in ((kr, r), (kb, b)):
        along_row, along_col = _h(k, _PAIR), _v(k, _PAIR)
        along_row.sub_(along_col).mul_(share).add_(along_col)
        _g1(out).sub_(_g1(along_row))
        _g2(out).sub_(_g2(along_row))
    return r, g, b


def _gbtf(encoded, pattern):
    x, crop = _rggb_canvas(encoded, pattern, HALO["default"])
    delta, share = _gbtf_green(x, *_gbtf_weights(x))
    return torch.cat(_gbtf_rb(x, delta, share), 1)[..., crop[0], crop[1]]


def _colour_difference(encoded, pattern):
    """Any CFA: green by normalised convolution, then green plus interpolated R-G and B-G."""
    g = _normalised_conv(encoded, pattern, (1,), [1.0, 2.0, 1.0])
    rb = _normalised_conv(encoded - g, pattern, (0, 2), [1.0, 2.0, 3.0, 4.0, 3.0, 2.0, 1.0])
    return torch.cat([rb[:, :1] + g, g, rb[:, 1:] + g], 1)


def _default(mosaic, pattern):
    encoded = _encode(mosaic)
    rgb = _decode((_gbtf if len(pattern) == 2 else _colour_difference)(encoded, pattern))
    p = len(pattern)
    for i in range(p):                 # the encode/decode round trip may move samples by 1 ulp
        for j in range(p):
            c = pattern[i][j]
            rgb[:, c:c + 1, i::p, j::p] = mosaic[..., i::p, j::p]
    return rgb


def demosaic_default(mosaic: torch.Tensor, cfa) -> torch.Tensor:
    """The best method here: GBTF (Pekkucuksen & Altunbasak, ICIP 2010, gradient-based
    threshold-free), tuned on Kodak (4-tap directional means, weights to the power 2.5,
    direction-weighted red/blue at green sites), interpolating cube-root-encoded values.

    The mosaic is encoded (cube root; linear below 0.0031308, so negatives pass through),
    demosaicked and decoded: input and output are both linear. X-Trans input gets
    colour-difference interpolation (green by normalised convolution, then R-G and B-G) in the
    same encoding: 33.5 dB on Kodak against bilinear's 28.5.
    mosaic (N,1,H,W) float32 -> (N,3,H,W) float32.
    """
    return _run(_default, mosaic, cfa, HALO["default"])


# ---- dispatch and tiling -----------------------------------------------------------------------

def _run(method, mosaic, cfa, halo):
    """Check the inputs, then run `method` on the frame, or tile by tile if it is large."""
    _check_mosaic(mosaic)
    pattern = _pattern(cfa)
    tile = _TILE.get(mosaic.device.type, _OTHER_DEVICE_TILE)
    h, w = mosaic.shape[-2:]
    if h * w <= 2 * tile * tile:
        return method(mosaic, pattern)
    return _tiled(method, mosaic, pattern, halo, tile)


def _tiled(method, mosaic, pattern, halo, tile):
    """`method` on crops with `halo` of context, their interiors stitched together."""
    h, w = mosaic.shape[-2:]
    out = mosaic.new_empty(mosaic.shape[0], 3, h, w)
    ys, xs = _cuts(h, tile), _cuts(w, tile)
    for y0, y1 in zip(ys, ys[1:]):
        for x0, x1 in zip(xs, xs[1:]):
            cy, cx = max(y0 - halo, 0), max(x0 - halo, 0)
            crop = mosaic[..., cy:min(y1 + halo, h), cx:min(x1 + halo, w)]
            rgb = method(crop, _roll(pattern, cy, cx))
            out[..., y0:y1, x0:x1] = rgb[..., y0 - cy:y1 - cy, x0 - cx:x1 - cx]
    return out


def _cuts(n, tile):
    """Edges of near-equal parts of 0..n, none longer than `tile`, starting on even pixels."""
    parts = -(-n // tile)
    return [min(n, 2 * round(k * n / parts / 2)) for k in range(parts)] + [n]


METHODS = {
    "bilinear": demosaic_bilinear,
    "malvar": demosaic_malvar,
    "menon": demosaic_menon,
    "default": demosaic_default,
}


def demosaic(mosaic: torch.Tensor, cfa, method: str = "default") -> torch.Tensor:
    """Demosaic with the named method; see the module docstring for shapes and ranges."""
    if method not in METHODS:
        raise ValueError(f"unknown demosaic method {method!r}; known: {', '.join(METHODS)}")
    return METHODS[method](mosaic, cfa)
