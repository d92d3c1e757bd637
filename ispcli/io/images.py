"""Reading and writing JPEG/PNG/TIFF with EXIF and ICC carried over, atomically.

Pixels are encoded (Pillow for 8-bit JPEG/PNG, OpenCV for 16-bit PNG, tifffile for TIFF)
straight into a temporary file beside the output, metadata is added to that file with Exiv2,
and the file reaches its final name only by a rename: an interrupted or failed write never
leaves a partial output.
"""

from __future__ import annotations

import errno
import io
import os
import tempfile
from pathlib import Path

import numpy as np

from ispcli.io.errors import FileError, OutputError

TEMP_PREFIX = ".ispcli-tmp-"
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".tif", ".tiff"}


class OutputExists(FileError):
    """The output appeared while we worked (another process won the race): we skip it."""


def _encode_pixels(fh, image: np.ndarray, fmt: str, quality: int, icc: bytes | None) -> None:
    """Write `image` encoded as `fmt` into the binary file object `fh`."""
    if fmt == "jpg":
        from PIL import Image

        Image.fromarray(image).save(fh, "JPEG", quality=quality, subsampling=0 if quality >= 90 else 2,
                                    icc_profile=icc or None, optimize=False)
    elif fmt == "png" and image.dtype == np.uint8:
        from PIL import Image

        Image.fromarray(image).save(fh, "PNG", compress_level=6, icc_profile=icc or None)
    elif fmt == "png":
        import cv2

        ok, data = cv2.imencode(".png", np.ascontiguousarray(image[..., ::-1]),
                                [cv2.IMWRITE_PNG_COMPRESSION, 3])
        if not ok:
            raise ValueError("PNG encoder failed")
        fh.write(_png_with_icc(data.tobytes(), icc) if icc else data.tobytes())
    elif fmt == "tif":
        import tifffile

        extratags = [(34675, 7, len(icc), icc, True)] if icc else []
        # a name of its own: tifffile reads one from the file object, and os.fdopen's is a number
        tifffile.imwrite(tifffile.FileHandle(fh, name="output.tif"), image, photometric="rgb",
                         compression="zlib" if image.dtype == np.uint8 else None,
                         extratags=extratags, software=False, metadata=None)
    else:
        raise ValueError(f"unknown format {fmt!r}")


def _png_with_icc(png: bytes, icc: bytes) -> bytes:
    """Insert an iCCP chunk right after IHDR (OpenCV cannot embed a profile itself)."""
    import struct
    import zlib

    body = b"iCCP" + b"ICC profile\x00\x00" + zlib.compress(icc)
    chunk = struct.pack(">I", len(body) - 4) + body + struct.pack(">I", zlib.crc32(body) & 0xFFFFFFFF)
    ihdr_end = 8 + 4 + 4 + 13 + 4  # signature, length, type, IHDR data, CRC
    return png[:ihdr_end] + chunk + png[ihdr_end:]


def encode_image(image: np.ndarray, fmt: str, *, quality: int = 92, icc: bytes | None = None,
                 exif: dict[str, str] | None = None) -> bytes:
    """The complete file as bytes: pixels, ICC profile and EXIF tags."""
    from ispcli.io.exif import write_tags

    buf = io.BytesIO()
    _encode_pixels(buf, image, fmt, quality, icc)
    return write_tags(buf.getvalue(), exif) if exif else buf.getvalue()


def save_image(path: str | Path, image: np.ndarray, fmt: str, *, quality: int = 92, icc: bytes | None = None,
               exif: dict[str, str] | None = None, overwrite: bool) -> None:
    """Encode `image` straight into a temporary file beside `path`, add the EXIF tags to that
    file, and claim `path` atomically (see `write_atomic`). Encoding to the file rather than to
    memory saves Exiv2 two copies of the whole image, most of the write time of a 16-bit TIFF."""
    from ispcli.io.exif import write_file_tags

    def fill(fh, tmp: str) -> None:
        _encode_pixels(fh, image, fmt, quality, icc)
        if exif:
            fh.flush()
            write_file_tags(tmp, exif)

    write_atomic(path, fill, overwrite=overwrite)


