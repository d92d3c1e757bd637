"""Minimal DNG writer and colour-tag reader (numpy + tifffile only).

The writer exists for tests, benchmarks and synthetic training/eval data: it writes one
uncompressed 16-bit raw IFD (IFD0, NewSubfileType 0) that LibRaw/rawpy reads back bit-exactly.
16 bits per sample on purpose: packed 12/14-bit writers (PiDNG's 14-bit path) corrupt data.

What LibRaw 0.22 (rawpy 0.28) does with the tags written here (verified in tests/test_dng.py):
  raw_image            == data (CFA) / raw_image[..., :3] == data (LinearRaw, raw_type Stack)
  raw_pattern          CFAPattern with colour indices R=0 G=1 B=2 and the green that sits on
                       the *second* row of the 2x2 tile reported as 3 (color_desc b'RGBG'):
                       RGGB [[0,1],[3,2]], BGGR [[2,3],[1,0]], GRBG [[1,0],[2,3]], GBRG [[3,2],[0,1]]
  black_level_per_channel[raw_pattern[i, j]] == BlackLevel[2*i + j]  (BlackLevelRepeatDim 2x2)
  white_level          == WhiteLevel
  camera_whitebalance  == [1/n_R, 1/n_G, 1/n_B, 0] for AsShotNeutral n (not renormalised);
                       LinearRaw with unequal channel blacks b: (1/n_c)*(W - min b)/(W - b_c)
  color_matrix (3x4)   == [inv(C), 0] with C = rownorm(CM @ XYZ_FROM_SRGB), rownorm making
                       each row sum to 1; CM is the ColorMatrix whose CalibrationIlluminant is
                       D65 (else Daylight/D55/D75/D50/Flash, else ColorMatrix2 as last parsed),
                       pre-multiplied by diag(AnalogBalance)·CameraCalibration when present
  daylight_whitebalance == [1/rowsum(CM @ XYZ_FROM_SRGB), 0]  (LibRaw's pre_mul)
  rgb_xyz_matrix       is NOT taken from the DNG: LibRaw fills it only from its built-in
                       adobe_coeff table keyed on Make/Model (unscaled, /10000), so it is all
                       zero for make="ispcli" (and for Magic Lantern's "Canon EOS Kiss X4").
                       Read ColorMatrix1/2 with read_dng_color_tags() instead.
  sizes.flip           == "50132467"[orientation] (1->0, 2->1, 3->3, 4->2, 5->4, 6->6, 7->7, 8->5)
  other.iso_speed etc. come from the Exif sub-IFD (LibRaw ignores ISO in IFD0).
"""
from __future__ import annotations

import datetime as _dt
import os
import secrets
import struct
from fractions import Fraction
from pathlib import Path

import numpy as np

# linear sRGB (D65) -> CIE XYZ, the constant LibRaw calls xyz_rgb.
XYZ_FROM_SRGB = np.array([[0.4124564, 0.3575761, 0.1804375],
                          [0.2126729, 0.7151522, 0.0721750],
                          [0.0193339, 0.1191920, 0.9503041]])

# CFAPattern bytes (0=R, 1=G, 2=B) of the 2x2 tile in row-major order.
CFA_PATTERNS = {"RGGB": (0, 1, 1, 2), "BGGR": (2, 1, 1, 0), "GRBG": (1, 0, 2, 1), "GBRG": (1, 2, 0, 1)}

_BYTE, _ASCII, _SHORT, _LONG, _RATIONAL, _UNDEFINED, _SRATIONAL = 1, 2, 3, 4, 5, 7, 10
_EXIF_IFD = 34665
# tifffile refuses to write tag 34665, so IFD0 gets this unassigned neighbour code (same sort
# position) and _append_exif_ifd renames it once the Exif IFD exists.
_EXIF_PLACEHOLDER = 34664

_COLOR_TAGS = {  # name -> tag code
    "ColorMatrix1": 50721, "ColorMatrix2": 50722, "CameraCalibration1": 50723,
    "CameraCalibration2": 50724, "AnalogBalance": 50727, "AsShotNeutral": 50728,
    "AsShotWhiteXY": 50729, "BaselineExposure": 50730, "CalibrationIlluminant1": 50778,
    "CalibrationIlluminant2": 50779, "ForwardMatrix1": 50964, "ForwardMatrix2": 50965,
}


