"""Speed and memory of ispcli and peer raw developers on a synthetic 24-megapixel DNG.

    python benchmarks/speed.py [--data ../shared/data/bench/Kodak24] [--repeats 3] [--batch 20]

(a) Scene: the first 16 Kodak24 images (portraits turned), each upscaled 2x (bicubic) and tiled
    4x4, cropped to 6000x4000, plus fine texture (Gaussian noise, sigma 2/255, fixed seed); made a
    Bayer DNG like make_synthetic_dngs.py does (Sony ILCE-7RM3 matrix, RGGB, Make "ispcli").
    Each command runs once untimed (warm caches), then --repeats rounds in which every command
    runs once (interleaved: the machine's speed drifts); medians are reported.
    Wall time is the whole command; peak RSS is GNU time's %M (the largest single process).
    Other sessions may share the cores: each timed run waits for an idle second, and a run
    during which other processes used > 5% of the machine's CPU is retried (up to 4 times,
    then kept and flagged "clean": false in the JSON). Commands: ispcli develop -f tif --bits 16 (default settings otherwise), rawpy AHD and
    AAHD writing a 16-bit TIFF (benchmarks/rawpy_develop.py), darktable-cli (RCD) and
    rawtherapee-cli (RCD, AMaZE) with the neutral profiles of benchmarks/profiles/.
(b) Batch: --batch variants of the 24 MP scene (rolled by a different offset, cycling through
    the 16 camera x CFA combinations) in one folder; ispcli develop FOLDER with default jobs,
    pinned to one core (taskset -c 0), --jobs 1 and --jobs 2 (median of --batch-repeats rounds).
(c) Profile: one develop of the 24 MP file in-process with timers around each phase and each
    pipeline stage (summed over all tiles).
Missing tools are skipped with a message. Table on stdout, JSON in benchmarks/results/speed.json.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from fidelity import PROFILES, darktable_cmd, rawtherapee_cmd  # noqa: E402
from make_synthetic_dngs import CFAS, load_srgb, synthesize  # noqa: E402

WIDTH, HEIGHT = 6000, 4000
# Earlier measurements on a 24 MP DNG (seconds) and our targets.
REFERENCE = {"libraw-ahd": 3.2, "libraw-aahd": 8.8, "darktable-rcd": 6.4, "rt-rcd": 9.7}
TARGET_RSS_MB, TARGET_VS_AAHD, TARGET_SCALING = 1500, 0.7, 1.7


def make_scene(data: Path, seed: int = 0) -> np.ndarray:
    import cv2

    tiles = []
    for src in sorted(p for p in data.iterdir() if p.suffix.lower() == ".png")[:16]:
        img = load_srgb(src)
        img = np.rot90(img) if img.shape[0] > img.shape[1] else img
        tiles.append(cv2.resize(np.ascontiguousarray(img), (1536, 1024), interpolation=cv2.INTER_CUBIC))
    rows = [np.concatenate(tiles[r * 4:(r + 1) * 4], axis=1) for r in range(4)]
    scene = np.concatenate(rows, axis=0)[:HEIGHT, :WIDTH].astype(np.float32)
    scene += np.random.default_rng(seed).normal(0, 2.0, scene.shape).astype(np.float32)
    return np.clip(np.rint(scene), 0, 255).astype(np.uint8)


def write_variant(scene: np.ndarray, path: Path, index: int) -> None:
    from ispcli.io.dng import write_dng
    from ispcli.train import unprocess as up

    cams = list(up.CAMERA_MATRICES)
    camera, cfa = (cams[index % 4], CFAS[(index // 4) % 4]) if index else ("Sony ILCE-7RM3", "RGGB")
    img = np.roll(scene, (index * 401, index * 997), axis=(0, 1)) if index else scene
    counts, m, _, _ = synthesize(img, camera, cfa, None, index, 512, 16383)
    write_dng(path, counts, cfa=cfa, black_level=512, white_level=16383,
              color_matrix1=np.array(up.CAMERA_MATRICES[camera]), as_shot_neutral=up.camera_neutral(m).double().numpy(),
              make="ispcli", model=f"Synthetic {camera}")


def busy_seconds() -> float:
    """CPU seconds spent by the whole machine so far (all processes, all cores)."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (sum(fields[:8]) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")  # minus idle, iowait


