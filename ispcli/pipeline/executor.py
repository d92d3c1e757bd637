"""Running many jobs: in this process, or in parallel worker processes.

Workers are started with `spawn`, never `fork`: LibRaw's OpenMP and torch's thread pools
deadlock in forked children (rawpy #265). Each worker gets an equal share of the cores.
"""

from __future__ import annotations

import collections
import multiprocessing
import os
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Callable, Iterable, Iterator


def cpu_count() -> int:
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def auto_jobs(n_files: int, megapixels_hint: float | None = None, device: str = "auto") -> int:
    """Parallel files when there are several: decoding and encoding are single-threaded,
    so two files at a time keep two cores busier than one file with two threads. With a GPU,
    one process feeds it (the device consumer): its decoder process reads ahead and its writer
    thread writes, so decoding, computing and writing still overlap, and the GPU's memory is
    not split between processes."""
    if (device or "auto").startswith("cuda") or (device in (None, "", "auto") and cuda_likely()):
        return 1
    return max(1, min(cpu_count(), n_files, 4))


def cuda_likely() -> bool:
    """An NVIDIA device node and a CUDA build of torch, found without importing torch (which
    takes seconds: planning a batch must not)."""
    import importlib.util
    import re

    if not any(os.path.exists(p) for p in ("/dev/nvidia0", "/proc/driver/nvidia/gpus")):
        return False
    spec = importlib.util.find_spec("torch")
    for folder in (spec.submodule_search_locations or []) if spec else []:
        try:
            text = open(os.path.join(folder, "version.py"), encoding="utf-8").read()
        except OSError:
            continue
        match = re.search(r"^cuda\b[^=]*=\s*(.+)$", text, re.M)
        return bool(match) and match.group(1).strip() not in ("None", "''", '""')
    return False


def _init_worker(jobs: int, in_child: bool = True) -> None:
    from ispcli.pipeline.device import set_cpu_threads

    set_cpu_threads(jobs)
    if in_child:
        import signal

        # The parent decides when to stop; a terminated worker unwinds (its `finally`
        # blocks delete temporary files) instead of vanishing.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, _terminated)
        # A worker's results are all sent when it is told to stop; skipping the interpreter's
        # teardown (0.4 s with torch loaded) shortens the end of every batch. Registered last,
        # so it runs first; the decoder process sees the pipe close and ends too.
        import atexit

        atexit.register(_exit_at_once)


_exit_code = 0


def _terminated(signum, frame) -> None:
    global _exit_code
    _exit_code = 143
    raise SystemExit(143)


def _exit_at_once() -> None:
    from ispcli.io import decoder

    decoder.shutdown()
    os._exit(_exit_code)


def _new_pool(workers: int) -> ProcessPoolExecutor:
    ctx = multiprocessing.get_context("spawn")
    return ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_init_worker,
                               initargs=(workers,))


def run_jobs(func: Callable, jobs: Iterable, workers: int,
             on_crash: Callable[[object, str], object] | None = None) -> Iterator:
    """Yield `func(job)` for every job, as they finish. `workers` ≤ 1 runs in-process.

    A worker that dies (a crash inside a C library, the OOM killer) breaks the pool and every
    job in it: a fresh pool retries those one at a time, and the one that kills a worker on
    its own becomes `on_crash(job, reason)`; the rest of the batch goes on.
    """
    jobs = list(jobs)
    if not jobs:
        return
    if workers <= 1 or len(jobs) <= 1:
        from ispcli.pipeline.jobs import overlapped_writes

        _init_worker(1, in_child=False)
        yield from overlapped_writes(func, jobs)
        return
    queue = collections.deque(jobs)
    suspects: collections.deque = collections.deque()  # jobs that were in a pool that broke
    pool = _new_pool(workers)
    pending: dict = {}
    solo: set = set()
    try:
        while queue or pending or suspects:
            if suspects and not pending:
                # One at a time, so that the next crash names its job.
                job = suspects.popleft()
                fut = pool.submit(func, job)
                pending[fut] = job
                solo.add(fut)
            elif not suspects:
                # Only a couple of jobs queued per worker, so an interrupt loses little work.
                while queue and len(pending) < 2 * workers:
                    job = queue.popleft()
                    pending[pool.submit(func, job)] = job
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for fut in done:
                job = pending.pop(fut)
                try:
                    result = fut.result()
                except BrokenProcessPool:
                    if on_crash is None:
                        raise
                    if fut in solo:
                        yield on_crash(job, "worker process died while processing it (crash or out of memory)")
                    else:
                        suspects.append(job)
                    continue
                finally:
                    solo.discard(fut)
                yield result
            if getattr(pool, "_broken", False):
                suspects.extend(pending.values())
                pending.clear()
                solo.clear()
                pool.shutdown(wait=False, cancel_futures=True)
                pool = _new_pool(workers)
    except BaseException:
        for proc in list(getattr(pool, "_processes", {}).values()):
            proc.terminate()
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