def _rationals(values, signed: bool) -> list[int]:
    # Best rational approximation keeps 4-decimal Adobe matrices exact and others within 1e-6.
    out: list[int] = []
    for v in np.ravel(np.asarray(values, dtype=np.float64)):
        if not np.isfinite(v) or abs(v) >= 2000 or (v < 0 and not signed):
            raise ValueError(f"value {v} cannot be stored as a DNG {'S' if signed else ''}RATIONAL")
        f = Fraction(float(v)).limit_denominator(1_000_000)
        out += [f.numerator, f.denominator]
    return out


def _levels_tag(code: int, values) -> tuple:
    # LONG when integral (what cameras write), RATIONAL otherwise (sub-DN black levels).
    vals = np.atleast_1d(np.asarray(values, dtype=np.float64))
    if np.all(vals == np.round(vals)) and vals.min() >= 0:
        return (code, _LONG, vals.size, tuple(int(v) for v in vals), True)
    return (code, _RATIONAL, vals.size, _rationals(vals, signed=False), True)


def _exif_datetime(value) -> str:
    if isinstance(value, (_dt.datetime, _dt.date)):
        return value.strftime("%Y:%m:%d %H:%M:%S")
    return str(value)


def _exif_entries(iso, exposure_time, f_number, focal_length, datetime) -> list[tuple]:
    entries = [(36864, _UNDEFINED, 4, b"0230")]  # ExifVersion; readers expect it
    if exposure_time is not None:
        entries.append((33434, _RATIONAL, 1, _rationals([exposure_time], False)))
    if f_number is not None:
        entries.append((33437, _RATIONAL, 1, _rationals([f_number], False)))
    if iso is not None:  # SHORT by the EXIF spec; saturates like cameras do above 65535
        entries.append((34855, _SHORT, 1, [min(int(round(iso)), 65535)]))
    if datetime is not None:
        text = _exif_datetime(datetime).encode("ascii")[:19] + b"\0"
        entries.append((36867, _ASCII, len(text), text))
    if focal_length is not None:
        entries.append((37386, _RATIONAL, 1, _rationals([focal_length], False)))
    return entries


def _pack_value(bo: str, dtype: int, value) -> bytes:
    if dtype in (_ASCII, _UNDEFINED, _BYTE):
        return bytes(value)
    fmt = {_SHORT: "H", _LONG: "I", _RATIONAL: "I", _SRATIONAL: "i"}[dtype]
    return struct.pack(f"{bo}{len(value)}{fmt}", *value)


def _append_exif_ifd(path: str, entries: list[tuple]) -> None:
    """Append an Exif IFD at the end of the file and turn IFD0's placeholder into ExifTag.

    tifffile cannot write an Exif sub-IFD, and LibRaw only reads ISO from one.
    """
    with open(path, "r+b") as fh:
        head = fh.read(8)
        bo = "<" if head[:2] == b"II" else ">"
        (ifd0,) = struct.unpack(bo + "I", head[4:8])
        fh.seek(ifd0)
        (count,) = struct.unpack(bo + "H", fh.read(2))
        table = fh.read(12 * count)
        slot = None
        for i in range(count):
            (code,) = struct.unpack(bo + "H", table[12 * i:12 * i + 2])
            if code == _EXIF_PLACEHOLDER:
                slot = ifd0 + 2 + 12 * i
        if slot is None:
            raise RuntimeError("Exif placeholder tag missing from IFD0")
        fh.seek(0, os.SEEK_END)
        start = fh.tell() + (fh.tell() & 1)  # TIFF offsets must be word aligned
        entries = sorted(entries)
        data_at = start + 2 + 12 * len(entries) + 4
        ifd, blob = struct.pack(bo + "H", len(entries)), b""
        for code, dtype, n, value in entries:
            raw = _pack_value(bo, dtype, value)
            if len(raw) <= 4:
                field = raw.ljust(4, b"\0")
            else:
                field = struct.pack(bo + "I", data_at + len(blob))
                blob += raw + b"\0" * (len(raw) & 1)
            ifd += struct.pack(bo + "HHI", code, dtype, n) + field
        ifd += b"\0\0\0\0"
        fh.write(b"\0" * (start - fh.tell()) + ifd + blob)
        fh.seek(slot)
        fh.write(struct.pack(bo + "HHII", _EXIF_IFD, _LONG, 1, start))


