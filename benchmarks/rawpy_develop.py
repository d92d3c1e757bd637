"""LibRaw (rawpy.postprocess) as a peer: one raw in, one 16-bit sRGB TIFF out.

    python benchmarks/rawpy_develop.py IN.dng OUT.tif [--demosaic AHD|AAHD|DHT|...]

Settings of the benchmark protocol: camera white balance, sRGB output with the sRGB curve
(gamma=(2.4, 12.92)), no auto brightening, 16 bits. Used in-process by fidelity.py and as
a whole command by speed.py (so its time includes Python start-up, like ispcli's).
"""
from __future__ import annotations

import argparse
import sys


def develop(src: str, dst: str | None = None, demosaic: str = "AHD"):
    """Develop `src`; write a 16-bit TIFF to `dst` when given. Returns the (H, W, 3) uint16 array."""
    import rawpy

    with rawpy.imread(src) as raw:
        rgb = raw.postprocess(demosaic_algorithm=rawpy.DemosaicAlgorithm[demosaic], use_camera_wb=True,
                              output_color=rawpy.ColorSpace.sRGB, gamma=(2.4, 12.92),
                              no_auto_bright=True, output_bps=16)
    if dst is not None:
        import tifffile

        tifffile.imwrite(dst, rgb, photometric="rgb", compression=None, metadata=None)
    return rgb


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("input")
    ap.add_argument("output")
    ap.add_argument("--demosaic", default="AHD", help="rawpy.DemosaicAlgorithm name (AHD, AAHD, DHT, ...)")
    args = ap.parse_args(argv)
    develop(args.input, args.output, args.demosaic)
    return 0


if __name__ == "__main__":
    sys.exit(main())
