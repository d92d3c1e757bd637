"""List the trained models in the weights folder: task, domain, size, checksum and scores.

The folder is $ISPCLI_WEIGHTS, else the weights shipped in the installed package, else the
checkout's weights/. --check verifies every file's sha256 against the manifest.
Exit codes: 0 listed (or nothing installed), 1 a file is missing or corrupt (--check) or the
manifest is broken.
"""

from __future__ import annotations

import json
import sys
from dataclasses import asdict

import typer

from ispcli.cli.output import EXIT_FAILED, EXIT_OK, err_console

# Only JSON and hashlib: this command must never import torch (tests/test_models.py).


def _inspect(e, root) -> dict:
    """The manifest entry `e` as JSON-able values, plus where its file is and whether it is intact."""
    from ispcli.models import weights

    path = root / e.file
    d = asdict(e)
    d["path"] = str(path)
    if not path.is_file():
        d.update(size=None, ok=False, problem="weight file is missing")
        return d
    actual = weights.sha256(path)
    d["size"] = path.stat().st_size
    d["ok"] = actual == e.sha256
    d["problem"] = None if d["ok"] else (f"sha256 {actual[:12]}… does not match the manifest's "
                                         f"{str(e.sha256)[:12]}…")
    return d


def _size(n: int | None) -> str:
    if n is None:
        return "-"
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return str(n)


def _scores(scores: dict) -> str:
    lines = []
    for bench, values in sorted(scores.items()):
        if isinstance(values, dict):
            parts = []
            for metric, v in values.items():
                if isinstance(v, (int, float)):
                    parts.append(f"{v:.2f} dB" if metric == "psnr" else f"{metric} {v:.3f}")
                else:
                    parts.append(f"{metric} {v}")
            lines.append(f"{bench}: {', '.join(parts)}")
        else:
            lines.append(f"{bench}: {values}")
    return "\n".join(lines) or "-"


def _table(rows: list[dict], root) -> None:
    from rich.console import Console
    from rich.table import Table

    t = Table(title=f"models in {root}", title_justify="left")
    for col, kw in (("name", {"style": "bold"}), ("task", {}), ("domain", {}), ("architecture", {}),
                    ("parameters", {"justify": "right"}), ("size", {"justify": "right"}), ("sha256", {}),
                    ("val. PSNR", {"justify": "right"}), ("scores", {}), ("check", {})):
        t.add_column(col, **kw)
    for d in rows:
        val = (d.get("training") or {}).get("validation_psnr")
        arch = d["arch"]
        if isinstance(d["args"], dict) and d["args"].get("channels"):
            arch += " " + "/".join(str(c) for c in d["args"]["channels"])
        t.add_row(d["name"], d["task"], d["domain"], arch, f"{d['parameters']:,}", _size(d["size"]),
                  str(d["sha256"])[:12], "-" if val is None else f"{val:.2f} dB", _scores(d["scores"] or {}),
                  "ok" if d["ok"] else f"[red]{d['problem']}[/red]")
    Console(highlight=False).print(t)


def models(
    json_out: bool = typer.Option(False, "--json", help="One JSON document on stdout: every manifest "
                                  "field plus path, size and ok."),
    check: bool = typer.Option(False, "--check", help="Verify every weight file's sha256; exit 1 "
                               "naming each missing or corrupt one."),
) -> None:
    from ispcli.models import weights

    errors = err_console()
    root = weights.weights_dir()
    try:
        entries = weights.read_manifest(root)
    except weights.WeightsError as exc:
        errors.print(f"ispcli: {exc}", markup=False)
        raise typer.Exit(EXIT_FAILED)

    rows = [_inspect(entries[name], root) for name in sorted(entries)]
    if json_out:
        sys.stdout.write(json.dumps({"weights_dir": str(root), "models": rows}, indent=2, ensure_ascii=False) + "\n")
    if not rows:
        message = f"no models installed (weights folder: {root})"
        if json_out:
            errors.print(message, markup=False)
        else:
            typer.echo(message)
        raise typer.Exit(EXIT_OK)

    bad = [d for d in rows if not d["ok"]]
    if check:
        for d in bad:
            errors.print(f"ispcli: {d['path']}: model {d['name']!r}: {d['problem']}", markup=False)
        if not json_out:
            if bad:
                errors.print(f"{len(bad)} of {len(rows)} weight files failed the check", markup=False)
            else:
                typer.echo(f"all {len(rows)} weight files match the manifest ({root})")
        raise typer.Exit(EXIT_FAILED if bad else EXIT_OK)
    if not json_out:
        _table(rows, root)
    raise typer.Exit(EXIT_OK)
