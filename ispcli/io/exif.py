"""EXIF in and out: read a raw's tags with exifread, carry the useful ones to every output.

Reading keeps a small, typed summary (`ExifSummary`) for `info`, naming templates and
sidecars; writing maps the same tags to Exiv2 keys so JPEG, PNG and TIFF all get them.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from pathlib import Path

# exifread name → Exiv2 key; the set photographers expect to survive development.
CARRIED_TAGS = {
    "Image Make": "Exif.Image.Make",
    "Image Model": "Exif.Image.Model",
    "Image Artist": "Exif.Image.Artist",
    "Image Copyright": "Exif.Image.Copyright",
    "EXIF DateTimeOriginal": "Exif.Photo.DateTimeOriginal",
    "EXIF DateTimeDigitized": "Exif.Photo.DateTimeDigitized",
    "EXIF ExposureTime": "Exif.Photo.ExposureTime",
    "EXIF FNumber": "Exif.Photo.FNumber",
    "EXIF ISOSpeedRatings": "Exif.Photo.ISOSpeedRatings",
    "EXIF FocalLength": "Exif.Photo.FocalLength",
    "EXIF FocalLengthIn35mmFilm": "Exif.Photo.FocalLengthIn35mmFilm",
    "EXIF ExposureBiasValue": "Exif.Photo.ExposureBiasValue",
    "EXIF ExposureProgram": "Exif.Photo.ExposureProgram",
    "EXIF MeteringMode": "Exif.Photo.MeteringMode",
    "EXIF Flash": "Exif.Photo.Flash",
    "EXIF LensModel": "Exif.Photo.LensModel",
    "EXIF LensMake": "Exif.Photo.LensMake",
    "EXIF BodySerialNumber": "Exif.Photo.BodySerialNumber",
}
GPS_TAGS = {
    "GPS GPSLatitudeRef": "Exif.GPSInfo.GPSLatitudeRef",
    "GPS GPSLatitude": "Exif.GPSInfo.GPSLatitude",
    "GPS GPSLongitudeRef": "Exif.GPSInfo.GPSLongitudeRef",
    "GPS GPSLongitude": "Exif.GPSInfo.GPSLongitude",
    "GPS GPSAltitudeRef": "Exif.GPSInfo.GPSAltitudeRef",
    "GPS GPSAltitude": "Exif.GPSInfo.GPSAltitude",
    "GPS GPSTimeStamp": "Exif.GPSInfo.GPSTimeStamp",
    "GPS GPSDate": "Exif.GPSInfo.GPSDateStamp",
}
_ASCII_KEYS = {"Exif.Image.Make", "Exif.Image.Model", "Exif.Image.Artist", "Exif.Image.Copyright",
               "Exif.Photo.DateTimeOriginal", "Exif.Photo.DateTimeDigitized", "Exif.Photo.LensModel",
               "Exif.Photo.LensMake", "Exif.Photo.BodySerialNumber", "Exif.GPSInfo.GPSLatitudeRef",
               "Exif.GPSInfo.GPSLongitudeRef", "Exif.GPSInfo.GPSDateStamp"}


@dataclass
class ExifSummary:
    """What ispcli knows of a shot, as plain values (None when the file does not say)."""

    make: str | None = None
    model: str | None = None
    lens: str | None = None
    datetime: str | None = None
    exposure_time: str | None = None
    f_number: float | None = None
    iso: int | None = None
    focal_length: float | None = None
    orientation: int | None = None
    gps: bool = False
    # Exiv2 key → value string, ready to write into an output
    tags: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict:
        d = asdict(self)
        d.pop("tags")
        return d


def _clean(text: str) -> str:
    return str(text).replace("\x00", "").strip()


def _to_exiv2(key: str, tag) -> str | None:
    """Render an exifread tag as the string Exiv2 expects for `key`."""
    if key in _ASCII_KEYS:
        text = _clean(tag.printable if not isinstance(tag.values, str) else tag.values)
        return text or None
    values = tag.values if isinstance(tag.values, list) else [tag.values]
    parts = []
    for v in values:
        if isinstance(v, int):
            parts.append(str(v))
        elif isinstance(v, Fraction) or hasattr(v, "denominator"):
            num, den = int(v.numerator), int(v.denominator)
            if den == 0:
                return None
            parts.append(f"{num}/{den}")
        elif isinstance(v, (int, float)):
            parts.append(str(int(v)) if float(v).is_integer() else str(v))
        else:
            return None
    return " ".join(parts) if parts else None


def _first_number(tag) -> float | None:
    try:
        v = tag.values[0] if isinstance(tag.values, list) else tag.values
        return float(v)
    except (TypeError, ValueError, ZeroDivisionError, IndexError):
        return None


def read_exif(path: str | Path) -> ExifSummary:
    """Read the EXIF of a raw (or any TIFF/JPEG); a file with none gives an empty summary."""
    import exifread

    # exifread logs parse problems of odd makernotes at WARNING; they are not the user's concern
    logging.getLogger("exifread").setLevel(logging.CRITICAL)
    try:
        with open(path, "rb") as fh:
            tags = exifread.process_file(fh, details=False, extract_thumbnail=False)
    except Exception:  # exifread raises a zoo of errors on non-TIFF input
        return ExifSummary()
    out = ExifSummary()
    for name, key in {**CARRIED_TAGS, **GPS_TAGS}.items():
        tag = tags.get(name)
        if tag is None:
            continue
        try:
            value = _to_exiv2(key, tag)
        except Exception:
            value = None
        if value:
            out.tags[key] = value
    # Zero or empty values mean "not recorded" (Magic Lantern writes ExposureTime 0, for one).
    for key in ("Exif.Photo.ExposureTime", "Exif.Photo.FNumber", "Exif.Photo.FocalLength",
                "Exif.Photo.ISOSpeedRatings", "Exif.Photo.DateTimeOriginal"):
        if out.tags.get(key, "x").split("/")[0] in ("", "0"):
            out.tags.pop(key)
    out.gps = any(k.startswith("Exif.GPSInfo") for k in out.tags)
    out.make = out.tags.get("Exif.Image.Make")
    out.model = out.tags.get("Exif.Image.Model")
    out.lens = out.tags.get("Exif.Photo.LensModel")
    out.datetime = out.tags.get("Exif.Photo.DateTimeOriginal") or (
        _clean(tags["Image DateTime"].printable) if "Image DateTime" in tags else None) or None
    if "Exif.Photo.ExposureTime" in out.tags:
        out.exposure_time = _clean(tags["EXIF ExposureTime"].printable)
    if "Exif.Photo.FNumber" in out.tags:
        out.f_number = _first_number(tags["EXIF FNumber"])
    if "Exif.Photo.FocalLength" in out.tags:
        out.focal_length = _first_number(tags["EXIF FocalLength"])
    for iso_name in ("EXIF ISOSpeedRatings", "Image ISOSpeedRatings", "EXIF PhotographicSensitivity"):
        if iso_name in tags:
            iso = _first_number(tags[iso_name])
            out.iso = int(iso) if iso and iso > 0 else None
            break
    if "Image Orientation" in tags:
        o = _first_number(tags["Image Orientation"])
        out.orientation = int(o) if o and 1 <= o <= 8 else None
    return out


def output_tags(summary: ExifSummary, *, gps: bool, width: int, height: int, software: str) -> dict:
    """The Exiv2 tags to write into a developed image: carried tags, corrected geometry."""
    tags = {k: v for k, v in summary.tags.items() if gps or not k.startswith("Exif.GPSInfo")}
    # Orientation is baked into the pixels, so the output must say "as stored".
    tags["Exif.Image.Orientation"] = "1"
    tags["Exif.Photo.PixelXDimension"] = str(width)
    tags["Exif.Photo.PixelYDimension"] = str(height)
    tags["Exif.Image.Software"] = software
    return tags


# ---- images in, images out (denoise, demosaic --cfa) --------------------------------------------

# Tags that say how a file stores its pixels, or point to other directories: they belong to the
# file being written (its encoder and Exiv2 set them), never to the one that was read.
_STRUCTURE_TAGS = {
    "Exif.Image." + t for t in (
        "NewSubfileType", "SubfileType", "ImageWidth", "ImageLength", "BitsPerSample", "Compression",
        "PhotometricInterpretation", "Thresholding", "FillOrder", "StripOffsets", "SamplesPerPixel",
        "RowsPerStrip", "StripByteCounts", "PlanarConfiguration", "Predictor", "ColorMap", "TileWidth",
        "TileLength", "TileOffsets", "TileByteCounts", "SubIFDs", "ExtraSamples", "SampleFormat",
        "SMinSampleValue", "SMaxSampleValue", "JPEGTables", "JPEGProc", "JPEGInterchangeFormat",
        "JPEGInterchangeFormatLength", "YCbCrCoefficients", "YCbCrSubSampling", "YCbCrPositioning",
        "XMLPacket", "InterColorProfile", "ExifTag", "GPSTag", "ImageResources", "IPTCNAA")
} | {"Exif.Photo.InteroperabilityTag", "Exif.Photo.MakerNote"}
_IMAGE_GROUPS = ("Exif.Image.", "Exif.Photo.", "Exif.GPSInfo.", "Exif.Iop.")


def read_image_exif(path: str | Path) -> dict[str, str]:
    """The EXIF of a JPEG/PNG/TIFF as Exiv2 key → value, without the storage-layout tags,
    thumbnails and maker notes (their offsets are only valid in the original file).
    A file without EXIF, or with EXIF Exiv2 cannot parse, gives {}."""
    import pyexiv2

    pyexiv2.set_log_level(4)  # Exiv2's warnings about odd files are not the user's concern
    tags: dict[str, str] = {}
    for encoding in ("utf-8", "ISO-8859-1"):
        try:
            with pyexiv2.Image(str(path)) as img:
                tags = img.read_exif(encoding=encoding)
            break
        except UnicodeDecodeError:
            continue
        except Exception:
            return {}
    return {k: v for k, v in tags.items()
            if k.startswith(_IMAGE_GROUPS) and k not in _STRUCTURE_TAGS and isinstance(v, str)}


def image_output_tags(tags: dict[str, str], *, width: int, height: int, software: str) -> dict[str, str]:
    """An input image's tags for its processed copy: all carried, Orientation untouched
    (the pixels are not turned), pixel dimensions and Software set."""
    out = dict(tags)
    out["Exif.Photo.PixelXDimension"] = str(width)
    out["Exif.Photo.PixelYDimension"] = str(height)
    out["Exif.Image.Software"] = software
    return out


def _modify(meta, tags: dict[str, str]) -> None:
    """Add `tags` to an open Exiv2 image. A tag Exiv2 refuses to write is left out rather than
    costing the file: the rest of the metadata still arrives."""
    try:
        meta.modify_exif(tags)
    except Exception:
        for key, value in tags.items():
            try:
                meta.modify_exif({key: value})
            except Exception:
                continue


def write_tags(data: bytes, tags: dict[str, str]) -> bytes:
    """`data` (an encoded JPEG/PNG/TIFF) with `tags` added."""
    import pyexiv2

    if not tags:
        return data
    pyexiv2.set_log_level(4)
    meta = pyexiv2.ImageData(data)
    try:
        _modify(meta, tags)
        return meta.get_bytes()
    finally:
        meta.close()


def write_file_tags(path: str | Path, tags: dict[str, str]) -> None:
    """Add `tags` to the JPEG/PNG/TIFF file at `path`: a TIFF gets them appended (its pixels
    stay where they are, see `tiff_exif`), other files are rewritten in place by Exiv2."""
    import errno
    import os

    import pyexiv2

    from ispcli.io.tiff_exif import graft_exif

    if graft_exif(path, tags):
        return
    pyexiv2.set_log_level(4)
    try:
        meta = pyexiv2.Image(str(path))
    except Exception as exc:
        raise OSError(errno.EIO, f"Exiv2 cannot reopen the encoded file ({exc})") from None
    try:
        _modify(meta, tags)
    finally:
        meta.close()
    # Exiv2 rewrites the file and says nothing when the disk fills meanwhile: the file is then
    # cut short, so its last part is checked before it may become an output
    if not _complete(Path(path)):
        full = os.statvfs(os.path.dirname(os.path.abspath(path))).f_bavail == 0
        raise OSError(errno.ENOSPC if full else errno.EIO,
                      "No space left on device" if full else "the file was cut short while adding EXIF")


def _complete(path: Path) -> bool:
    """Whether a JPEG/PNG/TIFF file ends where its own structure says it does."""
    size = path.stat().st_size
    with open(path, "rb") as fh:
        head = fh.read(4)
        fh.seek(max(0, size - 12))
        tail = fh.read()
    if head[:2] == b"\xff\xd8":
        return tail.endswith(b"\xff\xd9")
    if head == b"\x89PNG":
        return tail.endswith(b"IEND\xaeB`\x82")
    import tifffile

    try:
        with tifffile.TiffFile(path) as tf:
            ends = [off + n for page in tf.pages for off, n in zip(page.dataoffsets, page.databytecounts)]
    except Exception:
        return False
    return bool(ends) and max(ends) <= size
