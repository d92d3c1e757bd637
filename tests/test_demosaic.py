"""Tests of ispcli.isp.demosaic: known values, round trips on smooth images, tiling."""

import pytest
import torch
import torch.nn.functional as F

from ispcli.isp import demosaic as dm

BAYER = {
    "RGGB": [[0, 1], [1, 2]],
    "BGGR": [[2, 1], [1, 0]],
    "GRBG": [[1, 0], [2, 1]],
    "GBRG": [[1, 2], [0, 1]],
}
XTRANS = [[1, 1, 0, 1, 1, 2], [1, 1, 2, 1, 1, 0], [2, 0, 1, 0, 2, 1],
          [1, 1, 2, 1, 1, 0], [1, 1, 0, 1, 1, 2], [0, 2, 1, 2, 0, 1]]
PATTERNS = {**BAYER, "XTrans": XTRANS}
METHODS = list(dm.METHODS)
DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def smooth_rgb(h, w, seed=0, cells=8):
    """Seeded smooth noise per channel (channels independent), in [0.05, 0.95]."""
    g = torch.Generator().manual_seed(seed)
    coarse = torch.rand(1, 3, h // cells + 3, w // cells + 3, generator=g)
    rgb = F.interpolate(coarse, size=(h, w), mode="bicubic", align_corners=False)
    return rgb.clamp(0, 1) * 0.9 + 0.05


def natural_rgb(h, w, seed=0, cells=8):
    """Natural-ish: detailed luminance times slowly varying colour, so the channels are
    correlated as in photographs (colour-difference methods rely on that)."""
    lum = smooth_rgb(h, w, seed, cells)[:, :1]
    chroma = smooth_rgb(h, w, seed + 1000, 4 * cells)
    return 0.05 + 0.9 * lum * (0.5 + 0.5 * chroma)


def gradient_rgb(h, w):
    """Smooth colour gradient: a different ramp (and a gentle wave) in each channel."""
    y = torch.linspace(0, 1, h)[:, None].expand(h, w)
    x = torch.linspace(0, 1, w)[None, :].expand(h, w)
    return torch.stack([0.2 + 0.6 * x, 0.3 + 0.4 * y + 0.1 * torch.sin(6 * x), 0.8 - 0.5 * x * y])[None]


def mosaic_of(rgb, cfa):
    """Sample rgb (N,3,H,W) through the CFA: pixel (y, x) keeps colour cfa[y % P][x % P]."""
    pattern = torch.as_tensor(cfa)
    p = pattern.shape[0]
    h, w = rgb.shape[-2:]
    idx = pattern.repeat(-(-h // p), -(-w // p))[:h, :w]
    return rgb.gather(1, idx.expand(rgb.shape[0], 1, h, w))


def psnr(a, b):
    return (10 * torch.log10(1 / (a - b).pow(2).mean())).item()


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("order", list(PATTERNS))
def test_constant_grey_stays_grey(method, order):
    mosaic = torch.full((2, 1, 20, 26), 0.37)
    out = dm.demosaic(mosaic, PATTERNS[order], method)
    torch.testing.assert_close(out, torch.full((2, 3, 20, 26), 0.37), atol=1e-5, rtol=0)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("order", list(PATTERNS))
def test_shape_dtype_device(method, order, device):
    mosaic = torch.rand(2, 1, 30, 37, device=device)
    out = dm.METHODS[method](mosaic, torch.tensor(PATTERNS[order]))
    assert out.shape == (2, 3, 30, 37)
    assert out.dtype == torch.float32
    assert out.device == mosaic.device
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("order", list(PATTERNS))
def test_sampled_values_are_kept(method, order):
    cfa = PATTERNS[order]
    rgb = smooth_rgb(36, 42, seed=1)
    mosaic = mosaic_of(rgb, cfa)
    out = dm.demosaic(mosaic, cfa, method)
    assert torch.equal(mosaic_of(out, cfa), mosaic)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("order", list(BAYER))
def test_smooth_gradient_is_reconstructed(method, order):
    rgb = gradient_rgb(64, 96)
    out = dm.demosaic(mosaic_of(rgb, BAYER[order]), BAYER[order], method)
    b = 8
    assert psnr(out[..., b:-b, b:-b], rgb[..., b:-b, b:-b]) > 60


@pytest.mark.parametrize("order", list(BAYER))
def test_natural_image_is_reconstructed_and_default_is_best(order):
    rgb = natural_rgb(96, 128, seed=2)
    b = 8
    scores = {m: psnr(dm.demosaic(mosaic_of(rgb, BAYER[order]), BAYER[order], m)[..., b:-b, b:-b],
                      rgb[..., b:-b, b:-b]) for m in METHODS}
    assert min(scores["malvar"], scores["menon"], scores["default"]) > 40, scores
    assert scores["default"] == max(scores.values()), scores


def test_default_beats_bilinear_on_xtrans():
    rgb = natural_rgb(96, 120, seed=3)
    mosaic = mosaic_of(rgb, XTRANS)
    b = 8
    scores = {m: psnr(dm.demosaic(mosaic, XTRANS, m)[..., b:-b, b:-b], rgb[..., b:-b, b:-b])
              for m in ("bilinear", "default")}
    assert scores["default"] > scores["bilinear"] + 3, scores


def test_menon_matches_colour_demosaicing():
    colour_demosaicing = pytest.importorskip("colour_demosaicing")
    # Continuous values avoid exact ties in the direction decision, which float32 and
    # float64 may break differently.
    rgb = smooth_rgb(64, 80, seed=4, cells=4).double()
    for order, cfa in BAYER.items():
        mosaic = mosaic_of(rgb, cfa)
        ref = colour_demosaicing.demosaicing_CFA_Bayer_Menon2007(mosaic[0, 0].numpy(), order)
        ours = dm.demosaic_menon(mosaic.float(), cfa)[0].permute(1, 2, 0).double().numpy()
        b = 12
        assert abs(ours - ref)[b:-b, b:-b].max() < 1e-4, order


def test_malvar_matches_colour_demosaicing():
    colour_demosaicing = pytest.importorskip("colour_demosaicing")
    rgb = smooth_rgb(40, 48, seed=5, cells=4).double()
    for order, cfa in BAYER.items():
        mosaic = mosaic_of(rgb, cfa)
        ref = colour_demosaicing.demosaicing_CFA_Bayer_Malvar2004(mosaic[0, 0].numpy(), order)
        ours = dm.demosaic_malvar(mosaic.float(), cfa)[0].permute(1, 2, 0).double().numpy()
        assert abs(ours - ref)[4:-4, 4:-4].max() < 1e-5, order


def tiles(h, w, tile):
    """(y0, y1, x0, x1) of the tiles covering an h x w frame."""
    for y0 in range(0, h, tile):
        for x0 in range(0, w, tile):
            yield y0, min(y0 + tile, h), x0, min(x0 + tile, w)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("order", list(PATTERNS))
@pytest.mark.parametrize("size", [(64, 72), (61, 77)])
def test_tiles_with_halo_match_whole_frame(method, order, size):
    cfa = PATTERNS[order]
    period = len(cfa)
    h, w = size
    noise = torch.rand(1, 1, h, w, generator=torch.Generator().manual_seed(6))
    mosaic = mosaic_of(smooth_rgb(h, w, seed=6, cells=3), cfa) + 0.02 * noise
    whole = dm.demosaic(mosaic, cfa, method)
    halo = dm.HALO[method]
    tile = 24 if period == 2 else 30
    for y0, y1, x0, x1 in tiles(h, w, tile):
        # The crop must start on the pattern's phase (0,0): widen the halo down to it.
        cy, cx = max(y0 - halo, 0), max(x0 - halo, 0)
        cy, cx = cy - cy % period, cx - cx % period
        crop = mosaic[..., cy:min(y1 + halo, h), cx:min(x1 + halo, w)]
        out = dm.demosaic(crop, cfa, method)[..., y0 - cy:y1 - cy, x0 - cx:x1 - cx]
        torch.testing.assert_close(out, whole[..., y0:y1, x0:x1], atol=1e-5, rtol=0)


@pytest.mark.parametrize("method", ["menon", "default"])
def test_halo_is_needed(method):
    """A halo two pixels short of the declared one changes the result: it is not padded out."""
    cfa = BAYER["RGGB"]
    mosaic = torch.rand(1, 1, 64, 64, generator=torch.Generator().manual_seed(7))
    whole = dm.demosaic(mosaic, cfa, method)
    h = dm.HALO[method] - 2
    out = dm.demosaic(mosaic[..., 24 - h:40 + h, 24 - h:40 + h], cfa, method)[..., h:h + 16, h:h + 16]
    assert (out - whole[..., 24:40, 24:40]).abs().max() > 1e-4


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("order", ["GBRG", "XTrans"])
def test_internal_tiling_matches_whole_frame(method, order):
    cfa = PATTERNS[order]
    mosaic = torch.rand(1, 1, 71, 83, generator=torch.Generator().manual_seed(8))
    pattern = dm._pattern(cfa)
    inner = {"bilinear": dm._bilinear, "malvar": dm._malvar, "menon": dm._menon,
             "default": dm._default}[method]
    tiled = dm._tiled(inner, mosaic, pattern, dm.HALO[method], tile=26)
    torch.testing.assert_close(tiled, inner(mosaic, pattern), atol=1e-5, rtol=0)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("order", ["GRBG", "XTrans"])
def test_cuda_matches_cpu(method, order):
    mosaic = mosaic_of(natural_rgb(64, 80, seed=9), PATTERNS[order])
    cpu = dm.demosaic(mosaic, PATTERNS[order], method)
    cuda = dm.demosaic(mosaic.cuda(), torch.tensor(PATTERNS[order]).cuda(), method)
    torch.testing.assert_close(cuda.cpu(), cpu, atol=1e-4, rtol=0)


def test_negative_and_overrange_values_pass_through():
    cfa = BAYER["RGGB"]
    mosaic = torch.tensor([[-0.01, 1.2], [1.2, -0.01]]).repeat(8, 8)[None, None]
    out = dm.demosaic_default(mosaic, cfa)
    assert torch.isfinite(out).all()
    assert out.min() < 0 and out.max() > 1     # nothing is clamped


def test_tiny_frame():
    out = dm.demosaic_default(torch.rand(1, 1, 3, 5), BAYER["GRBG"])
    assert out.shape == (1, 3, 3, 5) and torch.isfinite(out).all()


def test_unknown_method_names_the_known_ones():
    with pytest.raises(ValueError, match="bilinear.*malvar.*menon.*default"):
        dm.demosaic(torch.rand(1, 1, 8, 8), BAYER["RGGB"], method="amaze")


@pytest.mark.parametrize("cfa", [[[0, 1], [1, 1]], [[0, 1, 2], [1, 2, 0], [2, 0, 1]], [[0, 3], [1, 2]]])
def test_bad_cfa_is_refused(cfa):
    with pytest.raises(ValueError, match="cfa"):
        dm.demosaic(torch.rand(1, 1, 8, 8), cfa)


def test_bad_mosaic_is_refused():
    with pytest.raises(ValueError, match=r"\(N,1,H,W\)"):
        dm.demosaic(torch.rand(1, 3, 8, 8), BAYER["RGGB"])
    with pytest.raises(ValueError, match="float32"):
        dm.demosaic(torch.rand(1, 1, 8, 8, dtype=torch.float64), BAYER["RGGB"])


def test_halo_and_methods_tables_agree():
    assert set(dm.HALO) == set(dm.METHODS) == {"bilinear", "malvar", "menon", "default"}
    assert all(h % 2 == 0 for h in dm.HALO.values())
