"""Every real camera file in ../shared/data/raw develops, with LibRaw's dimensions and colours."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import SHARED_RAWS, requires_shared

from ispcli.io.raw import read_raw
from ispcli.pipeline.jobs import develop_array
from ispcli.recipe import Recipe

FILES = sorted(p.name for p in SHARED_RAWS.glob("*") if p.suffix != ".tsv") if SHARED_RAWS.is_dir() else []
# files whose metadata LibRaw reads correctly, so its render is a fair colour reference
LIBRAW_TRUSTED = {"canon_eos_30d.cr2", "sony_ilce7rm3_compressed.arw", "fujifilm_xh1_smartpreview_a.dng",
                  "fujifilm_xh1_smartpreview_b.dng"}


def _small(img: np.ndarray, size: int = 48) -> np.ndarray:
    h, w = img.shape[:2]
    k = max(1, min(h, w) // size)
    img = img[: h // k * k, : w // k * k].astype(np.float64)
    return img.reshape(h // k, k, w // k, k, 3).mean((1, 3))


@requires_shared
@pytest.mark.parametrize("name", FILES)
def test_real_raw_develops_like_libraw(name):
    import rawpy

    raw = read_raw(SHARED_RAWS / name)
    image, analysis = develop_array(raw, Recipe(look="neutral", format="tif", bits=16, highlights="clip"))
    with rawpy.imread(str(SHARED_RAWS / name)) as r:
        ref = r.postprocess(use_camera_wb=True, no_auto_bright=True, output_bps=16, gamma=(2.4, 12.92))
    assert image.shape == ref.shape, "dimensions (and orientation) must match LibRaw's render"
    assert np.isfinite(image).all() and image.max() > 0
    ours = _small(image / 65535.0)
    if name in LIBRAW_TRUSTED:
        theirs = _small(ref / 65535.0)
        lin = lambda v: np.where(v <= 0.04045, v / 12.92, ((v + 0.055) / 1.055) ** 2.4)  # noqa: E731
        a, b = lin(ours), lin(theirs)
        gain = (a * b).sum() / (a * a).sum()
        chroma = lambda v: v / v.sum(-1, keepdims=True).clip(1e-6)  # noqa: E731
        mask = (b.sum(-1) > 0.02) & (b.max(-1) < 0.95)
        assert 0.25 < gain < 4.0
        assert np.abs(chroma(a * gain) - chroma(b))[mask].mean() < 0.02
    # never a magenta cast: the average picture is not far from neutral in green
    m = ours.reshape(-1, 3).mean(0)
    assert m[1] > 0.6 * min(m[0], m[2])


@requires_shared
def test_broken_metadata_is_handled_with_warnings():
    dng = read_raw(SHARED_RAWS / "canon_eos_550d_magiclantern.dng")
    assert dng.matrix_source == "dng" and dng.warnings == []
    d30 = read_raw(SHARED_RAWS / "canon_eos_d30.crw")
    assert d30.wb_camera is None and any("white balance" in w for w in d30.warnings)
    kdc = read_raw(SHARED_RAWS / "kodak_dc50.kdc")
    assert kdc.matrix_source == "none" and kdc.cfa_name == "GRBG"
    c330 = read_raw(SHARED_RAWS / "kodak_c330_yrgb.raw")
    assert c330.kind == "linear" and c330.data.shape == (912, 1216, 3)
    arw = read_raw(SHARED_RAWS / "sony_ilce7rm3_compressed.arw")
    assert arw.cfa_name == "RGGB" and arw.black.tolist() == [[512, 512], [512, 512]]


@requires_shared
def test_shot_data_from_libraw_fills_what_exifread_cannot_read():
    d30 = read_raw(SHARED_RAWS / "canon_eos_d30.crw")  # CRW: exifread reads nothing
    assert (d30.exif.iso, d30.exif.f_number, d30.exif.focal_length) == (100, 5.6, 31.0)
    assert d30.exif.datetime == "2018:01:01 13:03:32"
    assert d30.exif.tags["Exif.Photo.ISOSpeedRatings"] == "100"
    ml = read_raw(SHARED_RAWS / "canon_eos_550d_magiclantern.dng")  # zeros mean "not recorded"
    assert (ml.exif.f_number, ml.exif.exposure_time, ml.exif.datetime) == (None, None, None)
