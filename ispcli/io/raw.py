"""`RawImage`: the sensor data of one file plus everything needed to develop it.

LibRaw (through rawpy) decodes; ispcli then reads what LibRaw leaves out or gets wrong from
the file's own tags. Real files lie, so every piece of metadata is checked and, when it is
unusable, replaced by a documented fallback with a one-line warning (never a crash, never a
magenta picture). Numpy only: `ispcli info` must not pay for torch.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ispcli.io.camera_color import interpolate_color_matrix, is_usable_matrix
from ispcli.io.errors import RawReadError
from ispcli.io.exif import ExifSummary, read_exif
from ispcli.isp.colorspaces import (
    SRGB_TO_XYZ,  # numpy only: torch stays unloaded for `info`
)

# LibRaw's `flip` → EXIF Orientation (dcraw bits: 1 mirror x, 2 mirror y, 4 transpose).
_FLIP_TO_ORIENTATION = {0: 1, 1: 2, 2: 4, 3: 3, 4: 5, 5: 8, 6: 6, 7: 7}
# D65 white in XYZ (Y = 1): what a daylight-balanced camera sees as neutral.
XYZ_D65 = SRGB_TO_XYZ.sum(axis=1)
DEFAULT_MAX_MEGAPIXELS = 500.0
CFA_LETTERS = "RGB"


@dataclass
class RawImage:
    """Sensor data (visible area) and metadata of one raw file.

    `data` is (H, W) for a mosaic or (H, W, 3) for a linear (already demosaicked) raw, in
    sensor counts. `cfa` is the (2, 2) or (6, 6) colour-index pattern (0=R, 1=G, 2=B)
    anchored at the top-left pixel of `data`; `black` is a per-CFA-site (or per-channel,
    for linear raws) black level in the same units as `white`.
    """

    path: str
    kind: str  # 'bayer' | 'xtrans' | 'linear'
    data: np.ndarray
    cfa: np.ndarray | None
    black: np.ndarray
    white: float
    wb_camera: np.ndarray | None  # as-shot multipliers, G = 1
    wb_daylight: np.ndarray | None
    xyz_to_cam: np.ndarray  # always usable; see `matrix_source`
    matrix_source: str
    orientation: int = 1
    baseline_exposure: float = 0.0
    exif: ExifSummary = field(default_factory=ExifSummary)
    warnings: list[str] = field(default_factory=list)

    @property
    def height(self) -> int:
        return int(self.data.shape[0])

    @property
    def width(self) -> int:
        return int(self.data.shape[1])

    @property
    def megapixels(self) -> float:
        return self.height * self.width / 1e6

    @property
    def cfa_name(self) -> str:
        if self.cfa is None:
            return "linear"
        if self.cfa.shape == (2, 2):
            return "".join(CFA_LETTERS[int(c)] for c in self.cfa.ravel())
        return "X-Trans"

    @property
    def camera(self) -> str:
        make = (self.exif.make or "").strip()
        model = (self.exif.model or "").strip()
        if model.lower().startswith(make.lower()):
            return model or "unknown"
        return f"{make} {model}".strip() or "unknown"


def _valid_wb(values, n: int = 3) -> np.ndarray | None:
    """Multipliers normalised to G = 1, or None when the file's values are unusable."""
    if values is None:
        return None
    v = np.asarray(list(values)[:n], dtype=np.float64)
    if v.shape != (3,) or not np.all(np.isfinite(v)) or np.any(v <= 0):
        return None
    v = v / v[1]
    if np.allclose(v, 1.0):
        return None  # "unit" WB: the file did not record one (no real sensor is neutral)
    if np.any(v > 20) or np.any(v < 0.05):
        return None
    return v


def _daylight_from_matrix(xyz_to_cam: np.ndarray) -> np.ndarray | None:
    response = xyz_to_cam @ XYZ_D65
    if np.any(response <= 0):
        return None
    return _valid_wb(1.0 / response)


_MAGIC = [(b"\xff\xd8\xff", "a JPEG image"), (b"\x89PNG", "a PNG image"), (b"GIF8", "a GIF image"),
          (b"%PDF", "a PDF document"), (b"PK\x03\x04", "a ZIP archive")]


