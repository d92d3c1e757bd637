"""What a learned stage adds to `ispcli develop`: wall time and peak RSS with and without it.

    python benchmarks/learned_develop_cost.py [--repeats 5] [--folder N] [--data ../shared/data/bench/Kodak24]

One 24-megapixel Bayer DNG (the scene of benchmarks/speed.py), developed to JPEG (the default)
by whole commands, as a user runs them: plain, with each raw denoiser (`--denoise`), and with
the learned demosaicker. Commands are interleaved round by round (this machine's speed drifts)
and every output is deleted outside the timing. Reported: median wall time, CPU time and peak
RSS per command and each one's wall time as a multiple of plain develop's (issue 6's target:
at most 3x with learned denoising). `--folder N` also develops a folder of N such DNGs (rolled
scene, camera and CFA cycling, as speed.py's batch) with each command, default jobs.
Results in benchmarks/results/learned_develop_cost.json.
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from speed import make_scene, portable, rounds, write_variant  # noqa: E402

VARIANTS = {
    "develop": [],
    "develop --denoise raw-denoise-fast": ["--denoise", "raw-denoise-fast"],
    "develop --denoise raw-denoise-unet": ["--denoise", "raw-denoise-unet"],
    "develop --demosaic net:demosaic-unet": ["--demosaic", "net:demosaic-unet"],
}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    ap.add_argument("--data", type=Path, default=Path("../shared/data/bench/Kodak24"))
    ap.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "ispcli-learned-cost")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--folder", type=int, default=0,
                    help="also develop a folder of this many 24 MP DNGs with each command (default jobs)")
    ap.add_argument("--folder-repeats", type=int, default=1)
    ap.add_argument("--results", type=Path, default=HERE / "results" / "learned_develop_cost.json")
    args = ap.parse_args(argv)
    if not args.data.is_dir():
        print(f"no benchmark images at {args.data}", file=sys.stderr)
        return 2
    args.work.mkdir(parents=True, exist_ok=True)
    dng = args.work / "scene24mp.dng"
    if not dng.exists():
        write_variant(make_scene(args.data), dng, 0)
    ispcli = shutil.which("ispcli") or str(Path(sys.executable).parent / "ispcli")
    out = args.work / "out"
    cmds = {name: [ispcli, "develop", str(dng), "-o", str(out), "--overwrite", "-q"] + extra
            for name, extra in VARIANTS.items()}
    fresh = {name: (lambda: shutil.rmtree(out, ignore_errors=True)) for name in cmds}
    res = rounds(cmds, args.repeats, args.work / "last.log", fresh)
    base = res["develop"]["wall_s"]
    print(f"24 MP DNG -> JPEG, medians of {args.repeats} interleaved rounds")
    for name, r in res.items():
        r["x_plain_develop"] = round(r["wall_s"] / base, 2)
        print(f"  {name:<38} {r['wall_s']:6.2f} s  CPU {r['cpu_s']:6.2f} s  RSS {r['rss_mb']:6.0f} MB"
              f"  {r['x_plain_develop']:.2f}x")
    record = {"protocol": __doc__, "repeats": args.repeats,
              "commands": {name: portable(cmd, args.work) for name, cmd in cmds.items()}, "results": res}
    if args.folder:
        folder = args.work / f"folder{args.folder}"
        folder.mkdir(exist_ok=True)
        scene = None
        for i in range(args.folder):
            if not (folder / f"v{i:02d}.dng").exists():
                scene = make_scene(args.data) if scene is None else scene
                write_variant(scene, folder / f"v{i:02d}.dng", i)
        fcmds = {name: [ispcli, "develop", str(folder), "-o", str(out), "--overwrite", "-q"] + extra
                 for name, extra in VARIANTS.items()}
        fres = rounds(fcmds, args.folder_repeats, args.work / "last.log", fresh, warm=False, digits=2)
        fbase = fres["develop"]["wall_s"]
        print(f"folder of {args.folder} such DNGs, default jobs, medians of {args.folder_repeats}")
        for name, r in fres.items():
            r["x_plain_develop"] = round(r["wall_s"] / fbase, 2)
            r["megapixels_per_s"] = round(24 * args.folder / r["wall_s"], 2)
            print(f"  {name:<38} {r['wall_s']:6.1f} s  {r['megapixels_per_s']:5.2f} MP/s  RSS {r['rss_mb']:6.0f} MB"
                  f"  {r['x_plain_develop']:.2f}x")
        record["folder"] = {"files": args.folder, "repeats": args.folder_repeats, "results": fres}
    args.results.parent.mkdir(parents=True, exist_ok=True)
    args.results.write_text(json.dumps(record, indent=1) + "\n")
    shutil.rmtree(out, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