def wait_until_idle(max_wait: float = 120.0) -> None:
    """Other sessions may share these cores: wait for a quiet second (at most max_wait)."""
    end = time.time() + max_wait
    while time.time() < end:
        b = busy_seconds()
        time.sleep(1.0)
        if busy_seconds() - b < 0.1:
            return


def measure(cmd: list[str], log: Path) -> dict:
    """Wall and CPU seconds, peak RSS (MB) of one command, and CPU seconds used meanwhile by
    other processes ("foreign"). RSS comes from GNU time when installed: ru_maxrss of a direct
    child of this (large) Python process would include our own pre-exec RSS."""
    gnu_time, stats = Path("/usr/bin/time").exists(), log.with_suffix(".time")
    full = ["/usr/bin/time", "-f", "%M", "-o", str(stats)] + cmd if gnu_time else cmd
    busy0 = busy_seconds()
    with open(log, "wb") as fh:
        start = time.perf_counter()
        proc = subprocess.Popen(full, stdout=fh, stderr=subprocess.STDOUT)
        _, status, ru = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
    busy = busy_seconds() - busy0
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"{' '.join(cmd[:3])}... exited {os.waitstatus_to_exitcode(status)}; see {log}")
    cpu = ru.ru_utime + ru.ru_stime
    rss = int(stats.read_text().split()[-1]) / 1024 if gnu_time else ru.ru_maxrss / 1024
    return {"wall_s": wall, "cpu_s": cpu, "rss_mb": rss, "foreign_cpu_s": max(0.0, busy - cpu)}


def clean_run(cmd: list[str], log: Path, before=None, attempts: int = 4) -> dict:
    """One measurement taken while no other process used more than 5% of the machine."""
    for i in range(attempts):
        wait_until_idle()
        if before:
            before()
        r = measure(cmd, log)
        r["clean"] = r["foreign_cpu_s"] <= 0.05 * r["wall_s"] * len(os.sched_getaffinity(0))
        if r["clean"]:
            break
        print(f"    (other processes used {r['foreign_cpu_s']:.1f} CPU s during a {r['wall_s']:.1f} s run;"
              f" {'retrying' if i + 1 < attempts else 'keeping it, flagged'})", file=sys.stderr, flush=True)
    return r


def rounds(cmds: dict[str, list[str]], n: int, log: Path, before: dict | None = None, warm: bool = True,
           digits: int = 3, attempts: int = 4) -> dict:
    """Each command once per round, `n` rounds, medians per command. Interleaving matters: this
    machine's speed drifts by tens of percent over minutes, which back-to-back repeats of one
    command would charge to that command alone."""
    before = before or {}
    if warm:
        for name, cmd in cmds.items():
            if before.get(name):
                before[name]()
            measure(cmd, log)  # warm-up: caches, first-run costs; not counted
    runs: dict[str, list] = {name: [] for name in cmds}
    for _ in range(n):
        for name, cmd in cmds.items():
            runs[name].append(clean_run(cmd, log, before.get(name), attempts))
    out = {}
    for name, rs in runs.items():
        med = {k: round(statistics.median(r[k] for r in rs), digits) for k in ("wall_s", "cpu_s", "rss_mb")}
        out[name] = {**med, "runs": [{k: round(v, 3) if isinstance(v, float) else v for k, v in r.items()}
                                     for r in rs]}
    return out


def portable(cmd: list[str], work: Path) -> str:
    """The command as text without this machine's absolute paths (for the JSON record)."""
    subs = [(str(work), "<work>"), (str(HERE.parent), "."), (sys.executable, "python"),
            (str(Path(sys.executable).parent) + "/", ""), (tempfile.gettempdir(), "<tmp>")]
    text = " ".join(cmd)
    for old, new in subs:
        text = text.replace(old, new)
    return text


