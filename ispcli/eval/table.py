"""The result table: per-image measurements summarised per method and level, shown as a
table, written as one JSON document, or recorded into the models' manifest entries.

PSNR and SSIM are means over images (the literature's convention); seconds per megapixel
is the median over images, which ignores a stray slow image.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass

from ispcli.eval.benchmark import Evaluation


@dataclass(frozen=True)
class Row:
    method: str
    kind: str
    level: str
    params: dict
    psnr: float
    ssim: float
    seconds_per_mp: float
    images: int


def summarise(ev: Evaluation) -> list[Row]:
    """One row per level and method, in the order the task lists them (baselines first)."""
    rows = []
    for level in ev.levels:
        for method in ev.methods:
            ms = [m for m in ev.measurements if m.method == method.name and m.level == level.key]
            if not ms:
                continue
            rows.append(Row(method.name, method.kind, level.key, dict(level.params),
                            statistics.fmean(m.psnr for m in ms), statistics.fmean(m.ssim for m in ms),
                            statistics.median(m.seconds / m.megapixels for m in ms), len(ms)))
    return rows


def score_key(benchmark: str, level: str) -> str:
    """How a score is named in a manifest entry: "CBSD68 sigma=25", "Kodak24 noise-free"."""
    return f"{benchmark} {level}"


def document(ev: Evaluation, rows: list[Row], speed: dict[str, float] | None = None,
             recorded: list[str] | None = None) -> dict:
    """Everything the run measured, as one JSON-able document."""
    doc = {
        "task": ev.task,
        "benchmark": ev.benchmark,
        "data": ev.data,
        "images": len(ev.images),
        "seed": ev.seed,
        "device": ev.device,
        "tile": ev.tile,
        "protocol": ev.protocol,
        "results": [{"method": r.method, "kind": r.kind, "level": r.level, "params": r.params,
                     "psnr": round(r.psnr, 4), "ssim": round(r.ssim, 5),
                     "seconds_per_mp": round(r.seconds_per_mp, 5), "images": r.images} for r in rows],
        "per_image": [{"image": m.image, "index": m.index, "method": m.method, "level": m.level,
                       "psnr": round(m.psnr, 4), "ssim": round(m.ssim, 5), "seconds": round(m.seconds, 5),
                       "megapixels": round(m.megapixels, 6)} for m in ev.measurements],
    }
    if speed is not None:
        doc["speed"] = {name: {"megapixels_per_second": round(v, 4), "size": [1024, 1024], "runs": 3}
                        for name, v in speed.items()}
    if recorded is not None:
        doc["recorded"] = recorded
    return doc


def render(ev: Evaluation, rows: list[Row], console, speed: dict[str, float] | None = None) -> None:
    """A rich table: rows method × level; PSNR, SSIM, s/MP and the image count."""
    from rich.table import Table

    psnr_name = "CPSNR" if ev.task == "demosaic" else "PSNR"
    border = ev.protocol.get("border", 0)
    title = (f"{ev.task} on {ev.benchmark}: {len(ev.images)} image{'s' * (len(ev.images) != 1)}, "
             f"seed {ev.seed}, {ev.device}" + (f", {border}-pixel border ignored" if border else ""))
    t = Table(title=title, title_justify="left")
    t.add_column("level")
    t.add_column("method")
    t.add_column(f"{psnr_name} dB", justify="right")
    t.add_column("SSIM", justify="right")
    t.add_column("s/MP", justify="right")
    t.add_column("images", justify="right")
    best = {}
    for r in rows:
        if r.method != "noisy":
            best[r.level] = max(best.get(r.level, float("-inf")), r.psnr)
    previous = None
    for r in rows:
        if previous is not None and r.level != previous:
            t.add_section()
        name = r.method if r.kind == "baseline" else f"[cyan]{r.method}[/]"
        psnr = f"{r.psnr:.2f}"
        if r.method != "noisy" and r.psnr == best.get(r.level):
            psnr = f"[bold]{psnr}[/]"
        t.add_row(r.level if r.level != previous else "", name, psnr, f"{r.ssim:.4f}",
                  f"{r.seconds_per_mp:.3f}", str(r.images))
        previous = r.level
    console.print(t)
    if speed:
        s = Table(title="speed on a 1024×1024 image (median of 3 runs)", title_justify="left")
        s.add_column("model")
        s.add_column("MP/s", justify="right")
        for name, v in speed.items():
            s.add_row(name, f"{v:.3f}")
        console.print(s)


def record(ev: Evaluation, rows: list[Row], weights_dir=None) -> list[str]:
    """Write each model's scores into its manifest entry; the keys written."""
    from ispcli.models import weights

    written = []
    for r in rows:
        if r.kind != "model":
            continue
        entry = weights.entry(r.method, weights_dir)
        key = score_key(ev.benchmark, r.level)
        entry.scores[key] = {"psnr": round(r.psnr, 4), "ssim": round(r.ssim, 5), "images": r.images,
                             "seed": ev.seed}
        weights.write_entry(entry, weights_dir)
        written.append(f"{r.method}: {key}")
    return written
