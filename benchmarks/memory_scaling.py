"""Peak memory and speed of `ispcli develop` as the raw grows: 12, 24, 48 and 96 megapixels.

    python benchmarks/memory_scaling.py [--sizes 12,24,48,96] [--data ../shared/data/bench/Kodak24]

The 24 MP scene of benchmarks/speed.py (Kodak24 tiles) is resized to each size and made a Bayer
DNG (Sony ILCE-7RM3 matrix, RGGB). Each command runs once on each file, whole, as a user runs it:
develop to JPEG (the default), to 16-bit TIFF, and to JPEG with the learned raw denoiser.
Peak RSS is GNU time's %M (the largest single process). What must grow with the image is
printed beside it: the decoded mosaic (2 bytes a pixel) plus the finished output image held for
encoding (3 or 6 bytes a pixel); everything else (tiles, the network's activations) is bounded
by the tile. Results in benchmarks/results/memory_scaling.json.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from speed import make_scene, measure, portable  # noqa: E402

COMMANDS = {
    "develop (jpg)": ([], 3),
    "develop -f tif --bits 16": (["-f", "tif", "--bits", "16"], 6),
    "develop --denoise raw-denoise-unet (jpg)": (["--denoise", "raw-denoise-unet"], 3),
}


def make_dng(scene: np.ndarray, megapixels: float, path: Path) -> tuple[int, int]:
    import cv2
    from make_synthetic_dngs import synthesize

    from ispcli.io.dng import write_dng
    from ispcli.train import unprocess as up

    h0, w0 = scene.shape[:2]
    k = (megapixels * 1e6 / (h0 * w0)) ** 0.5
    h, w = int(round(h0 * k / 2)) * 2, int(round(w0 * k / 2)) * 2
    img = cv2.resize(scene, (w, h), interpolation=cv2.INTER_CUBIC if k > 1 else cv2.INTER_AREA)
    camera = "Sony ILCE-7RM3"
    counts, m, _, _ = synthesize(img, camera, "RGGB", None, 0, 512, 16383)
    write_dng(path, counts, cfa="RGGB", black_level=512, white_level=16383,
              color_matrix1=np.array(up.CAMERA_MATRICES[camera]), as_shot_neutral=up.camera_neutral(m).double().numpy(),
              make="ispcli", model=f"Synthetic {camera}")
    return h, w


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="12,24,48,96")
    ap.add_argument("--data", type=Path, default=Path("../shared/data/bench/Kodak24"))
    ap.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "ispcli-memory")
    ap.add_argument("--results", type=Path, default=HERE / "results" / "memory_scaling.json")
    args = ap.parse_args()
    ispcli = shutil.which("ispcli") or str(Path(sys.executable).parent / "ispcli")
    args.work.mkdir(parents=True, exist_ok=True)
    scene = make_scene(args.data)
    rows = []
    for mp in map(float, args.sizes.split(",")):
        dng = args.work / f"scene{mp:g}mp.dng"
        h, w = make_dng(scene, mp, dng)
        for name, (extra, out_bytes) in COMMANDS.items():
            out = args.work / "out"
            shutil.rmtree(out, ignore_errors=True)
            cmd = [ispcli, "develop", str(dng), "-o", str(out), "-q", *extra]
            r = measure(cmd, args.work / "last.log")
            must = h * w * (2 + out_bytes) / 2 ** 20
            rows.append({"megapixels": round(h * w / 1e6, 1), "size": f"{w}x{h}", "command": name,
                         "cmd": portable(cmd, args.work), "wall_s": round(r["wall_s"], 2),
                         "peak_rss_mb": round(r["rss_mb"]), "mosaic_plus_output_mb": round(must),
                         "rest_mb": round(r["rss_mb"] - must), "mp_per_s": round(h * w / 1e6 / r["wall_s"], 2)})
            x = rows[-1]
            print(f"{x['megapixels']:6.1f} MP  {name:<42} {x['wall_s']:6.2f} s  peak {x['peak_rss_mb']:6d} MB"
                  f"  (mosaic + output {x['mosaic_plus_output_mb']:5d} MB, rest {x['rest_mb']:5d} MB)", flush=True)
        os.unlink(dng)
    args.results.parent.mkdir(parents=True, exist_ok=True)
    args.results.write_text(json.dumps(rows, indent=1) + "\n")
    print(f"wrote {os.path.relpath(args.results)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
