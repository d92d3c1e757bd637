"""Colour/demosaic fidelity of ispcli and peer raw developers on synthetic Kodak24 DNGs.

    python benchmarks/fidelity.py [--data ../shared/data/bench/Kodak24] [--tools ispcli,libraw-ahd,...]

Protocol: make_synthetic_dngs.py turns each Kodak24 image into a Bayer DNG (four real cameras'
matrices x four CFA orders, all 16 combinations covered). Every tool develops every DNG with
neutral settings (camera WB, sRGB, 16-bit TIFF, no tone curve/sharpening/denoising):
  ispcli        ispcli develop --look neutral -f tif --bits 16 (sRGB, camera WB are its defaults)
  libraw-*      rawpy.postprocess, demosaic AHD/AAHD/DHT (benchmarks/rawpy_develop.py)
  darktable-rcd darktable-cli with benchmarks/profiles/darktable_neutral_rcd.xmp
  rt-amaze/rcd  rawtherapee-cli with benchmarks/profiles/rawtherapee_neutral_{amaze,rcd}.pp3
Metric: one global exposure gain per image, fitted by least squares in linear light, then
re-encoded to sRGB, clipped to [0, 1]; PSNR and SSIM (skimage, 7x7 window, data_range 1) against
the 8-bit truth PNG, no border excluded. Outputs of another size than the truth (RawTherapee
drops a 4-pixel border) are compared on the common centred area; the table says so.

DNG names: LibRaw and darktable get DNGs written with --libraw-names (real Make/Model);
RawTherapee gets the same DNGs with Make "ispcli" ("plain"), because its camconst.json applies
the real sensor's raw_crop/white level to any file with that Make/Model (a 5-row crop on the
X-H1 flips the CFA phase). All three read ColorMatrix1/AsShotNeutral from the DNG itself, so the
plain files are developed with the same matrix (rt-*-named rows show the name-based quirk).
Missing tools are skipped with a message. Results: table on stdout, JSON in benchmarks/results/.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
PROFILES = HERE / "profiles"
CFAS = ("RGGB", "BGGR", "GRBG", "GBRG")
# Measured earlier on this protocol (PSNR dB), printed next to ours for comparison.
REFERENCE = {"libraw-ahd": 32.71, "libraw-aahd": 33.00, "libraw-dht": 33.12, "darktable-rcd": 33.41,
             "rt-rcd": 33.67, "rt-amaze": 35.46}
TARGET_MARGIN_DB = 0.5
PROTOCOL = ("synthetic Bayer DNGs (make_synthetic_dngs.py); camera WB, sRGB, 16-bit TIFF, neutral settings; "
            "one least-squares exposure gain in linear light, re-encoded to sRGB and clipped to [0,1]; "
            "PSNR and SSIM (skimage, 7x7, data_range 1) vs the 8-bit truth, no border excluded; "
            "different sizes compared on the common centred area")


@dataclass(frozen=True)
class Tool:
    kind: str       # ispcli | rawpy | darktable | rawtherapee
    arg: str = ""   # ispcli --demosaic, rawpy algorithm, or profile file name
    dngs: str = "named"  # which DNG set: named (real Make/Model) or plain (Make "ispcli")


TOOLS = {
    "ispcli": Tool("ispcli", "default"),
    "ispcli-menon": Tool("ispcli", "menon"),
    "ispcli-malvar": Tool("ispcli", "malvar"),
    "ispcli-bilinear": Tool("ispcli", "bilinear"),
    "libraw-ahd": Tool("rawpy", "AHD"),
    "libraw-aahd": Tool("rawpy", "AAHD"),
    "libraw-dht": Tool("rawpy", "DHT"),
    "darktable-rcd": Tool("darktable", "darktable_neutral_rcd.xmp"),
    "rt-amaze": Tool("rawtherapee", "rawtherapee_neutral_amaze.pp3", "plain"),
    "rt-rcd": Tool("rawtherapee", "rawtherapee_neutral_rcd.pp3", "plain"),
    "rt-amaze-named": Tool("rawtherapee", "rawtherapee_neutral_amaze.pp3", "named"),
    "rt-rcd-named": Tool("rawtherapee", "rawtherapee_neutral_rcd.pp3", "named"),
}
DEFAULT_TOOLS = "ispcli,libraw-ahd,libraw-aahd,libraw-dht,darktable-rcd,rt-rcd,rt-amaze"


def darktable_cmd(src: Path, xmp: Path, dst: Path, configdir: str) -> list[str]:
    """darktable-cli, headless and neutral: no workflow presets, as-shot WB, 16-bit plain TIFF."""
    return ["darktable-cli", str(src), str(xmp), str(dst), "--core", "--configdir", configdir,
            "--library", ":memory:", "--conf", "plugins/darkroom/workflow=none",
            "--conf", "plugins/darkroom/chromatic-adaptation=legacy",
            "--conf", "plugins/imageio/format/tiff/bpp=16", "--conf", "plugins/imageio/format/tiff/compress=0"]


def rawtherapee_cmd(srcs: list[Path], pp3: Path, outdir: Path) -> list[str]:
    return ["rawtherapee-cli", "-o", f"{outdir}/", "-p", str(pp3), "-q", "-t", "-b16", "-Y",
            "-c", *map(str, srcs)]


def ispcli_cmd(srcs: list[Path], outdir: Path, demosaic: str) -> list[str]:
    return [sys.executable, "-m", "ispcli", "develop", *map(str, srcs), "-o", str(outdir), "--look", "neutral",
            "-f", "tif", "--bits", "16", "--demosaic", demosaic, "--overwrite", "-q"]


def missing(tool: Tool) -> str | None:
    exe = {"darktable": "darktable-cli", "rawtherapee": "rawtherapee-cli"}.get(tool.kind)
    if exe and shutil.which(exe) is None:
        return f"{exe} not installed (apt-get install -y {'darktable' if tool.kind == 'darktable' else 'rawtherapee'})"
    if tool.kind == "rawpy":
        try:
            import rawpy  # noqa: F401
        except ImportError:
            return "rawpy not installed"
    return None


def run(cmd: list[str]) -> None:
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{cmd[0]} exited {proc.returncode}:\n{proc.stdout[-2000:]}")


def develop(tool: Tool, dngs: list[Path], outdir: Path) -> None:
    outdir.mkdir(parents=True, exist_ok=True)
    if tool.kind == "ispcli":
        run(ispcli_cmd(dngs, outdir, tool.arg))
    elif tool.kind == "rawpy":
        sys.path.insert(0, str(HERE))
        from rawpy_develop import develop as rawpy_develop

        for src in dngs:
            rawpy_develop(str(src), str(outdir / f"{src.stem}.tif"), tool.arg)
    elif tool.kind == "darktable":
        with tempfile.TemporaryDirectory(prefix="dtconf-") as conf:
            for src in dngs:
                dst = outdir / f"{src.stem}.tif"
                dst.unlink(missing_ok=True)  # darktable-cli would write name_01.tif next to it
                run(darktable_cmd(src, PROFILES / tool.arg, dst, conf))
    elif tool.kind == "rawtherapee":
        run(rawtherapee_cmd(dngs, PROFILES / tool.arg, outdir))


# --- metric -------------------------------------------------------------------------------

def srgb_to_linear(x: np.ndarray) -> np.ndarray:
    return np.where(x <= 0.04045, x / 12.92, ((np.maximum(x, 0.04045) + 0.055) / 1.055) ** 2.4)


def linear_to_srgb(x: np.ndarray) -> np.ndarray:
    return np.where(x <= 0.0031308, x * 12.92, 1.055 * np.maximum(x, 0.0031308) ** (1 / 2.4) - 0.055)


def load_unit(path: Path) -> np.ndarray:
    """(H, W, 3) float64 in [0, 1] from an 8/16-bit PNG or TIFF."""
    if path.suffix.lower() in (".tif", ".tiff"):
        import tifffile

        img = tifffile.imread(path)
    else:
        import imageio.v3 as iio

        img = iio.imread(path)
    img = np.asarray(img)
    if img.ndim == 2:
        img = np.stack([img] * 3, -1)
    return img[..., :3].astype(np.float64) / np.iinfo(img.dtype).max


def centre_crop(a: np.ndarray, h: int, w: int) -> np.ndarray:
    y, x = (a.shape[0] - h) // 2, (a.shape[1] - w) // 2
    return a[y:y + h, x:x + w]


def score(out: np.ndarray, truth: np.ndarray) -> tuple[float, float, float]:
    """(PSNR dB, SSIM, fitted linear gain) after one least-squares exposure gain."""
    from skimage.metrics import structural_similarity

    lin_o, lin_t = srgb_to_linear(out), srgb_to_linear(truth)
    gain = float((lin_o * lin_t).sum() / max((lin_o * lin_o).sum(), 1e-12))
    fitted = np.clip(linear_to_srgb(np.clip(lin_o * gain, 0, None)), 0, 1)
    mse = float(np.mean((fitted - truth) ** 2))
    psnr = 10 * np.log10(1.0 / max(mse, 1e-12))
    ssim = float(structural_similarity(fitted, truth, channel_axis=2, data_range=1.0))
    return float(psnr), ssim, gain


def evaluate(name: str, outdir: Path, entries: list[dict], truth_dir: Path) -> dict:
    rows, crops = [], set()
    for e in entries:
        stem = Path(e["dng"]).stem
        out, truth = load_unit(outdir / f"{stem}.tif"), load_unit(truth_dir / e["truth"])
        if out.shape[:2] != truth.shape[:2]:
            if (out.shape[0] > out.shape[1]) != (truth.shape[0] > truth.shape[1]):
                raise RuntimeError(f"{name}: {stem} orientation differs ({out.shape[:2]} vs {truth.shape[:2]})")
            h, w = min(out.shape[0], truth.shape[0]), min(out.shape[1], truth.shape[1])
            out, truth = centre_crop(out, h, w), centre_crop(truth, h, w)
            crops.add(f"{e['height']}x{e['width']} -> {h}x{w}")
        psnr, ssim, gain = score(out, truth)
        rows.append({"dng": e["dng"], "camera": e["camera"], "cfa": e["cfa"], "psnr": round(psnr, 3),
                     "ssim": round(ssim, 5), "gain": round(gain, 4)})
    mean = lambda key, sel=lambda r: True: float(np.mean([r[key] for r in rows if sel(r)]))  # noqa: E731
    return {
        "n": len(rows), "psnr": round(mean("psnr"), 3), "ssim": round(mean("ssim"), 5),
        "per_cfa": {c: {"psnr": round(mean("psnr", lambda r: r["cfa"] == c), 3),
                        "ssim": round(mean("ssim", lambda r: r["cfa"] == c), 5)} for c in CFAS
                    if any(r["cfa"] == c for r in rows)},
        "per_camera": {cam: round(mean("psnr", lambda r: r["camera"] == cam), 3)
                       for cam in sorted({r["camera"] for r in rows})},
        "aligned_by_centre_crop": sorted(crops), "files": rows,
    }


# --- driver ---------------------------------------------------------------------------------

def make_dngs(data: Path, out: Path, named: bool, limit: int | None, all_combos: bool) -> dict:
    manifest = out / "manifest.json"
    if not manifest.exists():
        cmd = [sys.executable, str(HERE / "make_synthetic_dngs.py"), "--data", str(data), "--out", str(out)]
        cmd += ["--libraw-names"] if named else []
        cmd += ["--limit", str(limit)] if limit else []
        cmd += ["--all"] if all_combos else []
        run(cmd)
    return json.loads(manifest.read_text())


def print_table(results: dict, reference: dict) -> None:
    head = f"{'tool':<16}{'n':>3}{'PSNR':>8}{'SSIM':>8}" + "".join(f"{c:>8}" for c in CFAS)
    print(head + f"{'ref':>8}{'time s':>8}  note\n" + "-" * (len(head) + 30))
    for name, r in results.items():
        if "skipped" in r:
            print(f"{name:<16}  skipped: {r['skipped']}")
            continue
        cfa = "".join(f"{r['per_cfa'].get(c, {}).get('psnr', float('nan')):>8.2f}" for c in CFAS)
        ref = f"{reference[name]:>8.2f}" if name in reference else f"{'':>8}"
        note = ("centre crop " + ", ".join(r["aligned_by_centre_crop"])) if r["aligned_by_centre_crop"] else ""
        print(f"{name:<16}{r['n']:>3}{r['psnr']:>8.2f}{r['ssim']:>8.4f}{cfa}{ref}{r['develop_seconds'] or float('nan'):>8.1f}"
              f"  {note}")
    print("(PSNR dB per CFA order; ref = earlier measurement on this protocol; time = developing all files)")
    print("(without --all-combos each CFA column holds different images, so compare tools within a column)")
    if "ispcli" in results and "psnr" in results["ispcli"]:
        peers = {k: v["psnr"] for k, v in results.items() if not k.startswith("ispcli") and "psnr" in v
                 and not k.endswith("-named")}
        if peers:
            best = max(peers, key=peers.get)
            margin = results["ispcli"]["psnr"] - peers[best]
            verdict = "meets" if margin >= TARGET_MARGIN_DB else "misses"
            print(f"ispcli - best peer ({best}) = {margin:+.2f} dB: {verdict} the target (>= +{TARGET_MARGIN_DB} dB)")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    ap.add_argument("--data", type=Path, default=Path("../shared/data/bench/Kodak24"),
                    help="Kodak24 PNG folder (default ../shared/data/bench/Kodak24, from the repo root)")
    ap.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "ispcli-fidelity",
                    help="scratch folder for DNGs and developed TIFFs (default: <tmp>/ispcli-fidelity)")
    ap.add_argument("--tools", default=DEFAULT_TOOLS, help=f"comma list from {', '.join(TOOLS)}")
    ap.add_argument("--limit", type=int, default=None, help="only the first N images (quick checks)")
    ap.add_argument("--all-combos", action="store_true",
                    help="every image with all 16 camera x CFA combinations (balanced per-CFA means, 16x the work)")
    ap.add_argument("--reuse", action="store_true", help="score existing outputs in --work, develop nothing")
    ap.add_argument("--results", type=Path, default=HERE / "results" / "fidelity.json")
    args = ap.parse_args(argv)

    names = [t.strip() for t in args.tools.split(",") if t.strip()]
    unknown = [t for t in names if t not in TOOLS]
    if unknown:
        ap.error(f"unknown tools {unknown}; choose from {', '.join(TOOLS)}")
    suffix = (f"-limit{args.limit}" if args.limit else "") + ("-all" if args.all_combos else "")
    sets = {kind: args.work / f"dng-{kind}{suffix}" for kind in ("named", "plain")}
    manifests = {kind: make_dngs(args.data, d, kind == "named", args.limit, args.all_combos) for kind, d in sets.items()}
    results: dict[str, dict] = {}
    for name in names:
        tool = TOOLS[name]
        why = missing(tool)
        if why:
            print(f"skipping {name}: {why}", file=sys.stderr)
            results[name] = {"skipped": why}
            continue
        manifest, dng_dir = manifests[tool.dngs], sets[tool.dngs]
        outdir = args.work / f"out-{name}{suffix}"
        seconds = None
        if not args.reuse:
            print(f"developing {len(manifest['files'])} files with {name} ...", file=sys.stderr, flush=True)
            if outdir.exists():
                shutil.rmtree(outdir)
            start = time.perf_counter()
            develop(tool, [dng_dir / e["dng"] for e in manifest["files"]], outdir)
            seconds = round(time.perf_counter() - start, 2)
        results[name] = {"develop_seconds": seconds, "dngs": tool.dngs,
                         **evaluate(name, outdir, manifest["files"], dng_dir)}
    print_table(results, REFERENCE if args.data.name == "Kodak24" and not args.limit else {})
    args.results.parent.mkdir(parents=True, exist_ok=True)
    payload = {"protocol": PROTOCOL, "source_set": args.data.name,
               "dngs": len(manifests["named"]["files"]), "all_combos": args.all_combos, "reference_psnr": REFERENCE,
               "tool_versions": versions(), "results": results}
    args.results.write_text(json.dumps(payload, indent=1) + "\n")
    print(f"wrote {os.path.relpath(args.results)}")
    return 0


def versions() -> dict:
    out = {}
    for exe, flag in (("darktable-cli", "--version"), ("rawtherapee-cli", "-v")):
        if shutil.which(exe):
            text = subprocess.run([exe, flag], capture_output=True, text=True).stdout
            out[exe] = next((ln.strip() for ln in text.splitlines() if "version" in ln.lower() or "darktable-cli" in ln), "")
    try:
        import rawpy

        out["rawpy"] = f"{rawpy.__version__} (LibRaw {'.'.join(map(str, rawpy.libraw_version))})"
    except ImportError:
        pass
    import ispcli

    out["ispcli"] = ispcli.__version__
    return out


if __name__ == "__main__":
    sys.exit(main())
