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


def _fake_torch(tmp_path, cuda_line):
    import importlib.machinery

    folder = tmp_path / "torch"
    folder.mkdir(parents=True)
    (folder / "version.py").write_text(f"__version__ = '2.13.0'\n{cuda_line}\n")
    spec = importlib.machinery.ModuleSpec("torch", None, is_package=True)
    spec.submodule_search_locations = [str(folder)]
    return spec


def test_with_a_gpu_one_process_feeds_it_and_without_one_files_run_in_parallel(tmp_path, monkeypatch):
    import importlib.util

    from ispcli.pipeline import executor

    monkeypatch.setattr(executor, "cpu_count", lambda: 4)
    assert executor.auto_jobs(10, device="cuda:1") == 1
    real_exists = os.path.exists
    monkeypatch.setattr(os.path, "exists", lambda p: p == "/dev/nvidia0" or real_exists(p))
    for line, gpu in (("cuda: Optional[str] = '12.4'", True), ("cuda: Optional[str] = None", False)):
        spec = _fake_torch(tmp_path / str(gpu), line)
        monkeypatch.setattr(importlib.util, "find_spec", lambda name, spec=spec: spec)
        assert executor.cuda_likely() is gpu
        assert executor.auto_jobs(10) == (1 if gpu else 4)
        assert executor.auto_jobs(10, device="cpu") == 4
