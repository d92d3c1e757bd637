"""Writing outputs: pixels encoded straight into the temporary file, EXIF added to it, and a
file cut short never becoming an output."""

from __future__ import annotations

import shutil

import exifread
import numpy as np
import pyexiv2
import pytest
import tifffile

from ispcli.io import exif as exif_io
from ispcli.io import icc
from ispcli.io.images import save_image
from ispcli.io.tiff_exif import graft_exif

TAGS = {
    "Exif.Image.Make": "Canon", "Exif.Image.Model": "EOS 550D", "Exif.Image.Orientation": "1",
    "Exif.Image.Software": "ispcli test", "Exif.Image.Artist": "Zoë Ångström",
    "Exif.Photo.FNumber": "28/10", "Exif.Photo.ExposureTime": "1/200", "Exif.Photo.ISOSpeedRatings": "400",
    "Exif.Photo.DateTimeOriginal": "2020:01:01 10:00:00", "Exif.Photo.LensModel": "EF-S 18-55mm f/3.5-5.6 IS",
    "Exif.Photo.PixelXDimension": "96", "Exif.Photo.PixelYDimension": "64",
    "Exif.GPSInfo.GPSLatitudeRef": "N", "Exif.GPSInfo.GPSLatitude": "35/1 40/1 1234/100",
}
# where the two ways of writing may differ: the offsets of the directories they wrote
LAYOUT = {"Exif.Image.ExifTag", "Exif.Image.GPSTag", "Exif.Image.StripOffsets"}


def _image(dtype=np.uint16):
    top = np.iinfo(dtype).max
    return (np.random.default_rng(3).random((64, 96, 3)) * top).astype(dtype)


def _exif(path):
    with pyexiv2.Image(str(path)) as img:
        return {k: v for k, v in img.read_exif().items() if k not in LAYOUT}


@pytest.mark.parametrize("byteorder", ["<", ">"])
def test_grafted_tiff_exif_reads_as_exiv2_would_have_written_it(tmp_path, byteorder):
    image, profile = _image(), icc.icc_profile("prophoto")
    grafted, rewritten = tmp_path / "g.tif", tmp_path / "r.tif"
    tifffile.imwrite(grafted, image, photometric="rgb", byteorder=byteorder, software=False, metadata=None,
                     extratags=[(34675, 7, len(profile), profile, True)])
    shutil.copy(grafted, rewritten)
    assert graft_exif(grafted, TAGS)
    with pyexiv2.Image(str(rewritten)) as img:
        img.modify_exif(TAGS)
    assert _exif(grafted) == _exif(rewritten)
    assert _exif(grafted)["Exif.Photo.FNumber"] == "28/10"
    with tifffile.TiffFile(grafted) as tf:
        np.testing.assert_array_equal(tf.pages[0].asarray(), image)
        assert bytes(tf.pages[0].tags[34675].value) == profile
    with open(grafted, "rb") as fh:
        tags = exifread.process_file(fh, details=False)
    assert str(tags["Image Make"]) == "Canon" and str(tags["EXIF ISOSpeedRatings"]) == "400"
    assert str(tags["GPS GPSLatitude"]) == "[35, 40, 617/50]"


def test_graft_leaves_other_files_to_exiv2(tmp_path):
    path = tmp_path / "x.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(100))
    before = path.read_bytes()
    assert not graft_exif(path, TAGS)
    assert path.read_bytes() == before


@pytest.mark.parametrize("fmt, bits", [("tif", 16), ("tif", 8), ("png", 16), ("png", 8), ("jpg", 8)])
def test_saved_images_carry_pixels_icc_and_exif(tmp_path, fmt, bits):
    image = _image(np.uint16 if bits == 16 else np.uint8)
    out = tmp_path / f"out.{fmt}"
    save_image(out, image, fmt, quality=95, icc=icc.icc_profile("display-p3"), exif=TAGS, overwrite=False)
    assert [p.name for p in tmp_path.iterdir()] == [out.name]          # no temporary file left
    tags = _exif(out)
    assert {k: tags[k] for k in ("Exif.Image.Make", "Exif.Photo.ExposureTime", "Exif.GPSInfo.GPSLatitude")} == \
        {k: TAGS[k] for k in ("Exif.Image.Make", "Exif.Photo.ExposureTime", "Exif.GPSInfo.GPSLatitude")}
    with pyexiv2.Image(str(out)) as img:
        assert img.read_icc() == icc.icc_profile("display-p3")
    if fmt != "jpg":
        from ispcli.io.images import read_image

        np.testing.assert_array_equal(read_image(out)[0], image)


def test_a_file_exiv2_cut_short_is_refused_and_never_becomes_an_output(tmp_path, monkeypatch):
    """Exiv2 rewrites JPEG and PNG files in place and says nothing when the disk fills meanwhile."""
    def cut_short(meta, tags):
        real(meta, tags)
        path = meta_paths[-1]
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2])

    real, meta_paths = exif_io._modify, []
    real_image = pyexiv2.Image

    def image(path, *a, **k):
        from pathlib import Path

        meta_paths.append(Path(path))
        return real_image(path, *a, **k)

    monkeypatch.setattr(exif_io, "_modify", cut_short)
    monkeypatch.setattr(pyexiv2, "Image", image)
    out = tmp_path / "out.jpg"
    with pytest.raises(Exception, match="cut short|No space"):
        save_image(out, _image(np.uint8), "jpg", exif=TAGS, overwrite=False)
    assert list(tmp_path.iterdir()) == []
