"""Throughput of the shipped models through the runner on this machine (CPU, 2 threads).

    python benchmarks/model_speed.py

Each model runs on a random 1024x1024 and 2048x2048 input exactly as the commands run it
(default tile for the device, halo of the receptive field, reflected borders); median of 3.
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout, no install
import statistics
import time

import numpy as np
import torch

from ispcli.pipeline import learned, runner
from ispcli.pipeline.stage import Pipeline

torch.set_num_threads(2)
dev = torch.device("cpu")
rng = np.random.default_rng(0)
for size in (1024, 2048):
    img = rng.random((size, size, 3), dtype=np.float32)
    mos = rng.random((size, size), dtype=np.float32)
    for name, pipe, src, align in [
        ("denoise-unet", Pipeline([learned.denoise_stage("denoise-unet", 25/255, device=dev)]), img, 1),
        ("demosaic-unet", Pipeline([learned.demosaic_stage("demosaic-unet", [[0,1],[1,2]], device=dev, encoded=True)]), mos, 2),
        ("raw-denoise-unet", Pipeline([learned.raw_denoise_stage("raw-denoise-unet", [[0,1],[1,2]], [2,1,1.5], 1.6e-3, 1e-5, device=dev)]), mos, 2)]:
        times = []
        for _ in range(3):
            t = time.perf_counter()
            runner.run(pipe, src, lambda t_, o: None, device=dev, align=align)
            times.append(time.perf_counter() - t)
        print(f"{name} {size}x{size}: median {statistics.median(times):.2f} s = {size*size/1e6/statistics.median(times):.2f} MP/s")
