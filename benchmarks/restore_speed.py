"""Speed and peak memory of `ispcli enhance`, `dehaze` (learned and DCP) and `deblur` on
3, 12 and 24 megapixel photos, whole commands as a user runs them.

    python benchmarks/restore_speed.py [--sizes 3,12,24] [--repeat 2]

The test photo is Kodak24 kodim23 resized (Lanczos) to each size, or a smooth random image
without ../shared. Megapixels per second count the pixel work only: the command's start-up
(Python, torch import, model load; `ispcli enhance --help`-free) is measured on a 64×64 image
and subtracted. Peak RSS is GNU time's %M. Median of --repeat runs; results in
benchmarks/results/restore_speed.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
KODAK = ROOT.parent / "shared" / "data" / "bench" / "Kodak24" / "kodim23.png"
COMMANDS = {
    "enhance": ["enhance"],
    "dehaze": ["dehaze"],
    "dehaze --model dcp": ["dehaze", "--model", "dcp"],
    "deblur": ["deblur"],
}


def photo(megapixels: float, path: Path) -> Path:
    w = int(round((megapixels * 1e6 * 4 / 3) ** 0.5))
    h = int(round(w * 3 / 4))
    if KODAK.is_file():
        im = Image.open(KODAK).convert("RGB").resize((w, h), Image.LANCZOS)
    else:
        rng = np.random.default_rng(0)
        small = rng.random((h // 64 + 1, w // 64 + 1, 3))
        im = Image.fromarray((small * 255).astype(np.uint8)).resize((w, h), Image.BICUBIC)
    im.save(path)
    return path


def timed(cmd: list[str], tmp: Path) -> tuple[float, float]:
    stats = tmp / "time.txt"
    start = time.perf_counter()
    subprocess.run(["/usr/bin/time", "-f", "%M", "-o", str(stats), sys.executable, "-m", "ispcli", *cmd,
                    "-q", "--overwrite"], check=True, cwd=ROOT)
    wall = time.perf_counter() - start
    return wall, int(stats.read_text().split()[-1]) / 1024


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="3,12,24")
    ap.add_argument("--repeat", type=int, default=2)
    args = ap.parse_args()
    sizes = [float(s) for s in args.sizes.split(",")]
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        tiny = tmp / "tiny.png"
        Image.new("RGB", (64, 64), (120, 110, 100)).save(tiny)
        inputs = {mp: photo(mp, tmp / f"photo_{mp:g}mp.png") for mp in sizes}
        for name, cmd in COMMANDS.items():
            startup = statistics.median(timed([*cmd, str(tiny), "-o", str(tmp / "out")], tmp)[0]
                                        for _ in range(args.repeat))
            for mp, path in inputs.items():
                runs = [timed([*cmd, str(path), "-o", str(tmp / "out")], tmp) for _ in range(args.repeat)]
                wall = statistics.median(r[0] for r in runs)
                rss = max(r[1] for r in runs)
                row = {"command": f"ispcli {name}", "megapixels": mp, "wall_s": round(wall, 2),
                       "startup_s": round(startup, 2), "megapixels_per_s": round(mp / max(wall - startup, 1e-3), 2),
                       "peak_rss_mb": round(rss)}
                results.append(row)
                print(f"{row['command']:<28} {mp:>5g} MP  wall {wall:6.2f} s (start-up {startup:.2f} s)  "
                      f"{row['megapixels_per_s']:5.2f} MP/s  peak {rss:6.0f} MB", flush=True)
    out = ROOT / "benchmarks" / "results" / "restore_speed.json"
    out.write_text(json.dumps({"machine": "2-core CPU, 2 threads", "repeat": args.repeat, "results": results},
                              indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