def single_file_commands(dng: Path, out: Path, conf: str) -> dict[str, list[str] | str]:
    ispcli = shutil.which("ispcli") or str(Path(sys.executable).parent / "ispcli")
    helper = [sys.executable, str(HERE / "rawpy_develop.py"), str(dng), str(out / "rawpy.tif")]
    cmds: dict[str, list[str] | str] = {
        "ispcli": [ispcli, "develop", str(dng), "-o", str(out), "-f", "tif", "--bits", "16", "--overwrite", "-q"],
        "libraw-ahd": helper + ["--demosaic", "AHD"], "libraw-aahd": helper + ["--demosaic", "AAHD"],
        "darktable-rcd": darktable_cmd(dng, PROFILES / "darktable_neutral_rcd.xmp", out / "dt.tif", conf),
        "rt-rcd": rawtherapee_cmd([dng], PROFILES / "rawtherapee_neutral_rcd.pp3", out),
        "rt-amaze": rawtherapee_cmd([dng], PROFILES / "rawtherapee_neutral_amaze.pp3", out),
    }
    return {k: v if shutil.which(v[0]) else f"{v[0]} not installed" for k, v in cmds.items()}


def profile(dng: Path, out: Path) -> dict:
    """Seconds per phase of one in-process develop (default recipe, 16-bit TIFF): the first run
    warms up, then runs repeat until one sees no other process on the machine (at most 5)."""
    import resource

    import torch

    from ispcli import __version__
    from ispcli.io import icc
    from ispcli.io.exif import output_tags
    from ispcli.io.images import save_image
    from ispcli.io.raw import read_raw
    from ispcli.pipeline import develop, runner
    from ispcli.pipeline.device import resolve_device, set_cpu_threads
    from ispcli.pipeline.jobs import Canvas
    from ispcli.pipeline.stage import Pipeline, Stage
    from ispcli.pipeline.tiling import tile_grid
    from ispcli.recipe import Recipe

    set_cpu_threads(1)  # what the CLI does for a single file
    recipe, device = Recipe(format="tif", bits=16), resolve_device("auto")
    for attempt in range(6):
        wait_until_idle()
        busy0, self0 = busy_seconds(), resource.getrusage(resource.RUSAGE_SELF)
        t, stage_s = {}, {}
        tick = time.perf_counter()

        def lap(name: str) -> None:
            nonlocal tick
            t[name], tick = time.perf_counter() - tick, time.perf_counter()

        def timed(name, fn):
            def call(*a):
                s = time.perf_counter()
                y = fn(*a)
                stage_s[name] = stage_s.get(name, 0.0) + time.perf_counter() - s
                return y
            return call

        raw = read_raw(dng)
        lap("decode (read_raw)")
        analysis = develop.analyse(raw, recipe)
        pipeline = develop.build_pipeline(raw, recipe, analysis)
        lap("analysis + build_pipeline")
        timed_pipe = Pipeline([Stage(s.name, s.domain_in, s.domain_out, timed(s.name, s.fn), s.halo)
                               for s in pipeline.stages])
        canvas = Canvas(raw.height, raw.width, raw.orientation, recipe.bits)
        align = raw.cfa.shape[0] if raw.cfa is not None else 1
        runner.run(timed_pipe, raw.data, timed("sink: quantise + copy to canvas", canvas),
                   device=device, tile=recipe.tile, align=align)
        lap("tiles (runner.run)")
        image = canvas.image
        tags = output_tags(raw.exif, gps=recipe.gps, width=image.shape[1], height=image.shape[0],
                           software=f"ispcli {__version__}")
        save_image(out / "profile.tif", image, "tif", icc=icc.icc_profile(recipe.color_space), exif=tags,
                   overwrite=True)
        lap("encode + EXIF + write (save_image)")
        self1 = resource.getrusage(resource.RUSAGE_SELF)
        mine = self1.ru_utime + self1.ru_stime - self0.ru_utime - self0.ru_stime
        foreign = max(0.0, busy_seconds() - busy0 - mine)
        if attempt and foreign <= 0.05 * sum(t.values()) * len(os.sched_getaffinity(0)):
            break
    tiles = tile_grid(raw.height, raw.width, recipe.tile or runner.auto_tile(device), pipeline.halo, align)
    stage_s["region: slice + float32 + tensor"] = t["tiles (runner.run)"] - sum(stage_s.values())
    return {"phases_s": {k: round(v, 3) for k, v in t.items()}, "total_s": round(sum(t.values()), 3),
            "stages_s": {k: round(v, 3) for k, v in stage_s.items()}, "tiles": len(tiles),
            "tile_size": recipe.tile or runner.auto_tile(device), "halo": pipeline.halo,
            "torch_threads": torch.get_num_threads(), "device": str(device),
            "foreign_cpu_s": round(foreign, 2), "attempts": attempt + 1}