def _sniff(path: str) -> str | None:
    """Name what a file really is when LibRaw refuses it (a JPEG renamed .dng, say)."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(8)
    except OSError:
        return None
    if not head:
        return "empty file (0 bytes)"
    for magic, what in _MAGIC:
        if head.startswith(magic):
            return f"{what}, not a raw file"
    return None


@contextlib.contextmanager
def _libraw_messages(sink: list[str]):
    """Collect what LibRaw prints on file descriptor 2 (e.g. "Unexpected end of file"), so a
    bad file is reported in one clean line of ours instead of C-level noise."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):
        yield
        return
    with tempfile.TemporaryFile() as tmp:
        os.dup2(tmp.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            tmp.seek(0)
            text = tmp.read().decode("utf-8", "replace")
            sink += [line.split(": ", 1)[-1].strip() for line in text.splitlines() if line.strip()]


def _libraw_reason(exc: Exception, messages: list[str]) -> str:
    said = "; ".join(dict.fromkeys(messages))
    if said:
        return f"truncated or damaged raw data (LibRaw: {said})"
    text = str(exc).strip("b'\"") or type(exc).__name__
    return f"damaged raw data (LibRaw: {text})"


def _open(path: str, max_megapixels: float):
    import rawpy

    messages: list[str] = []
    try:
        with _libraw_messages(messages):
            raw = rawpy.imread(path)
    except rawpy.LibRawFileUnsupportedError:
        raise RawReadError(path, _sniff(path) or "not a raw file LibRaw can decode (unsupported format)") from None
    except rawpy.LibRawIOError:
        raise RawReadError(path, _sniff(path) or "truncated or unreadable raw file (I/O error while reading)") from None
    except rawpy.LibRawError as exc:
        raise RawReadError(path, f"LibRaw refused the file ({type(exc).__name__}: {exc})") from None
    except OSError as exc:
        raise RawReadError(path, f"cannot open ({exc.strerror or exc})") from None
    s = raw.sizes
    mp = s.raw_width * s.raw_height / 1e6
    if mp > max_megapixels:
        raw.close()
        raise RawReadError(path, f"header claims {s.raw_width}x{s.raw_height} ({mp:.0f} MP), "
                                 f"over the {max_megapixels:.0f} MP limit (--max-megapixels)")
    return raw


def read_raw(path: str | Path, max_megapixels: float = DEFAULT_MAX_MEGAPIXELS) -> RawImage:
    """Decode `path` and gather its development metadata; raises `RawReadError` per file."""
    import rawpy

    path = str(path)
    if not Path(path).is_file():
        raise RawReadError(path, "no such file" if not Path(path).exists() else "not a file")
    warnings: list[str] = []
    raw = _open(path, max_megapixels)
    dng = _dng_tags(path)
    try:
        messages: list[str] = []
        try:
            with _libraw_messages(messages):
                raw_type = raw.raw_type
                visible = raw.raw_image_visible
        except rawpy.LibRawError as exc:
            raise RawReadError(path, _libraw_reason(exc, messages)) from None
        if messages:
            warnings.append("LibRaw: " + "; ".join(dict.fromkeys(messages)))
        desc = raw.color_desc.decode("ascii", "replace")
        if desc[:3] != "RGB":
            raise RawReadError(path, f"unsupported sensor colours {desc!r} (only RGB sensors)")
        black_per_channel = np.asarray(raw.black_level_per_channel, dtype=np.float64)
        white = float(raw.white_level)
        if raw_type == rawpy.RawType.Stack:
            kind, cfa = "linear", None
            data = visible[..., :3]
            black = black_per_channel[:3]
        else:
            colors = raw.raw_colors_visible
            period = 6 if raw.raw_pattern is not None and raw.raw_pattern.shape[0] == 6 else 2
            cfa = np.where(colors[:period, :period] == 3, 1, colors[:period, :period]).astype(np.int64)
            if set(np.unique(cfa)) != {0, 1, 2}:
                raise RawReadError(path, "unsupported colour filter array (not Bayer or X-Trans)")
            kind = "bayer" if period == 2 else "xtrans"
            data = visible
            black = black_per_channel[np.asarray(colors[:period, :period], dtype=np.int64)]
        if white <= float(np.max(black)):
            raise RawReadError(path, f"white level {white:g} is not above black level {np.max(black):g}")
        xyz_to_cam, source = _camera_matrix(raw, dng, warnings)
        wb_camera = _valid_wb(raw.camera_whitebalance)
        wb_daylight = _daylight_from_matrix(xyz_to_cam) if source != "none" else None
        if wb_daylight is None:
            wb_daylight = _valid_wb(raw.daylight_whitebalance)
        orientation = _FLIP_TO_ORIENTATION.get(int(raw.sizes.flip), 1)
        shot = (getattr(raw, "other", None), getattr(raw, "lens", None))
        # a real copy: `visible` points into LibRaw's buffer, which close() frees
        data = np.array(data, copy=True, order="C")
    finally:
        raw.close()
    if dng.get("AsShotNeutral") is not None:
        neutral_wb = _valid_wb(1.0 / np.maximum(np.asarray(dng["AsShotNeutral"], float)[:3], 1e-9))
        wb_camera = neutral_wb if neutral_wb is not None else wb_camera
    if wb_camera is None:
        warnings.append("no valid as-shot white balance in the file; using "
                        + ("daylight from the colour matrix" if wb_daylight is not None else "auto (grey world)"))
    baseline = dng.get("BaselineExposure")
    exif = _fill_from_libraw(read_exif(path), *shot)
    return RawImage(
        path=path, kind=kind, data=data, cfa=cfa, black=black, white=white,
        wb_camera=wb_camera, wb_daylight=wb_daylight, xyz_to_cam=xyz_to_cam, matrix_source=source,
        orientation=orientation,
        baseline_exposure=float(np.ravel(baseline)[0]) if baseline is not None else 0.0,
        exif=exif, warnings=warnings,
    )


def _fill_from_libraw(exif: ExifSummary, other, lens) -> ExifSummary:
    """Formats exifread cannot parse (Canon CRW, some makernote-only lenses) still have
    shot data LibRaw decoded: use it where the EXIF summary is empty. (Not the shutter
    speed: LibRaw's value for CRW could not be checked against a second reader.)"""
    if other is not None:
        if exif.iso is None and other.iso_speed > 0:
            exif.iso = int(round(other.iso_speed))
            exif.tags.setdefault("Exif.Photo.ISOSpeedRatings", str(exif.iso))
        # LibRaw turns an unrecorded APEX 0 into exactly f/1.0: that means "unknown"
        if exif.f_number is None and other.aperture > 1.0:
            exif.f_number = round(float(other.aperture), 1)
            exif.tags.setdefault("Exif.Photo.FNumber", f"{round(other.aperture * 10)}/10")
        if exif.focal_length is None and other.focal_length > 0:
            exif.focal_length = float(other.focal_length)
            exif.tags.setdefault("Exif.Photo.FocalLength", f"{round(other.focal_length * 10)}/10")
        if not exif.datetime and other.timestamp is not None and other.timestamp.year > 1970:
            exif.datetime = other.timestamp.strftime("%Y:%m:%d %H:%M:%S")
            exif.tags.setdefault("Exif.Photo.DateTimeOriginal", exif.datetime)
    if lens is not None and not exif.lens and lens.model:
        exif.lens = lens.model.strip()
        exif.tags.setdefault("Exif.Photo.LensModel", exif.lens)
    return exif


def _dng_tags(path: str) -> dict:
    if not path.lower().endswith(".dng"):
        return {}
    from ispcli.io.dng import read_dng_color_tags

    try:
        return read_dng_color_tags(path) or {}
    except Exception:
        return {}


def _calibrated(dng: dict, i: int) -> np.ndarray | None:
    """DNG's per-unit calibration applied: AnalogBalance · CameraCalibration_i · ColorMatrix_i."""
    cm = dng.get(f"ColorMatrix{i}")
    if cm is None:
        return None
    cm = np.reshape(np.asarray(cm, np.float64), (3, 3))
    cc = dng.get(f"CameraCalibration{i}")
    if cc is not None and np.shape(cc) == (3, 3) and np.all(np.isfinite(cc)):
        cm = np.asarray(cc, np.float64) @ cm
    ab = dng.get("AnalogBalance")
    if ab is not None and np.size(ab) >= 3 and np.all(np.asarray(ab) > 0):
        cm = np.diag(np.asarray(ab, np.float64).ravel()[:3]) @ cm
    return cm


def _camera_matrix(raw, dng: dict, warnings: list[str]) -> tuple[np.ndarray, str]:
    """XYZ→camera: the DNG's own calibration, else LibRaw's table, else sRGB as a last resort."""
    cm1 = _calibrated(dng, 1)
    if cm1 is not None and is_usable_matrix(cm1):
        neutral = dng.get("AsShotNeutral")
        m = interpolate_color_matrix(cm1, dng.get("CalibrationIlluminant1"), _calibrated(dng, 2),
                                     dng.get("CalibrationIlluminant2"),
                                     None if neutral is None else np.asarray(neutral, float)[:3])
        return m, "dng"
    libraw = np.asarray(raw.rgb_xyz_matrix, dtype=np.float64)[:3]
    if is_usable_matrix(libraw):
        return libraw, "libraw"
    warnings.append("no colour matrix for this camera; treating camera RGB as linear sRGB")
    return np.linalg.inv(SRGB_TO_XYZ), "none"