def write_atomic(path: str | Path, data, *, overwrite: bool) -> None:
    """Put `data` at `path` via a temporary file in the same folder and a rename.

    `data` is bytes, or a function `fill(fh, tmp_path)` that writes the content into the open
    temporary file (and may rewrite it by path). With `overwrite` the last writer wins
    (os.replace); without it the final name is claimed with a hard link, which fails if
    another process got there first.
    """
    path = Path(path)
    try:
        fd, tmp = tempfile.mkstemp(prefix=TEMP_PREFIX, suffix=path.suffix, dir=path.parent)
    except OSError as exc:
        raise OutputError(path, _why(exc)) from None
    try:
        with os.fdopen(fd, "wb") as fh:
            if callable(data):
                data(fh, tmp)
            else:
                fh.write(data)
        # durable before it gets its name (a tag writer may have replaced the file's content)
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.chmod(tmp, 0o644 & ~_umask())
        if overwrite:
            os.replace(tmp, path)
        else:
            try:
                os.link(tmp, path)
            except FileExistsError:
                raise OutputExists(path, "already exists (written by another run)") from None
            except OSError:  # filesystems without hard links: best effort
                if path.exists():
                    raise OutputExists(path, "already exists (written by another run)") from None
                os.replace(tmp, path)
    except OSError as exc:
        raise OutputError(path, _why(exc)) from None
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


DISK_FULL = "disk full while writing"


def _why(exc: OSError) -> str:
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return f"{DISK_FULL} ({exc.strerror or 'No space left on device'})"
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return f"cannot write output ({exc.strerror})"
    return f"cannot write output ({exc.strerror or exc})"


_TIFF_MODES = {"MINISBLACK": "L", "MINISWHITE": "L", "PALETTE": "P", "SEPARATED": "CMYK", "RGB": "RGB"}


def read_image(path: str | Path) -> tuple[np.ndarray, dict]:
    """Read an image as (H, W, C) array in its own dtype, plus {'icc': bytes|None, 'mode': str}.

    `mode` names the colour model the way Pillow does (RGB, RGBA, L, LA, P, CMYK...), for TIFF
    too, so callers can tell a palette or CMYK file from greyscale or RGB with alpha."""
    path = Path(path)
    try:
        if path.suffix.lower() in {".tif", ".tiff"}:
            import tifffile

            with tifffile.TiffFile(path) as tf:
                page = tf.pages[0]
                arr = page.asarray()
                icc_tag = page.tags.get(34675)
                icc = bytes(icc_tag.value) if icc_tag is not None else None
                photometric = getattr(page.photometric, "name", str(page.photometric))
                mode = _TIFF_MODES.get(photometric, photometric)
                if page.extrasamples and mode in ("RGB", "L"):
                    mode += "A"
        else:
            from PIL import Image

            with Image.open(path) as im:
                icc = im.info.get("icc_profile")
                mode = im.mode
                if im.mode in ("I;16", "I;16B", "I"):
                    arr = np.asarray(im).astype(np.uint16)
                else:
                    arr = np.asarray(im)
                if path.suffix.lower() == ".png" and im.mode in ("RGB", "RGBA") and _png_bit_depth(path) == 16:
                    import cv2

                    arr = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
                    arr = arr[..., ::-1] if arr.ndim == 3 and arr.shape[2] == 3 else arr[..., [2, 1, 0, 3]]
    except FileNotFoundError:
        raise FileError(path, "no such file") from None
    except Exception as exc:
        raise FileError(path, f"not a readable image ({exc})") from None
    if arr.ndim == 2:
        arr = arr[..., None]
    return np.ascontiguousarray(arr), {"icc": icc, "mode": mode}


def _png_bit_depth(path: Path) -> int:
    with open(path, "rb") as fh:
        head = fh.read(26)
    return head[24] if len(head) >= 25 else 8
