"""Fuzzing `ispcli develop` and `ispcli info` with damaged raws.

Real raws are mutated the ways cards and copies damage them (truncation, flipped bytes in
the header or the data, a wrong extension, a zeroed or empty file) and ispcli runs on every
mutant under a time limit. Each run must end in time with exit code 0 or 1, no Python
traceback, one clean line per failed file, untouched inputs, and no temporary or partial
output left behind.

`tests/test_fuzz.py` runs a small fixed budget in CI. The long mode is run by hand:

    python tests/fuzz_harness.py --mutants 400 --seeds samples ../shared/data/raw

and prints what it ran and every violation it found.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

RAW_SUFFIXES = {".dng", ".cr2", ".crw", ".nef", ".arw", ".raf", ".kdc", ".orf", ".rw2", ".pef", ".raw"}
SWAPPED = [".dng", ".cr2", ".nef", ".arw", ".raf", ".orf"]
MUTATIONS = ("truncate", "flip-header", "flip-data", "swap-extension", "zero", "empty")


@dataclass
class Report:
    mutants: int = 0
    runs: int = 0
    failed_files: int = 0
    ok_files: int = 0
    violations: list[str] = field(default_factory=list)


def seed_files(folders) -> list[Path]:
    files = []
    for folder in folders:
        folder = Path(folder)
        if folder.is_dir():
            files += sorted(p for p in folder.iterdir() if p.suffix.lower() in RAW_SUFFIXES and p.is_file())
    return files


def mutate(data: bytes, kind: str, rng: random.Random) -> bytes:
    if kind == "truncate":
        return data[:rng.randrange(0, max(1, len(data)))]
    if kind in ("flip-header", "flip-data"):
        out = bytearray(data)
        header = min(len(out), 65536)
        lo, hi = (0, header) if kind == "flip-header" or header == len(out) else (header, len(out))
        for _ in range(rng.choice([1, 4, 16, 64])):
            i = rng.randrange(lo, hi)
            out[i] = rng.randrange(256)
        return bytes(out)
    if kind == "zero":
        return bytes(len(data))
    if kind == "empty":
        return b""
    return data                                         # swap-extension: same bytes


def make_mutants(seeds: list[Path], count: int, folder: Path, rng: random.Random) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    mutants = []
    for i in range(count):
        seed = seeds[i % len(seeds)]
        kind = MUTATIONS[rng.randrange(len(MUTATIONS))] if i >= len(MUTATIONS) else MUTATIONS[i]
        suffix = rng.choice([s for s in SWAPPED if s != seed.suffix.lower()]) if kind == "swap-extension" \
            else seed.suffix.lower()
        path = folder / f"m{i:04d}_{kind}_{seed.stem[:20]}{suffix}"
        path.write_bytes(mutate(seed.read_bytes(), kind, rng))
        mutants.append(path)
    return mutants


def _digest(paths) -> dict:
    return {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in paths}


def _run(args, timeout: float) -> subprocess.CompletedProcess | None:
    env = {**os.environ, "COLUMNS": "200"}
    try:
        return subprocess.run([sys.executable, "-m", "ispcli", *args], capture_output=True, text=True,
                              timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        return None


def _check_lines(r: subprocess.CompletedProcess, what: str, report: Report) -> list[dict]:
    if r.returncode not in (0, 1):
        report.violations.append(f"{what}: exit code {r.returncode}\n{r.stderr[-2000:]}")
    if "Traceback" in r.stderr or "Traceback" in r.stdout:
        report.violations.append(f"{what}: Python traceback\n{r.stderr[-3000:]}")
    records = []
    for line in r.stdout.splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            report.violations.append(f"{what}: stdout line is not JSON: {line[:200]!r}")
    return records


def check_develop(mutants: list[Path], out: Path, report: Report, timeout: float, decode_timeout: float) -> None:
    before = _digest(mutants)
    r = _run(["develop", *map(str, mutants), "-o", str(out), "--json", "-q", "--jobs", "1",
              "--timeout", str(decode_timeout), "--format", "jpg"], timeout)
    report.runs += 1
    if r is None:
        report.violations.append(f"develop: did not end within {timeout:.0f} s")
        return
    records = _check_lines(r, "develop", report)
    by_input = {rec.get("input"): rec for rec in records}
    for m in mutants:
        rec = by_input.get(str(m))
        if rec is None:
            report.violations.append(f"develop: no result for {m.name}")
            continue
        if rec["status"] == "failed":
            report.failed_files += 1
            err = rec.get("error") or ""
            if not err or "\n" in err or len(err) > 400:
                report.violations.append(f"develop: unclear error for {m.name}: {err[:400]!r}")
            if rec.get("output") and Path(rec["output"]).exists():
                report.violations.append(f"develop: failed file {m.name} left an output")
        else:
            report.ok_files += 1
            if not rec.get("output") or not Path(rec["output"]).is_file():
                report.violations.append(f"develop: {m.name} reported ok without an output")
    for f in out.rglob("*") if out.exists() else []:
        if f.name.startswith(".") or "tmp" in f.name:
            report.violations.append(f"develop: stray file {f.name} in the output folder")
    if _digest(mutants) != before:
        report.violations.append("develop: an input file was modified")


def check_info(mutants: list[Path], report: Report, timeout: float) -> None:
    r = _run(["info", "--json", *map(str, mutants)], timeout)
    report.runs += 1
    if r is None:
        report.violations.append(f"info: did not end within {timeout:.0f} s")
        return
    records = _check_lines(r, "info", report)
    if len(records) != len(mutants):
        report.violations.append(f"info: {len(records)} JSON lines for {len(mutants)} files")
    for rec in records:
        if "error" in rec and ("\n" in rec["error"] or not rec["error"]):
            report.violations.append(f"info: unclear error for {rec.get('file')}: {rec['error'][:400]!r}")


def fuzz(seeds: list[Path], count: int, seed: int = 0, batch: int = 25, decode_timeout: float = 30.0,
         workdir: Path | None = None) -> Report:
    rng = random.Random(seed)
    report = Report()
    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        tmp = Path(tmp)
        for start in range(0, count, batch):
            part = tmp / f"batch{start:05d}"
            mutants = make_mutants(seeds, min(batch, count - start), part / "in", rng)
            report.mutants += len(mutants)
            limit = 60 + 20 * len(mutants)
            check_info(mutants, report, limit)
            check_develop(mutants, part / "out", report, limit, decode_timeout)
    return report


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mutants", type=int, default=400)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--batch", type=int, default=25, help="mutants per ispcli run")
    ap.add_argument("--seeds", nargs="+", default=["samples"], help="folders of real raws to mutate")
    args = ap.parse_args(argv)
    seeds = seed_files(args.seeds)
    if not seeds:
        print("no raw files in " + ", ".join(args.seeds), file=sys.stderr)
        return 2
    report = fuzz(seeds, args.mutants, args.seed, args.batch)
    print(f"{report.mutants} mutants of {len(seeds)} raws, {report.runs} ispcli runs: "
          f"{report.ok_files} developed, {report.failed_files} refused cleanly, "
          f"{len(report.violations)} violation(s)")
    for v in report.violations:
        print("VIOLATION", v)
    return 1 if report.violations else 0


if __name__ == "__main__":
    sys.exit(main())
