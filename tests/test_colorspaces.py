"""Colour spaces (matrices, curves) and the ICC profiles written for them."""

from __future__ import annotations

import io
import re
import struct
import subprocess
import sys
import warnings

import numpy as np
import pytest
import torch

from ispcli.io.icc import PCS_D50, icc_profile
from ispcli.isp import colorspaces as C

with warnings.catch_warnings():  # colour-science nags about matplotlib at import
    warnings.simplefilter("ignore")
    import colour

from PIL import Image, ImageCms  # noqa: E402

COLOUR_NAMES = {
    "srgb": "sRGB", "display-p3": "Display P3", "adobe-rgb": "Adobe RGB (1998)",
    "prophoto": "ProPhoto RGB", "rec2020": "ITU-R BT.2020", "linear-srgb": "sRGB",
}
NAMES = list(C.COLOR_SPACES)


def test_registry():
    assert set(NAMES) == set(COLOUR_NAMES)
    assert C.get("sRGB") is C.COLOR_SPACES["srgb"]
    with pytest.raises(ValueError, match="display-p3.*prophoto"):
        C.get("cmyk")


# ----------------------------------------------------------------------------- matrices

def _colour_rgb_to_xyz_d65(ref: colour.RGB_Colourspace, derived: bool) -> np.ndarray:
    m = (colour.normalised_primary_matrix(ref.primaries, ref.whitepoint) if derived
         else ref.matrix_RGB_to_XYZ)
    if not np.allclose(ref.whitepoint, C.D65):
        m = colour.adaptation.matrix_chromatic_adaptation_VonKries(
            colour.xy_to_XYZ(ref.whitepoint), colour.xy_to_XYZ(C.D65), "Bradford") @ m
    return m


@pytest.mark.parametrize("name", NAMES)
def test_matrices_match_colour_science(name):
    ref = colour.RGB_COLOURSPACES[COLOUR_NAMES[name]]
    cs = C.get(name)
    np.testing.assert_allclose(cs.primaries, ref.primaries, atol=1e-12)
    np.testing.assert_allclose(cs.white, ref.whitepoint, atol=1e-12)

    derived = _colour_rgb_to_xyz_d65(ref, derived=True)
    np.testing.assert_allclose(C.rgb_to_xyz_matrix(name), derived, atol=1e-4)
    np.testing.assert_allclose(C.xyz_to_rgb_matrix(name), np.linalg.inv(derived), atol=1e-4)
    # colour-science's published matrices are the standards' 4-5 decimal roundings.
    np.testing.assert_allclose(
        C.rgb_to_xyz_matrix(name), _colour_rgb_to_xyz_d65(ref, derived=False), atol=5e-4)


@pytest.mark.parametrize("name", NAMES)
def test_d65_white_maps_to_ones(name):
    rgb = C.xyz_to_rgb_matrix(name) @ C.xy_to_xyz(C.D65)
    np.testing.assert_allclose(rgb, [1.0, 1.0, 1.0], atol=1e-12)
    assert C.xyz_to_rgb_matrix(name).dtype == np.float64
    np.testing.assert_allclose(C.rgb_to_xyz_matrix(name) @ C.xyz_to_rgb_matrix(name),
                               np.eye(3), atol=1e-12)


def test_bradford_and_constants():
    np.testing.assert_allclose(C.XYZ_D65_TO_D50 @ C.xy_to_xyz(C.D65), C.xy_to_xyz(C.D50),
                               atol=1e-12)
    ref = colour.adaptation.matrix_chromatic_adaptation_VonKries(
        colour.xy_to_XYZ(C.D65), colour.xy_to_XYZ(C.D50), "Bradford")
    np.testing.assert_allclose(C.XYZ_D65_TO_D50, ref, atol=1e-10)
    np.testing.assert_allclose(C.bradford(C.D65, C.xy_to_xyz(C.D50)), ref, atol=1e-10)
    np.testing.assert_allclose(C.SRGB_TO_XYZ[1], [0.2126, 0.7152, 0.0722], atol=1e-4)