def batch(folder: Path, out: Path, log: Path, repeats: int, ray: bool = False) -> dict:
    ispcli = shutil.which("ispcli") or str(Path(sys.executable).parent / "ispcli")
    base = [ispcli, "develop", str(folder), "-o", str(out), "-f", "tif", "--bits", "16", "--overwrite", "-q"]
    configs = {"default jobs": base, "taskset -c 0": ["taskset", "-c", "0"] + base,
               "--jobs 1": base + ["--jobs", "1"], "--jobs 2": base + ["--jobs", "2"]}
    n = len(list(folder.glob("*.dng")))
    fresh = {name: (lambda: shutil.rmtree(out, ignore_errors=True)) for name in configs}
    res = rounds(configs, repeats, log, fresh, warm=False, digits=2)
    if ray:  # a local Ray instance of 1 and 2 workers (its start-up included)
        rays = {f"ray --jobs {n}": base + ["--executor", "ray", "--jobs", str(n)] for n in (1, 2)}
        # Ray's workers are its daemons' children, not the command's: their CPU shows as another
        # process's, so these runs are taken as they come instead of retried as disturbed
        res.update(rounds(rays, repeats, log, {name: fresh["default jobs"] for name in rays}, warm=False,
                          digits=2, attempts=1))
    for name, r in res.items():
        r["files_per_min"] = round(60 * n / r["wall_s"], 2)
        print(f"  batch {name:<14} {r['wall_s']:7.1f} s  {r['files_per_min']:6.2f} files/min", flush=True)
    shutil.rmtree(out, ignore_errors=True)
    return res


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    ap.add_argument("--data", type=Path, default=Path("../shared/data/bench/Kodak24"))
    ap.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "ispcli-speed")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--tools", default="ispcli,libraw-ahd,libraw-aahd,darktable-rcd,rt-rcd,rt-amaze",
                    help="single-file commands to time ('none': skip)")
    ap.add_argument("--batch", type=int, default=20, help="files in the batch folder (0: skip the batch test)")
    ap.add_argument("--batch-repeats", type=int, default=1)
    ap.add_argument("--ray", action="store_true", help="also time the batch on a local Ray instance")
    ap.add_argument("--no-profile", action="store_true")
    ap.add_argument("--results", type=Path, default=HERE / "results" / "speed.json")
    args = ap.parse_args(argv)
    args.work.mkdir(parents=True, exist_ok=True)
    folder, out, log = args.work / "batch", args.work / "out", args.work / "last_command.log"
    dng = folder / "v00.dng"
    folder.mkdir(exist_ok=True)
    if not dng.exists() or len(list(folder.glob("*.dng"))) < args.batch:
        print("making the 24 MP scene and DNGs ...", file=sys.stderr, flush=True)
        scene = make_scene(args.data)
        for i in range(max(1, args.batch)):
            if not (folder / f"v{i:02d}.dng").exists():
                write_variant(scene, folder / f"v{i:02d}.dng", i)
        del scene
    results = {"file": {"width": WIDTH, "height": HEIGHT, "megapixels": WIDTH * HEIGHT / 1e6,
                        "bytes": dng.stat().st_size}, "cpus": len(os.sched_getaffinity(0)), "single": {}}
    single_dir = args.work / "single"  # one DNG alone: folder inputs must not pick up the batch
    single_dir.mkdir(exist_ok=True)
    single = single_dir / "scene24mp.dng"
    if not single.exists():
        os.link(dng, single)
    with tempfile.TemporaryDirectory(prefix="dtconf-") as conf:
        cmds = single_file_commands(single, out, conf)
        chosen = {}
        for name in [t.strip() for t in args.tools.split(",") if t.strip() not in ("", "none")]:
            cmd = cmds.get(name, f"unknown tool (choose from {', '.join(cmds)})")
            if isinstance(cmd, str):
                print(f"skipping {name}: {cmd}", file=sys.stderr)
                results["single"][name] = {"skipped": cmd}
            else:
                chosen[name] = cmd
        shutil.rmtree(out, ignore_errors=True)
        out.mkdir(parents=True)
        # Every tool's outputs go before each run, outside the timing: darktable-cli will not
        # overwrite, and deleting a 144 MB file costs the others 0.3-0.6 s inside theirs here
        # (ext4 frees and discards its blocks in the rename that replaces it).
        def clear():
            for f in out.iterdir():
                f.unlink()
            os.sync()

        before = {name: clear for name in chosen}
        for name, r in rounds(chosen, args.repeats, log, before).items():
            results["single"][name] = {"command": portable(chosen[name], args.work), **r}
            print(f"  {name:<14} {r['wall_s']:6.2f} s  {r['rss_mb']:7.0f} MB", file=sys.stderr, flush=True)
    if not args.no_profile:
        out.mkdir(parents=True, exist_ok=True)
        results["profile"] = profile(single, out)
    if args.batch:
        results["batch"] = {"files": args.batch, "what": "24 MP variants (rolled scene, camera x CFA cycling)",
                            **batch(folder, out, log, args.batch_repeats, args.ray)}
    report(results)
    args.results.parent.mkdir(parents=True, exist_ok=True)
    args.results.write_text(json.dumps(results, indent=1) + "\n")
    print(f"wrote {os.path.relpath(args.results)}")
    return 0


