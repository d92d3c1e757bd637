"""Which files a run works on, and what each output is called.

Inputs are files, folders (recursively with `-r`, mirrored under the output folder), globs,
or `-` for paths on standard input. Output names come from a template whose values are
sanitised, so an EXIF value like `1/1600` can never create a folder or escape the output.
"""

from __future__ import annotations

import glob
import os
import re
import string
import sys
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

RAW_EXTENSIONS = {
    ".3fr", ".ari", ".arw", ".bay", ".cap", ".cr2", ".cr3", ".crw", ".dcr", ".dcs", ".dng",
    ".erf", ".fff", ".gpr", ".iiq", ".k25", ".kdc", ".mef", ".mos", ".mrw", ".nef", ".nrw",
    ".orf", ".pef", ".raf", ".raw", ".rw2", ".rwl", ".sr2", ".srf", ".srw", ".x3f",
}
# what denoise (and demosaic --cfa, without JPEG) pick up in folders
IMAGE_EXTENSIONS = {".png", ".jpg", ".jpeg", ".tif", ".tiff"}
TEMPLATE_FIELDS = ("stem", "ext", "camera", "make", "model", "iso", "date", "lens", "index")
_UNSAFE = re.compile(r'[\x00-\x1f\x7f/\\:*?"<>|]+')


@dataclass(frozen=True)
class Source:
    """One input file and the sub-folder (relative to its input folder) it was found in."""

    path: str
    subdir: str = ""


@dataclass(frozen=True)
class Missing:
    """An input argument that named nothing."""

    arg: str
    reason: str


def _is_glob(arg: str) -> bool:
    return any(ch in arg for ch in "*?[")


def discover(args: list[str], *, recursive: bool = False, extensions=RAW_EXTENSIONS,
             stdin=None) -> tuple[list[Source], list[Missing]]:
    """Expand the command line into input files (de-duplicated, in a stable order)."""
    found: list[Source] = []
    missing: list[Missing] = []
    expanded: list[str] = []
    for arg in args:
        if arg == "-":
            stream = stdin or sys.stdin
            expanded += [line.rstrip("\r\n") for line in stream if line.strip()]
        else:
            expanded.append(arg)
    for arg in expanded:
        p = Path(arg)
        if p.is_dir():
            pattern = "**/*" if recursive else "*"
            files = sorted(f for f in p.glob(pattern) if f.is_file() and f.suffix.lower() in extensions
                           and not f.name.startswith("."))
            if not files:
                missing.append(Missing(arg, "folder holds no supported files"
                                       + ("" if recursive else " (use -r for sub-folders)")))
            for f in files:
                sub = f.parent.relative_to(p).as_posix() if recursive else ""
                found.append(Source(str(f), "" if sub == "." else sub))
        elif p.is_file():
            found.append(Source(str(p)))
        elif _is_glob(arg):
            matches = sorted(m for m in glob.glob(arg, recursive=True) if os.path.isfile(m))
            if not matches:
                missing.append(Missing(arg, "pattern matches no files"))
            found += [Source(m) for m in matches]
        else:
            missing.append(Missing(arg, "no such file or folder"))
    seen: set[str] = set()
    unique = []
    for s in found:
        key = os.path.realpath(s.path)
        if key not in seen:
            seen.add(key)
            unique.append(s)
    return unique, missing


def sanitize(value) -> str:
    """A template value made safe as one path component."""
    text = _UNSAFE.sub("_", str(value)).strip().strip(".")
    return text[:120] or "_"


class _Formatter(string.Formatter):
    def format_field(self, value, spec):
        if isinstance(value, datetime):
            return sanitize(value.strftime(spec or "%Y%m%d"))
        return sanitize(format(value, spec))


def _exif_date(text: str | None) -> datetime | None:
    if not text:
        return None
    for fmt in ("%Y:%m:%d %H:%M:%S", "%Y-%m-%d %H:%M:%S", "%Y:%m:%d"):
        try:
            return datetime.strptime(text.strip()[:19], fmt)
        except ValueError:
            continue
    return None