# ----------------------------------------------------------------------------- curves

@pytest.mark.parametrize("name", NAMES)
def test_encode_decode_inverse(name):
    x = torch.linspace(0.0, 1.0, 20001)
    assert C.encode(x, name).dtype == torch.float32
    assert (C.decode(C.encode(x, name), name) - x).abs().max() <= 1e-6
    assert (C.encode(C.decode(x, name), name) - x).abs().max() <= 1e-6
    # torch and numpy twins agree
    np.testing.assert_allclose(C.encode(x.double(), name).numpy(),
                               C.encode_np(x.double().numpy(), name), atol=1e-12)


@pytest.mark.parametrize("name", NAMES)
def test_curves_odd_extended_and_finite(name):
    x = torch.tensor([-4.0, -1.0, -0.5, -1e-4, 0.0, 1e-4, 0.5, 1.0, 4.0], requires_grad=True)
    e = C.encode(x, name)
    assert torch.isfinite(e).all()
    torch.testing.assert_close(e[:4], -e.flip(0)[:4])
    assert e[-1] > e[-2]  # above 1 keeps rising, no clamp
    e.sum().backward()
    assert torch.isfinite(x.grad).all()
    d = C.decode(torch.tensor([-2.0, -0.3, 0.0, 0.3, 2.0]), name)
    assert torch.isfinite(d).all() and d[0] == -d[-1] and d[-1] > 1.0


def test_known_values():
    srgb = C.encode(torch.tensor([0.0031308, 0.18, 1.0], dtype=torch.float64), "srgb")
    torch.testing.assert_close(srgb, torch.tensor([0.0031308 * 12.92, 0.4613561295004, 1.0],
                                                  dtype=torch.float64), atol=1e-9, rtol=0)
    x = np.array([0.0005, 0.01, 0.18, 0.5, 1.0])
    rgb = colour.RGB_COLOURSPACES
    np.testing.assert_allclose(C.encode_np(x, "srgb"), rgb["sRGB"].cctf_encoding(x), atol=1e-10)
    np.testing.assert_allclose(C.encode_np(x, "display-p3"), C.encode_np(x, "srgb"))
    np.testing.assert_allclose(C.encode_np(x, "prophoto"),
                               colour.models.cctf_encoding_ROMMRGB(x), atol=1e-10)
    np.testing.assert_allclose(C.encode_np(x, "adobe-rgb"), x ** (256 / 563), atol=1e-12)
    np.testing.assert_allclose(C.encode_np(x, "adobe-rgb"),
                               rgb["Adobe RGB (1998)"].cctf_encoding(x), atol=1e-10)
    np.testing.assert_allclose(C.encode_np(x, "rec2020"),
                               colour.models.oetf_BT2020(x, is_12_bits_system=True), atol=1e-10)
    np.testing.assert_allclose(C.encode_np(x, "linear-srgb"), x)
    assert C.encode_np(0.18, "prophoto") == pytest.approx(0.3857114247, abs=1e-9)
    assert C.encode_np(1 / 512, "prophoto") == pytest.approx(1 / 32, abs=1e-12)
    assert C.encode_np(0.18, "adobe-rgb") == pytest.approx(0.4585294657, abs=1e-9)
    assert C.encode_np(0.18, "rec2020") == pytest.approx(0.4088464025, abs=1e-9)
    assert C.encode_np(0.01, "rec2020") == pytest.approx(0.045, abs=1e-12)


# ----------------------------------------------------------------------------- ICC

PIL_SRGB = ImageCms.createProfile("sRGB")


def _norm(s: str) -> str:
    return re.sub(r"[^a-z0-9]", "", s.lower())


def _tags(data: bytes) -> dict[bytes, bytes]:
    (n,) = struct.unpack_from(">I", data, 128)
    out = {}
    for i in range(n):
        sig, off, size = struct.unpack_from(">4sII", data, 132 + 12 * i)
        assert off % 4 == 0 and off + size <= len(data)
        out[sig] = data[off:off + size]
    return out


