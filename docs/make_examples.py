"""Make the before/after pictures of the README with the ispcli commands themselves.

    python docs/make_examples.py            # needs ../shared/data/bench (Kodak24, blur kernels)

- enhance: the repo's sample DNG developed 1.5 EV under with the neutral look (a real raw,
  really underexposed), then `ispcli enhance`.
- dehaze: Kodak24 kodim23 hazed by the eval protocol's scattering model (no real hazy photo
  ships with the project), then `ispcli dehaze --model dcp` and `ispcli dehaze`.
- deblur: Kodak24 kodim05 blurred with Levin et al.'s kernel 4 plus 1% noise, then `ispcli deblur`.

Each picture is the inputs and outputs side by side, scaled to 384 pixels high, as JPEG.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT.parent / "shared" / "data" / "bench"
OUT = ROOT / "docs"


def ispcli(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "ispcli", *args, "-q", "--overwrite"], check=True, cwd=ROOT)


def load(path: Path) -> torch.Tensor:
    a = np.asarray(Image.open(path).convert("RGB"), dtype=np.float32) / 255
    return torch.from_numpy(a).permute(2, 0, 1).unsqueeze(0)


def save(x: torch.Tensor, path: Path) -> None:
    a = (x[0].clamp(0, 1).permute(1, 2, 0).numpy() * 255 + 0.5).astype(np.uint8)
    Image.fromarray(a).save(path)


def montage(paths: list[Path], labels: list[str], out: Path, height: int = 384) -> None:
    tiles = []
    for p, label in zip(paths, labels):
        im = Image.open(p).convert("RGB")
        im = im.resize((round(im.width * height / im.height), height), Image.LANCZOS)
        ImageDraw.Draw(im).text((8, 6), label, fill=(255, 255, 255), stroke_width=2, stroke_fill=(0, 0, 0))
        tiles.append(im)
    sheet = Image.new("RGB", (sum(t.width for t in tiles) + 4 * (len(tiles) - 1), height), "white")
    x = 0
    for t in tiles:
        sheet.paste(t, (x, 0))
        x += t.width + 4
    sheet.save(out, quality=85)
    print(f"wrote {out.relative_to(ROOT)}")


def main() -> int:
    if not BENCH.is_dir():
        print(f"needs {BENCH} (Kodak24 and blur kernels)", file=sys.stderr)
        return 2
    from ispcli.train import blur, haze

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        # enhance: a real raw, underexposed
        ispcli("develop", "samples/canon_eos_550d_magiclantern.dng", "-o", str(tmp / "dark"), "--exposure", "-1.5",
               "--look", "neutral", "-f", "png")
        dark = next((tmp / "dark").glob("*.png"))
        ispcli("enhance", str(dark), "-o", str(tmp / "enhanced"))
        montage([dark, tmp / "enhanced" / dark.name], ["developed -1.5 EV, neutral", "ispcli enhance"],
                OUT / "enhance.jpg")

        # dehaze: Kodak kodim23 under synthetic haze
        clean = load(BENCH / "Kodak24" / "kodim23.png")
        hazy, _ = haze.random_haze(clean, torch.Generator().manual_seed(7), beta=(1.6, 1.6), airlight=(0.85, 0.85))
        (tmp / "hazy").mkdir()
        save(hazy, tmp / "hazy" / "kodim23.png")
        ispcli("dehaze", str(tmp / "hazy" / "kodim23.png"), "-o", str(tmp / "dcp"), "--model", "dcp")
        ispcli("dehaze", str(tmp / "hazy" / "kodim23.png"), "-o", str(tmp / "dehazed"))
        montage([tmp / "hazy" / "kodim23.png", tmp / "dcp" / "kodim23.png", tmp / "dehazed" / "kodim23.png"],
                ["hazy (synthetic, β 1.6)", "dark channel prior", "ispcli dehaze"], OUT / "dehaze.jpg")

        # deblur: Kodak kodim05, Levin kernel 4 + 1% noise
        clean = load(BENCH / "Kodak24" / "kodim05.png")
        kernel = dict(blur.load_kernels(BENCH / "blur_kernels"))["levin09_k4"]
        g = torch.Generator().manual_seed(0)
        blurred = blur.blur(clean, kernel.unsqueeze(0)) + 0.01 * torch.randn(clean.shape, generator=g)
        (tmp / "blurred").mkdir()
        save(blurred, tmp / "blurred" / "kodim05.png")
        ispcli("deblur", str(tmp / "blurred" / "kodim05.png"), "-o", str(tmp / "deblurred"))
        montage([tmp / "blurred" / "kodim05.png", tmp / "deblurred" / "kodim05.png"],
                ["shake blur (Levin k4) + 1% noise", "ispcli deblur"], OUT / "deblur.jpg")
    return 0


if __name__ == "__main__":
    sys.exit(main())
