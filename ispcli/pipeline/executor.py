"""Running many jobs: in this process, or in parallel worker processes.

Workers are started with `spawn`, never `fork`: LibRaw's OpenMP and torch's thread pools
deadlock in forked children (rawpy #265). Each worker gets an equal share of the cores.
"""

from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from typing import Callable, Iterable, Iterator


def cpu_count() -> int:
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def auto_jobs(n_files: int, megapixels_hint: float | None = None) -> int:
    """Parallel files when there are several: decoding and encoding are single-threaded,
    so two files at a time keep two cores busier than one file with two threads."""
    return max(1, min(cpu_count(), n_files, 4))


def _init_worker(jobs: int, in_child: bool = True) -> None:
    from ispcli.pipeline.device import set_cpu_threads

    set_cpu_threads(jobs)
    if in_child:
        import signal
        import sys

        # The parent decides when to stop; a terminated worker unwinds (its `finally`
        # blocks delete temporary files) instead of vanishing.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))


def run_jobs(func: Callable, jobs: Iterable, workers: int) -> Iterator:
    """Yield `func(job)` for every job, as they finish. `workers` ≤ 1 runs in-process."""
    jobs = list(jobs)
    if workers <= 1 or len(jobs) <= 1:
        _init_worker(1, in_child=False)
        for job in jobs:
            yield func(job)
        return
    ctx = multiprocessing.get_context("spawn")
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_init_worker,
                               initargs=(workers,))
    try:
        pending = set()
        queue = iter(jobs)
        # Keep only a couple of jobs queued per worker so an interrupt loses little work.
        for job in queue:
            pending.add(pool.submit(func, job))
            if len(pending) >= 2 * workers:
                break
        while pending:
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for fut in done:
                yield fut.result()
                nxt = next(queue, None)
                if nxt is not None:
                    pending.add(pool.submit(func, nxt))
    except BaseException:
        for proc in list(getattr(pool, "_processes", {}).values()):
            proc.terminate()
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
