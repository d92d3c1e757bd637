"""Throughput of a method: megapixels per second on a 1024×1024 image, through the runner.

The image is degraded by the task's own protocol at its first level (content does not change
a network's cost), the stage is warmed up once, then timed `runs` times; the median counts.
"""

from __future__ import annotations

import statistics

import torch

from ispcli.eval import benchmark

SPEED_SIZE = 1024
SPEED_RUNS = 3


def megapixels_per_second(task, method: benchmark.Method, *, device: torch.device, tile: int = 0,
                          size: int = SPEED_SIZE, runs: int = SPEED_RUNS, seed: int = 0) -> float:
    clean = torch.rand(1, 3, size, size, generator=torch.Generator().manual_seed(seed))
    level = task.levels[0]
    sample = task.degrade(clean, level, seed, 0)
    stage = method.make(level, sample, device)
    kwargs = dict(device=device, tile=tile, align=task.align, whole_frame=method.whole_frame)
    benchmark.run_stage(stage, sample.source, **kwargs)              # warm-up at full size
    times = [benchmark.run_stage(stage, sample.source, **kwargs)[1] for _ in range(runs)]
    return size * size / 1e6 / statistics.median(times)


def measure(evaluation: benchmark.Evaluation, *, device: torch.device, tile: int = 0, sigmas=None,
            isos=None) -> dict[str, float]:
    """Megapixels per second of each model of `evaluation`."""
    task = benchmark.make_task(evaluation.task, sigmas=sigmas, isos=isos)
    return {m.name: megapixels_per_second(task, m, device=device, tile=tile)
            for m in evaluation.methods if m.kind == "model"}
