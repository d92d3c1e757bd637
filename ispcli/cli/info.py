"""Print what ispcli reads from raw files: camera, CFA, levels, white balance, matrix, EXIF."""

from __future__ import annotations

import json
import sys
from typing import List

import typer

from ispcli.cli.output import EXIT_FAILED, EXIT_OK, err_console


def describe(raw) -> dict:
    """The metadata of a `RawImage` as plain JSON-able values."""
    return {
        "file": raw.path,
        "camera": raw.camera,
        "kind": raw.kind,
        "cfa": raw.cfa_name,
        "width": raw.width,
        "height": raw.height,
        "megapixels": round(raw.megapixels, 2),
        "black_level": [round(float(b), 2) for b in raw.black.ravel()[:4]],
        "white_level": raw.white,
        "wb_as_shot": None if raw.wb_camera is None else [round(float(v), 4) for v in raw.wb_camera],
        "wb_daylight": None if raw.wb_daylight is None else [round(float(v), 4) for v in raw.wb_daylight],
        "xyz_to_camera": [[round(float(v), 4) for v in row] for row in raw.xyz_to_cam],
        "matrix_source": raw.matrix_source,
        "orientation": raw.orientation,
        "baseline_exposure": raw.baseline_exposure,
        "exif": raw.exif.to_dict(),
        "warnings": raw.warnings,
    }


def _print_human(d: dict, console) -> None:
    from rich.table import Table

    t = Table(show_header=False, box=None, pad_edge=False, title=d["file"], title_justify="left")
    t.add_column(style="bold")
    t.add_column()
    for key in ("camera", "kind", "cfa", "width", "height", "megapixels", "black_level", "white_level",
                "wb_as_shot", "wb_daylight", "matrix_source", "orientation", "baseline_exposure"):
        t.add_row(key, str(d[key]))
    t.add_row("xyz_to_camera", "\n".join(" ".join(f"{v:8.4f}" for v in row) for row in d["xyz_to_camera"]))
    for key, value in d["exif"].items():
        if value not in (None, False):
            t.add_row(f"exif.{key}", str(value))
    for w in d["warnings"]:
        t.add_row("warning", w)
    console.print(t)


def info(
    files: List[str] = typer.Argument(..., metavar="FILE...", help="Raw files to describe."),
    json_out: bool = typer.Option(False, "--json", help="One JSON object per file on stdout."),
) -> None:
    from rich.console import Console

    from ispcli.io.decoder import read_raw_isolated
    from ispcli.io.errors import FileError

    console, errors = Console(highlight=False), err_console()
    code = EXIT_OK
    for f in files:
        try:
            d = describe(read_raw_isolated(f))
        except FileError as exc:
            errors.print(f"ispcli: {exc.path}: {exc.reason}", markup=False)
            if json_out:
                sys.stdout.write(json.dumps({"file": f, "error": exc.reason}) + "\n")
            code = EXIT_FAILED
            continue
        if json_out:
            sys.stdout.write(json.dumps(d, ensure_ascii=False) + "\n")
        else:
            _print_human(d, console)
    raise typer.Exit(code)