def _file_date(p: Path) -> datetime:
    """The file's modification time: the best date for a raw whose EXIF has none."""
    try:
        return datetime.fromtimestamp(os.stat(p).st_mtime)
    except OSError:
        return datetime.fromtimestamp(0)


def template_needs_exif(template: str) -> bool:
    names = {f for _, f, _, _ in string.Formatter().parse(template) if f}
    return bool(names & {"camera", "make", "model", "iso", "date", "lens"})


def check_template(template: str) -> None:
    """Refuse unknown fields and templates that would leave the output folder."""
    try:
        names = [f for _, f, _, _ in string.Formatter().parse(template) if f is not None]
    except ValueError as exc:
        raise ValueError(f"--name {template!r}: {exc}") from None
    unknown = [n for n in names if n not in TEMPLATE_FIELDS]
    if unknown or "" in names:
        raise ValueError(f"--name {template!r}: unknown field {{{(unknown or [''])[0]}}}; "
                         f"known: {', '.join('{' + f + '}' for f in TEMPLATE_FIELDS)}")
    parts = Path(template).parts
    if Path(template).is_absolute() or ".." in parts:
        raise ValueError(f"--name {template!r}: must stay inside the output folder")


def output_path(source: Source, out_dir: str, template: str, extension: str, *, index: int = 0,
                exif=None) -> str:
    """The output file for `source`: out_dir / mirrored subdir / expanded template + ext.

    An empty `extension` (format "same") keeps the source's own suffix."""
    p = Path(source.path)
    date = _exif_date(getattr(exif, "datetime", None)) if exif else None
    values = {
        "stem": p.stem, "ext": p.suffix.lstrip(".").lower(), "index": index,
        "camera": (exif.model or exif.make or "unknown") if exif else "unknown",
        "make": (exif.make or "unknown") if exif else "unknown",
        "model": (exif.model or "unknown") if exif else "unknown",
        "iso": (exif.iso if exif and exif.iso else "unknown"),
        "lens": (exif.lens or "unknown") if exif else "unknown",
        "date": date or _file_date(p),
    }
    name = _Formatter().format(template, **values)
    parts = [sanitize(part) for part in Path(name).parts if part not in ("", ".", "..", "/")]
    out = Path(out_dir, source.subdir, *parts)
    return str(out.with_name(out.name + (extension or p.suffix)))


@dataclass
class Planned:
    """A source and its output, or the reason it will not be processed."""

    source: str
    output: str | None
    status: str  # todo | skipped | failed
    reason: str | None = None


def plan_outputs(sources: list[Source], out_dir: str, template: str, extension: str, *,
                 overwrite: bool) -> list[Planned]:
    """Name every output, refusing collisions and outputs that would replace an input."""
    needs_exif = template_needs_exif(template)
    if needs_exif:
        from ispcli.io.exif import read_exif
    inputs = {os.path.realpath(s.path) for s in sources}
    claimed: dict[str, str] = {}
    plans = []
    for i, s in enumerate(sources, start=1):
        exif = read_exif(s.path) if needs_exif else None
        out = output_path(s, out_dir, template, extension, index=i, exif=exif)
        real = os.path.realpath(out)
        if real in inputs:
            plans.append(Planned(s.path, out, "failed", "output would overwrite an input file"))
        elif real in claimed:
            plans.append(Planned(s.path, out, "failed",
                                 f"output name collides with that of {claimed[real]} (use --name)"))
        elif os.path.exists(out) and not overwrite:
            claimed[real] = s.path
            plans.append(Planned(s.path, out, "skipped", "output exists (use --overwrite)"))
        else:
            claimed[real] = s.path
            plans.append(Planned(s.path, out, "todo"))
    return plans


def check_writable(out_dir: str) -> str | None:
    """None if files can be created in `out_dir` (created if missing), else the reason."""
    import tempfile

    try:
        os.makedirs(out_dir, exist_ok=True)
        with tempfile.TemporaryFile(dir=out_dir, prefix=".ispcli-probe-"):
            pass
    except OSError as exc:
        return exc.strerror or str(exc)
    return None