@pytest.mark.parametrize("name", NAMES)
def test_icc_structure(name):
    data = icc_profile(name)
    assert struct.unpack_from(">I", data)[0] == len(data) and len(data) % 4 == 0
    assert data[36:40] == b"acsp" and data[12:24] == b"mntrRGB XYZ "
    assert data[8:12] == bytes([2, 0x40, 0, 0])
    d50 = [round(v * 65536) for v in PCS_D50]
    assert list(struct.unpack_from(">3i", data, 68)) == d50
    tags = _tags(data)
    assert set(tags) == {b"desc", b"cprt", b"wtpt", b"rXYZ", b"gXYZ", b"bXYZ",
                         b"rTRC", b"gTRC", b"bTRC", b"chad"}
    cols = [struct.unpack_from(">3i", tags[t], 8) for t in (b"rXYZ", b"gXYZ", b"bXYZ")]
    assert list(np.sum(cols, axis=0)) == d50  # colorants sum exactly to the PCS white
    assert list(struct.unpack_from(">3i", tags[b"wtpt"], 8)) == d50


@pytest.mark.parametrize("name", NAMES)
def test_icc_parses_and_is_deterministic(name):
    data = icc_profile(name)
    assert icc_profile(name) is data  # cached
    icc_profile.cache_clear()
    assert icc_profile(name) == data  # rebuilt bit-identical
    prof = ImageCms.ImageCmsProfile(io.BytesIO(data))
    desc = ImageCms.getProfileDescription(prof).strip()
    assert desc == C.get(name).description
    assert _norm(name) in _norm(desc)
    assert "copyright" in ImageCms.getProfileCopyright(prof).lower()


def _pillow_to_srgb(data: bytes, rgb8: np.ndarray) -> np.ndarray:
    prof = ImageCms.ImageCmsProfile(io.BytesIO(data))
    t = ImageCms.buildTransform(prof, PIL_SRGB, "RGB", "RGB",
                                renderingIntent=ImageCms.Intent.RELATIVE_COLORIMETRIC)
    im = Image.fromarray(rgb8.reshape(1, -1, 3), "RGB")
    return np.asarray(ImageCms.applyTransform(im, t)).reshape(-1, 3).astype(np.float64)


def _test_colours() -> np.ndarray:
    v = np.array([0, 1, 3, 8, 20, 45, 80, 128, 170, 210, 240, 255])
    grid = np.stack(np.meshgrid(v, v, v, indexing="ij"), -1).reshape(-1, 3)
    grey = np.repeat(np.arange(256)[:, None], 3, axis=1)
    return np.concatenate([grid, grey]).astype(np.uint8)


@pytest.mark.parametrize("name", NAMES)
def test_icc_matches_our_math(name):
    rgb8 = _test_colours()
    lin = C.decode_np(rgb8 / 255.0, name) @ C.rgb_to_rgb_matrix(name, "srgb").T
    in_gamut = np.all((lin >= 0.0) & (lin <= 1.0), axis=1)
    assert in_gamut.sum() > 300
    expected = C.encode_np(lin, "srgb") * 255.0
    got = _pillow_to_srgb(icc_profile(name), rgb8)
    assert np.abs(got - expected)[in_gamut].max() <= 2.0


def test_icc_srgb_is_identity_to_pillow_srgb():
    rgb8 = _test_colours()
    got = _pillow_to_srgb(icc_profile("srgb"), rgb8)
    assert np.abs(got - rgb8).max() <= 1.0


def test_icc_unknown_name():
    with pytest.raises(ValueError):
        icc_profile("xyz-d65")


def test_icc_module_imports_no_torch():
    code = ("import sys, ispcli.io.icc; "
            "bad = {'torch', 'PIL'} & set(sys.modules); assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


@pytest.mark.parametrize("name", sorted(C.COLOR_SPACES))
def test_nonnegative_fast_path_equals_general_encode(name):
    x = torch.linspace(0, 2, 10001)
    assert torch.equal(C.encode(x, name, nonnegative=True), C.encode(x, name))
