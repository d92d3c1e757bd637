"""The result table: per-image measurements summarised per method and level, shown as a
table, written as one JSON document, or recorded into the models' manifest entries.

PSNR and SSIM are means over images (the literature's convention); seconds per megapixel
is the median over images, which ignores a stray slow image. A row may pool several levels
(deblur: all kernels of a set); `images` counts distinct images, `samples` what was scored.

A baseline run at several settings of a parameter (Wiener's balance, Richardson–Lucy's
iterations) gets, in each row, the setting with the best mean PSNR: an oracle's choice that
favours it. The whole grid's scores are kept (`grid`), and its seconds are those of the
whole grid (Richardson–Lucy's iteration counts share one run).
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field

from ispcli.eval.benchmark import Evaluation

INPUTS = ("noisy", "none")       # the degraded input itself: never "best"


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
    samples: int = 0
    benchmark: str = ""
    setting: dict = field(default_factory=dict)
    grid: list = field(default_factory=list)          # [{"setting", "psnr", "ssim"}] of every setting


def _mean(ms, attr: str) -> float:
    return statistics.fmean(getattr(m, attr) for m in ms)


def _seconds_per_mp(ms) -> float:
    """Median over samples of the seconds per megapixel, every setting of a grid summed."""
    per_sample: dict[tuple[str, str], list] = {}
    for m in ms:
        per_sample.setdefault((m.image, m.level), []).append(m)
    return statistics.median(sum(m.seconds for m in group) / group[0].megapixels for group in per_sample.values())


def summarise(ev: Evaluation) -> list[Row]:
    """One row per row of the task (by default: per level) and method, in the order the task
    lists them (baselines first)."""
    rows = []
    for spec in ev.rows:
        levels = set(spec.levels)
        for name in dict.fromkeys(m.name for m in ev.methods):
            ms = [m for m in ev.measurements if m.method == name and m.level in levels]
            if not ms:
                continue
            settings: dict[str, list] = {}
            for m in ms:
                settings.setdefault(repr(sorted(m.setting.items())), []).append(m)
            chosen = max(settings.values(), key=lambda group: _mean(group, "psnr"))
            grid = [{"setting": group[0].setting, "psnr": _mean(group, "psnr"), "ssim": _mean(group, "ssim")}
                    for group in settings.values()] if len(settings) > 1 else []
            kind = next(m.kind for m in ev.methods if m.name == name)
            rows.append(Row(name, kind, spec.label, dict(spec.params), _mean(chosen, "psnr"), _mean(chosen, "ssim"),
                            _seconds_per_mp(ms), len({m.image for m in chosen}), len(chosen),
                            spec.benchmark or ev.benchmark, dict(chosen[0].setting), grid))
    return rows


def score_key(benchmark: str, level: str) -> str:
    """How a score is named in a manifest entry: "CBSD68 sigma=25", "Kodak24 noise-free"."""
    return f"{benchmark} {level}"


def _setting_text(setting: dict) -> str:
    return ", ".join(f"{k} {v:g}" if isinstance(v, (int, float)) else f"{k} {v}" for k, v in setting.items())


def document(ev: Evaluation, rows: list[Row], speed: dict[str, float] | None = None,
             recorded: list[str] | None = None) -> dict:
    """Everything the run measured, as one JSON-able document."""
    def result(r: Row) -> dict:
        out = {"method": r.method, "kind": r.kind, "level": r.level, "benchmark": r.benchmark, "params": r.params,
               "psnr": round(r.psnr, 4), "ssim": round(r.ssim, 5), "seconds_per_mp": round(r.seconds_per_mp, 5),
               "images": r.images, "samples": r.samples}
        if r.setting:
            out["setting"] = r.setting
            out["grid"] = [{"setting": g["setting"], "psnr": round(g["psnr"], 4), "ssim": round(g["ssim"], 5)}
                           for g in r.grid]
        return out

    def measurement(m) -> dict:
        out = {"image": m.image, "index": m.index, "method": m.method, "level": m.level, "psnr": round(m.psnr, 4),
               "ssim": round(m.ssim, 5), "seconds": round(m.seconds, 5), "megapixels": round(m.megapixels, 6)}
        if m.setting:
            out["setting"] = m.setting
        return out

    doc = {
        "task": ev.task,
        "benchmark": ev.benchmark,
        "data": ev.data,
        "images": len(ev.images),
        "seed": ev.seed,
        "device": ev.device,
        "tile": ev.tile,
        "protocol": ev.protocol,
        "results": [result(r) for r in rows],
        "per_image": [measurement(m) for m in ev.measurements],
    }
    if ev.warnings:
        doc["warnings"] = ev.warnings
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
    benchmarks = ", ".join(dict.fromkeys(r.benchmark for r in rows)) or ev.benchmark
    title = (f"{ev.task} on {benchmarks}: {len(ev.images)} image{'s' * (len(ev.images) != 1)}, "
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
        if r.method not in INPUTS:
            best[r.level] = max(best.get(r.level, float("-inf")), r.psnr)
    previous = None
    for r in rows:
        if previous is not None and r.level != previous:
            t.add_section()
        name = r.method if r.kind == "baseline" else f"[cyan]{r.method}[/]"
        if r.setting:
            name += f" ({_setting_text(r.setting)})"
        psnr = f"{r.psnr:.2f}"
        if r.method not in INPUTS and r.psnr == best.get(r.level):
            psnr = f"[bold]{psnr}[/]"
        images = str(r.images) if r.samples == r.images else f"{r.images} × {r.samples // max(r.images, 1)}"
        t.add_row(r.level if r.level != previous else "", name, psnr, f"{r.ssim:.4f}",
                  f"{r.seconds_per_mp:.3f}", images)
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
        key = score_key(r.benchmark or ev.benchmark, r.level)
        entry.scores[key] = {"psnr": round(r.psnr, 4), "ssim": round(r.ssim, 5), "images": r.images,
                             **({"samples": r.samples} if r.samples != r.images else {}), "seed": ev.seed}
        weights.write_entry(entry, weights_dir)
        written.append(f"{r.method}: {key}")
    return written