def write_dng(path, data, *, cfa: str = "RGGB", black_level=0, white_level=65535,
              color_matrix1=None, calibration_illuminant1: int = 21, color_matrix2=None,
              calibration_illuminant2: int | None = None, as_shot_neutral=None,
              orientation: int = 1, make: str = "ispcli", model: str = "Synthetic",
              unique_camera_model: str | None = None, iso=None, exposure_time=None,
              f_number=None, focal_length=None, datetime=None, baseline_exposure=None) -> Path:
    """Write `data` as an uncompressed 16-bit DNG, atomically (temp file + os.replace).

    data: uint16 (H, W) Bayer mosaic in `cfa` order -> CFA DNG, or (H, W, 3) camera RGB ->
    LinearRaw DNG. black_level: scalar, or one value per 2x2 CFA position in row-major
    order (CFA) / per channel (LinearRaw). color_matrix1/2: 3x3 XYZ->camera (DNG ColorMatrix);
    None writes the XYZ->linear-sRGB matrix, i.e. a "camera" whose native space is linear
    sRGB. as_shot_neutral: camera-space neutral (1/WB gain), omitted when None.
    exposure_time in seconds; datetime as datetime or "YYYY:MM:DD HH:MM:SS".
    LibRaw rejects images smaller than 22x22 pixels, whatever the file says.
    """
    import tifffile

    arr = np.asarray(data)
    if arr.dtype != np.uint16:
        if arr.dtype.kind not in "iu" or arr.size and (arr.min() < 0 or arr.max() > 65535):
            raise ValueError(f"data must be uint16 (got {arr.dtype})")
        arr = arr.astype(np.uint16)
    if arr.ndim == 2:
        if cfa.upper() not in CFA_PATTERNS:
            raise ValueError(f"cfa must be one of {sorted(CFA_PATTERNS)}, got {cfa!r}")
        photometric, nblack = 32803, 4
    elif arr.ndim == 3 and arr.shape[2] == 3:
        photometric, nblack = 34892, 3
    else:
        raise ValueError(f"data must be (H, W) or (H, W, 3), got {arr.shape}")
    if not 1 <= int(orientation) <= 8:
        raise ValueError("orientation must be 1..8 (TIFF/EXIF Orientation)")
    black = np.broadcast_to(np.asarray(black_level, dtype=np.float64), (nblack,))
    cm1 = np.linalg.inv(XYZ_FROM_SRGB) if color_matrix1 is None else np.asarray(color_matrix1, float)
    if cm1.shape != (3, 3):
        raise ValueError("color_matrix1 must be 3x3 (XYZ -> camera)")

    ucm = unique_camera_model or f"{make} {model}"
    tags = [
        (271, _ASCII, 0, make, True), (272, _ASCII, 0, model, True),
        (274, _SHORT, 1, int(orientation), True),
        (50706, _BYTE, 4, (1, 4, 0, 0), True), (50707, _BYTE, 4, (1, 1, 0, 0), True),
        (50708, _ASCII, 0, ucm, True),
        (50713, _SHORT, 2, (2, 2) if nblack == 4 else (1, 1), True),
        _levels_tag(50714, black),
        _levels_tag(50717, np.broadcast_to(white_level, (1 if nblack == 4 else 3,))),
        (50721, _SRATIONAL, 9, _rationals(cm1, True), True),
        (50778, _SHORT, 1, int(calibration_illuminant1), True),
        (_EXIF_PLACEHOLDER, _LONG, 1, 0, True),
    ]
    if photometric == 32803:
        tags += [(33421, _SHORT, 2, (2, 2), True),
                 (33422, _BYTE, 4, CFA_PATTERNS[cfa.upper()], True),
                 (50710, _BYTE, 3, (0, 1, 2), True), (50711, _SHORT, 1, 1, True)]
    if color_matrix2 is not None:
        if calibration_illuminant2 is None:
            raise ValueError("color_matrix2 needs calibration_illuminant2")
        cm2 = np.asarray(color_matrix2, float).reshape(3, 3)
        tags += [(50722, _SRATIONAL, 9, _rationals(cm2, True), True),
                 (50779, _SHORT, 1, int(calibration_illuminant2), True)]
    if as_shot_neutral is not None:
        tags.append((50728, _RATIONAL, 3, _rationals(np.reshape(as_shot_neutral, 3), False), True))
    if baseline_exposure is not None:
        tags.append((50730, _SRATIONAL, 1, _rationals([baseline_exposure], True), True))

    path = Path(path)
    # os.open with 0o666 (not mkstemp's 0o600) so the result gets the usual umask permissions.
    tmp = str(path.parent / f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
    try:
        with tifffile.TiffWriter(tmp, byteorder="<", bigtiff=False) as tw:
            # Software must not start with "Adobe"/"dcraw": LibRaw then refuses the file as raw.
            tw.write(arr, photometric=photometric, planarconfig="contig" if arr.ndim == 3 else None,
                     subfiletype=0, rowsperstrip=arr.shape[0], compression=None,
                     software="ispcli", metadata=None,
                     datetime=_exif_datetime(datetime) if datetime is not None else None,
                     extratags=tags)
        _append_exif_ifd(tmp, _exif_entries(iso, exposure_time, f_number, focal_length, datetime))
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def _tag_values(tag) -> np.ndarray:
    value = tag.value
    if int(tag.dtype) in (_RATIONAL, _SRATIONAL):
        pairs = np.asarray(value, dtype=np.float64).reshape(-1, 2)
        # 0/0 is a writer's "zero" (Magic Lantern's BaselineExposure); x/0 stays invalid (nan).
        num, den = pairs[:, 0], pairs[:, 1]
        out = np.full(num.shape, np.nan)
        np.divide(num, den, out=out, where=den != 0)
        out[(den == 0) & (num == 0)] = 0.0
        return out
    if isinstance(value, bytes):
        return np.frombuffer(value, dtype=np.uint8).astype(np.float64)
    return np.atleast_1d(np.asarray(value, dtype=np.float64))


def _shape_color_tag(name: str, v: np.ndarray):
    if name.startswith("CalibrationIlluminant"):
        return int(v[0])
    if name == "BaselineExposure":
        return float(v[0])
    if name.startswith("ColorMatrix"):  # rows: camera planes
        return v.reshape(-1, 3)
    if name.startswith("ForwardMatrix"):  # rows: XYZ
        return v.reshape(3, -1)
    if name.startswith("CameraCalibration"):
        n = int(round(np.sqrt(v.size)))
        return v.reshape(n, n)
    return v


def read_dng_color_tags(path) -> dict:
    """Colour tags straight from a DNG's TIFF tags; {} for anything that is not a DNG.

    Values are numpy float64 arrays (ColorMatrix* (planes, 3), ForwardMatrix* (3, planes),
    CameraCalibration* (n, n), AsShotNeutral, AsShotWhiteXY, AnalogBalance 1-D), except
    CalibrationIlluminant* (int) and BaselineExposure (float); None where absent. Tags in the
    raw IFD (NewSubfileType 0, possibly a SubIFD) override IFD0, as the DNG spec allows.
    Exists because rawpy's rgb_xyz_matrix ignores these tags (see module docstring).
    """
    import tifffile

    if not Path(path).exists():
        raise FileNotFoundError(path)
    try:
        with tifffile.TiffFile(path) as tif:
            ifd0 = tif.pages[0]
            if 50706 not in ifd0.tags:  # DNGVersion
                return {}
            ifds = [ifd0] + [p for p in (getattr(ifd0, "pages", None) or [])]
            ifds += list(tif.pages)[1:]
            raw = [p for p in ifds[1:] if int(getattr(p, "subfiletype", 1) or 0) == 0]
            found: dict = {}
            for page in [ifd0] + raw[:1]:
                for name, code in _COLOR_TAGS.items():
                    tag = page.tags.get(code)
                    if tag is not None:
                        found[name] = _shape_color_tag(name, _tag_values(tag))
    except Exception:  # any parse failure means "not a DNG we can read", never an error
        return {}
    return {name: found.get(name) for name in _COLOR_TAGS}
