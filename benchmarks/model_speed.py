"""Throughput of the shipped models through the runner on this machine (CPU, 2 threads).

    python benchmarks/model_speed.py [--sizes 1024,2048] [--layouts channels_last,contiguous]
                                     [--models denoise-unet,...] [--weights DIR --label old]

Each model runs on a random input exactly as the commands run it (default tile for the device,
halo of the receptive field, reflected borders); median of 3. `--layouts` also times the
weights in plain contiguous layout (what ispcli used before channels-last), interleaved with the
default so that both see the same machine. `--weights DIR` also times the same-named models of
another weights folder (e.g. the weights a change replaces), interleaved with the installed ones.
"""
import argparse
import contextlib
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout, no install

import numpy as np  # noqa: E402
import torch  # noqa: E402

from ispcli.pipeline import learned, runner  # noqa: E402
from ispcli.pipeline.stage import Pipeline  # noqa: E402

BAYER = [[0, 1], [1, 2]]


def stages(dev, img, mos):
    return [
        ("denoise-unet", lambda: learned.denoise_stage("denoise-unet", 25 / 255, device=dev), img, 1),
        ("demosaic-unet", lambda: learned.demosaic_stage("demosaic-unet", BAYER, device=dev, encoded=True), mos, 2),
        ("raw-denoise-unet", lambda: learned.raw_denoise_stage("raw-denoise-unet", BAYER, [2, 1, 1.5], 1.6e-3, 1e-5,
                                                               device=dev), mos, 2),
        ("raw-denoise-fast", lambda: learned.raw_denoise_stage("raw-denoise-fast", BAYER, [2, 1, 1.5], 1.6e-3, 1e-5,
                                                               device=dev), mos, 2),
        ("deblur-unet", lambda: learned.deblur_stage("deblur-unet", device=dev), img, 1),
        ("dehaze-net", lambda: learned.dehaze_stage("dehaze-net", [0.8, 0.8, 0.8], device=dev), img, 1),
    ]


@contextlib.contextmanager
def _weights(folder: Path):
    old = os.environ.get("ISPCLI_WEIGHTS")
    os.environ["ISPCLI_WEIGHTS"] = str(folder)
    try:
        yield
    finally:
        if old is None:
            del os.environ["ISPCLI_WEIGHTS"]
        else:
            os.environ["ISPCLI_WEIGHTS"] = old


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="1024,2048")
    ap.add_argument("--layouts", default="channels_last", help="channels_last and/or contiguous")
    ap.add_argument("--models", default="", help="comma-separated subset of the models (default: all)")
    ap.add_argument("--weights", type=Path, help="another weights folder whose same-named models to time too")
    ap.add_argument("--label", default="other", help="what to call --weights' models in the output")
    args = ap.parse_args()
    wanted = {m for m in args.models.split(",") if m}
    torch.set_num_threads(2)
    dev = torch.device("cpu")
    rng = np.random.default_rng(0)
    prepare = learned._prepare
    layouts = {"channels_last": prepare, "contiguous": lambda model, device: model.to(device,
                                                                                      memory_format=torch.contiguous_format)}
    for size in map(int, args.sizes.split(",")):
        img = rng.random((size, size, 3), dtype=np.float32)
        mos = rng.random((size, size), dtype=np.float32)
        for name, build, src, align in stages(dev, img, mos):
            if wanted and name not in wanted:
                continue
            pipes = {}
            for layout in args.layouts.split(","):
                learned._prepare = layouts[layout]
                pipes[layout] = Pipeline([build()])
                if args.weights is not None:
                    with _weights(args.weights):
                        pipes[f"{args.label} {layout}"] = Pipeline([build()])
            learned._prepare = prepare
            times = {layout: [] for layout in pipes}
            for _ in range(3):
                for layout, pipe in pipes.items():
                    t = time.perf_counter()
                    runner.run(pipe, src, lambda t_, o: None, device=dev, align=align)
                    times[layout].append(time.perf_counter() - t)
            line = ", ".join(f"{layout} {size * size / 1e6 / statistics.median(ts):.2f} MP/s"
                             for layout, ts in times.items())
            print(f"{name} {size}x{size}: {line}", flush=True)


if __name__ == "__main__":
    main()