def report(res: dict) -> None:
    print(f"\n24 MP DNG ({res['file']['width']}x{res['file']['height']}), {res['cpus']} CPUs, medians of repeats")
    print(f"{'tool':<15}{'wall s':>8}{'cpu s':>8}{'RSS MB':>8}{'ref s':>7}")
    for name, r in res["single"].items():
        if "skipped" in r:
            print(f"{name:<15}skipped: {r['skipped']}")
            continue
        ref = f"{REFERENCE[name]:>7.1f}" if name in REFERENCE else ""
        print(f"{name:<15}{r['wall_s']:>8.2f}{r['cpu_s']:>8.2f}{r['rss_mb']:>8.0f}{ref}")
    wall = {k: v["wall_s"] for k, v in res["single"].items() if "wall_s" in v}
    if "ispcli" in wall:
        rss = res["single"]["ispcli"]["rss_mb"]
        checks = [f"RSS {rss:.0f} MB <= {TARGET_RSS_MB}: {rss <= TARGET_RSS_MB}"]
        if "darktable-rcd" in wall:
            checks.append(f"wall <= darktable-cli ({wall['darktable-rcd']:.2f} s): {wall['ispcli'] <= wall['darktable-rcd']}")
        if "libraw-aahd" in wall:
            lim = TARGET_VS_AAHD * wall["libraw-aahd"]
            checks.append(f"wall <= {TARGET_VS_AAHD} x LibRaw AAHD ({lim:.2f} s): {wall['ispcli'] <= lim}")
        print("ispcli targets: " + "; ".join(checks))
    if "profile" in res:
        p = res["profile"]
        print(f"\nispcli in-process profile ({p['tiles']} tiles of {p['tile_size']} + halo {p['halo']}, "
              f"{p['torch_threads']} torch threads, {p['device']}): total {p['total_s']:.2f} s")
        for k, v in p["phases_s"].items():
            print(f"  {k:<38}{v:>7.2f} s {100 * v / p['total_s']:5.1f}%")
        print("  stages, summed over tiles:")
        for k, v in p["stages_s"].items():
            print(f"    {k:<36}{v:>7.2f} s")
        if "ispcli" in wall:
            print(f"  {'start-up, imports (CLI wall - total)':<38}{wall['ispcli'] - p['total_s']:>7.2f} s")
    if "batch" in res:
        b = res["batch"]
        print(f"\nbatch of {b['files']} files ({b['what']}):")
        for k in [k for k in b if isinstance(b[k], dict)]:
            print(f"  {k:<14}{b[k]['wall_s']:>8.1f} s {b[k]['files_per_min']:>7.2f} files/min "
                  f"{b[k]['cpu_s']:>7.1f} CPU s  largest process {b[k]['rss_mb']:.0f} MB")
        ratio = b["taskset -c 0"]["wall_s"] / b["default jobs"]["wall_s"]
        print(f"  default vs one core: {ratio:.2f}x (target >= {TARGET_SCALING})")
        b["scaling_default_vs_one_core"] = round(ratio, 3)


if __name__ == "__main__":
    sys.exit(main())
