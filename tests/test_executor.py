"""The worker pool survives a worker that dies: the culprit fails, every other job runs."""

from __future__ import annotations

import os
import signal

from ispcli.pipeline.executor import run_jobs


def square_or_die(n: int) -> int:
    if n == 3:
        os.kill(os.getpid(), signal.SIGSEGV)  # what a LibRaw crash looks like from outside
    return n * n


def test_a_crashing_worker_costs_only_its_own_job():
    results = list(run_jobs(square_or_die, range(8), 2, on_crash=lambda job, why: ("crashed", job, why)))
    ok = sorted(r for r in results if isinstance(r, int))
    crashed = [r for r in results if isinstance(r, tuple)]
    assert ok == [n * n for n in range(8) if n != 3]
    assert [c[1] for c in crashed] == [3] and "worker process died" in crashed[0][2]
