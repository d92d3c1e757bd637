"""Raw denoising on synthetic noisy DNGs: ispcli develop --denoise against LibRaw's wavelet
noise reduction and against develop followed by the sRGB denoiser.

    python benchmarks/raw_denoise.py [--data ../shared/data/bench/Kodak24] [--iso 1600 6400] [--limit N]

Protocol: make_synthetic_dngs.py --iso N turns each Kodak24 image into a Bayer DNG whose counts
carry shot/read noise at that ISO (noise_levels_for_iso: the model the raw denoiser's noise level
comes from; the DNG records the ISO). Every method develops it with neutral settings to a 16-bit
sRGB TIFF and is scored against the clean source exactly as fidelity.py scores (one least-squares
exposure gain in linear light, sRGB re-encoded, clipped; PSNR and SSIM vs the 8-bit truth):
  ispcli                 develop --look neutral (no denoising)
  ispcli+raw-denoise     develop --look neutral --denoise MODEL
  ispcli+srgb-denoise    develop --look neutral, then ispcli denoise --model SRGB_MODEL (blind σ)
  libraw-ahd thr=T       LibRaw's dcraw_emu -n T (wavelet denoising), AHD, camera WB, sRGB curve,
                         16-bit; every T of --thresholds is run and the best mean PSNR per ISO is
                         reported. (Debian's libraw-bin: rawpy 0.28 / LibRaw 0.22 segfaults in
                         postprocess(noise_thr=...) on every file tried, samples included.)
The noise-free DNGs are developed too (ispcli and LibRaw) to show what demosaicking alone costs.
Results: table on stdout, JSON in benchmarks/results/raw_denoise.json.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from fidelity import load_unit, score  # noqa: E402


def run(cmd: list[str]) -> None:
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if proc.returncode not in (0,):
        raise RuntimeError(f"{' '.join(cmd[:4])}… exited {proc.returncode}:\n{proc.stdout[-2000:]}")


def ispcli(*args: str) -> list[str]:
    return [sys.executable, "-m", "ispcli", *args]


def make(data: Path, out: Path, iso: int | None, limit: int | None) -> dict:
    cmd = [sys.executable, str(HERE / "make_synthetic_dngs.py"), "--data", str(data), "--out", str(out)]
    cmd += ["--iso", str(iso)] if iso else []
    cmd += ["--limit", str(limit)] if limit else []
    run(cmd)
    return json.loads((out / "manifest.json").read_text())


def mean_scores(outdir: Path, manifest: dict, root: Path, suffix: str = ".tif") -> dict:
    rows = []
    for e in manifest["files"]:
        out = load_unit(outdir / (Path(e["dng"]).stem + suffix))
        psnr, ssim, _ = score(out, load_unit(root / e["truth"]))
        rows.append((psnr, ssim))
    a = np.array(rows)
    return {"psnr": round(float(a[:, 0].mean()), 3), "ssim": round(float(a[:, 1].mean()), 4), "n": len(rows)}


def develop_ispcli(dngs: Path, out: Path, *extra: str) -> None:
    run(ispcli("develop", str(dngs), "-o", str(out), "--look", "neutral", "-f", "tif", "--bits", "16", "-q", *extra))


def libraw(dngs: Path, out: Path, thr: float) -> None:
    """dcraw_emu with the settings of rawpy_develop.py (camera WB, sRGB, sRGB curve, no auto
    brightening, 16 bits, AHD) plus -n THR."""
    import shutil

    if not shutil.which("dcraw_emu"):
        raise SystemExit("dcraw_emu not found: apt install libraw-bin")
    out.mkdir(parents=True, exist_ok=True)
    for src in sorted(dngs.glob("*.dng")):
        run(["dcraw_emu", "-w", "-o", "1", "-q", "3", "-6", "-g", "2.4", "12.92", "-W", "-n", f"{thr:g}", "-T",
             str(src)])
        Path(f"{src}.tiff").replace(out / f"{src.stem}.tif")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=HERE.parent.parent / "shared" / "data" / "bench" / "Kodak24")
    ap.add_argument("--iso", type=int, nargs="+", default=[1600, 6400])
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--model", default="raw-denoise-unet")
    ap.add_argument("--srgb-model", default="denoise-unet")
    ap.add_argument("--thresholds", type=float, nargs="+", default=[0, 100, 200, 400, 800, 1600, 3200, 6400])
    ap.add_argument("--json", type=Path, default=HERE / "results" / "raw_denoise.json")
    args = ap.parse_args(argv)
    if not args.data.is_dir():
        ap.error(f"{args.data}: no such folder (the benchmark needs ../shared/data/bench/Kodak24)")

    results: dict = {"protocol": __doc__.split("\n\n")[2], "data": args.data.name, "model": args.model,
                     "srgb_model": args.srgb_model, "levels": {}}
    with tempfile.TemporaryDirectory(prefix="rawdn-") as tmp:
        tmp = Path(tmp)
        clean = make(args.data, tmp / "clean", None, args.limit)
        develop_ispcli(tmp / "clean", tmp / "clean-ispcli")
        libraw(tmp / "clean", tmp / "clean-libraw", 0)
        results["noise_free"] = {"ispcli": mean_scores(tmp / "clean-ispcli", clean, tmp / "clean"),
                                 "libraw-ahd": mean_scores(tmp / "clean-libraw", clean, tmp / "clean")}
        print(f"noise-free: {results['noise_free']}", flush=True)
        for iso in args.iso:
            root = tmp / f"iso{iso}"
            manifest = make(args.data, root, iso, args.limit)
            level: dict = {}
            develop_ispcli(root, root / "ispcli")
            level["ispcli"] = mean_scores(root / "ispcli", manifest, root)
            develop_ispcli(root, root / "ispcli-raw", "--denoise", args.model)
            level["ispcli+raw-denoise"] = mean_scores(root / "ispcli-raw", manifest, root)
            run(ispcli("denoise", str(root / "ispcli"), "-o", str(root / "ispcli-srgb"), "--model",
                       args.srgb_model, "-q"))
            level["ispcli+srgb-denoise"] = mean_scores(root / "ispcli-srgb", manifest, root)
            sweep = {}
            for thr in args.thresholds:
                libraw(root, root / f"libraw-{thr:g}", thr)
                sweep[f"{thr:g}"] = mean_scores(root / f"libraw-{thr:g}", manifest, root)
            best = max(sweep, key=lambda k: sweep[k]["psnr"])
            level["libraw-ahd best"] = {**sweep[best], "noise_thr": float(best)}
            level["libraw-ahd sweep"] = sweep
            level["margin_over_libraw_db"] = round(level["ispcli+raw-denoise"]["psnr"] - sweep[best]["psnr"], 3)
            level["margin_over_srgb_denoise_db"] = round(level["ispcli+raw-denoise"]["psnr"]
                                                         - level["ispcli+srgb-denoise"]["psnr"], 3)
            results["levels"][f"ISO {iso}"] = level
            print(f"ISO {iso}:", flush=True)
            for k in ("ispcli", "ispcli+raw-denoise", "ispcli+srgb-denoise", "libraw-ahd best"):
                extra = f"  (noise_thr {level[k]['noise_thr']:g})" if "noise_thr" in level[k] else ""
                print(f"  {k:22s} {level[k]['psnr']:6.2f} dB  SSIM {level[k]['ssim']:.4f}{extra}", flush=True)
            print(f"  margin over LibRaw best: {level['margin_over_libraw_db']:+.2f} dB, over develop+sRGB "
                  f"denoiser: {level['margin_over_srgb_denoise_db']:+.2f} dB", flush=True)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
