"""Make synthetic Bayer DNGs (with sRGB ground truth) from an 8-bit sRGB benchmark set.

    python benchmarks/make_synthetic_dngs.py --data ../shared/data/bench/Kodak24 --out OUT [--iso N] [--all]

Per image: sRGB -> linear -> camera RGB of a real camera matrix (D65 scene, no white balance)
-> exposure that puts sRGB white at the white level (nothing clips) -> optional shot/read noise
for --iso -> Bayer mosaic -> 14-bit-range counts (black 512, white 16383) in a 16-bit DNG with
ColorMatrix1 = the camera matrix (CalibrationIlluminant1 = D65) and AsShotNeutral = the camera's
D65 response. Images take the 16 camera x CFA combinations round-robin (all 16 with --all).
Writes OUT/*.dng, OUT/truth/<image>.png (the untouched source) and OUT/manifest.json.
Deterministic: same inputs and --seed give byte-identical files.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout, no install

import torch  # noqa: E402

from ispcli.io.dng import write_dng  # noqa: E402
from ispcli.train import unprocess as up  # noqa: E402

CFAS = ("RGGB", "BGGR", "GRBG", "GBRG")
# Real Make/Model per camera: with --libraw-names LibRaw also fills rawpy's rgb_xyz_matrix
# from its own table (which equals our ColorMatrix1); off by default so synthetic files never
# pass for real camera output.
LIBRAW_NAMES = {"Canon EOS 30D": ("Canon", "Canon EOS 30D"), "Canon EOS D30": ("Canon", "Canon EOS D30"),
                "Sony ILCE-7RM3": ("SONY", "ILCE-7RM3"), "Fujifilm X-H1": ("FUJIFILM", "X-H1")}


def load_srgb(path: Path) -> np.ndarray:
    import imageio.v3 as iio

    img = np.asarray(iio.imread(path))
    if img.ndim == 2:
        img = np.stack([img] * 3, axis=-1)
    if img.dtype != np.uint8:
        raise ValueError(f"{path.name}: expected 8-bit sRGB, got {img.dtype}")
    return img[..., :3]


def combos(index: int, all_combos: bool) -> list[tuple[str, str]]:
    cams = list(up.CAMERA_MATRICES)
    every = [(cam, cfa) for cfa in CFAS for cam in cams]  # camera varies fastest
    return every if all_combos else [every[index % len(every)]]


def slug(text: str) -> str:
    return "".join(ch if ch.isalnum() else "-" for ch in text).strip("-").lower()


def synthesize(img: np.ndarray, camera: str, cfa: str, iso, seed: int, black: int, white: int):
    m = up.xyz_camera_matrices()[camera]
    srgb = torch.from_numpy(img).permute(2, 0, 1)[None].float() / 255.0
    exposure = up.white_exposure(m)
    cam = up.rgb_to_camera(up.srgb_to_linear(srgb), m) * exposure
    cam = cam.clamp(min=0)  # a few saturated sRGB colours fall outside the camera's gamut
    raw = up.mosaic(cam, cfa)
    noise = None
    if iso is not None:
        shot, read = up.noise_levels_for_iso(iso)
        raw = up.add_shot_read_noise(raw, shot, read, torch.Generator().manual_seed(seed))
        noise = {"shot": shot, "read": read, "model": "variance = shot * x + read, x normalised"}
    counts = up.to_sensor_counts(raw, black, white)[0, 0].numpy().astype(np.uint16)
    return counts, m, exposure, noise


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", required=True, type=Path, help="folder of 8-bit sRGB PNGs (e.g. ../shared/data/bench/Kodak24)")
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--iso", type=int, default=None, help="add shot/read noise for this ISO (noise_levels_for_iso)")
    ap.add_argument("--all", action="store_true", help="every camera x CFA combination for every image")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--limit", type=int, default=None, help="only the first N images (quick checks)")
    ap.add_argument("--black", type=int, default=512)
    ap.add_argument("--white", type=int, default=16383)
    ap.add_argument("--libraw-names", action="store_true", help="write the real Make/Model (see LIBRAW_NAMES)")
    args = ap.parse_args(argv)

    sources = sorted(p for p in args.data.iterdir() if p.suffix.lower() == ".png")[: args.limit]
    if not sources:
        ap.error(f"no PNG files in {args.data}")
    (args.out / "truth").mkdir(parents=True, exist_ok=True)
    entries = []
    for i, src in enumerate(sources):
        img = load_srgb(src)
        truth = Path("truth") / src.name
        shutil.copyfile(src, args.out / truth)
        for camera, cfa in combos(i, args.all):
            seed = args.seed * 1_000_003 + i * 16 + CFAS.index(cfa) * 4 + list(up.CAMERA_MATRICES).index(camera)
            counts, m, exposure, noise = synthesize(img, camera, cfa, args.iso, seed, args.black, args.white)
            neutral = up.camera_neutral(m).double().numpy()
            make, model = LIBRAW_NAMES[camera] if args.libraw_names else ("ispcli", f"Synthetic {camera}")
            iso_tag = f"_iso{args.iso}" if args.iso is not None else ""
            name = f"{src.stem}_{slug(camera)}_{cfa.lower()}{iso_tag}.dng"
            write_dng(args.out / name, counts, cfa=cfa, black_level=args.black, white_level=args.white,
                      color_matrix1=np.array(up.CAMERA_MATRICES[camera]), calibration_illuminant1=21,
                      as_shot_neutral=neutral, make=make, model=model,
                      unique_camera_model=f"ispcli synthetic {camera}", iso=args.iso)
            entries.append({
                "dng": name, "truth": truth.as_posix(), "source": f"{args.data.name}/{src.name}",
                "source_sha256": hashlib.sha256(src.read_bytes()).hexdigest(),
                "camera": camera, "make": make, "model": model, "cfa": cfa, "iso": args.iso, "seed": seed,
                "width": int(counts.shape[1]), "height": int(counts.shape[0]),
                "black_level": args.black, "white_level": args.white, "exposure": exposure,
                "as_shot_neutral": [round(float(v), 6) for v in neutral],
                "color_matrix1": [list(r) for r in up.CAMERA_MATRICES[camera]],
                "calibration_illuminant1": 21, "noise": noise,
            })
            print(f"{name}  ({camera}, {cfa}{', ISO %g' % args.iso if args.iso is not None else ''})")
    manifest = {
        "generator": "benchmarks/make_synthetic_dngs.py",
        "pipeline": "srgb_to_linear -> rgb_to_camera (XYZ D65, no WB) -> * exposure (sRGB white = white level)"
                    " -> clamp >= 0 -> [shot/read noise] -> mosaic -> black + x * (white - black), clip [0, white]",
        "source_set": args.data.name, "seed": args.seed, "iso": args.iso, "all": args.all,
        "files": entries,
    }
    (args.out / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    print(f"wrote {len(entries)} DNGs for {len(sources)} images + manifest.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
