"""Running a batch's jobs on a Ray cluster (`--executor ray [--address ADDR]`).

Ray schedules, retries nothing and moves only the small `Job` and `FileResult` objects: every
task reads its raw and writes its output itself, through the same `develop_file` (or other
worker) as a local run, so skip/overwrite, atomic writes, the summary, `--json` and exit codes
are unchanged. Inputs and the output folder must therefore be on storage that every node sees
at the same path (a shared or network filesystem). A task asks Ray for one CPU, and for one GPU
when the recipe's device is a GPU; a worker whose process dies costs only its file, as with
local workers.

`ray` is an optional extra: `pip install 'ispcli[ray]'`.
"""

from __future__ import annotations

from typing import Callable, Iterable, Iterator


class RayUnavailable(RuntimeError):
    pass


def _run(func: Callable, job):
    """The task body on a Ray worker: one torch thread (Ray gave the task one CPU), then the
    same worker function as a local run."""
    from ispcli.pipeline.device import set_cpu_threads
    from ispcli.pipeline.executor import cpu_count

    set_cpu_threads(cpu_count())
    return func(job)


def _connect(address: str | None, cpus: int = 0):
    try:
        import ray
    except ImportError:
        raise RayUnavailable("--executor ray needs Ray: pip install 'ispcli[ray]'") from None
    if not ray.is_initialized():
        kwargs = {"include_dashboard": False, "log_to_driver": False, "configure_logging": False}
        try:
            if address:
                ray.init(address=address, **kwargs)
            else:                           # a local instance on this machine, `cpus` workers
                ray.init(num_cpus=cpus or None, **kwargs)
        except Exception as exc:  # noqa: BLE001 - Ray's connection errors have many types
            where = address or "a local instance"
            raise RayUnavailable(f"--executor ray: cannot start or reach {where} ({exc})") from None
    return ray


def run_jobs_ray(func: Callable, jobs: Iterable, *, address: str | None = None, cpus: int = 0,
                 gpus: float = 0.0, on_crash: Callable[[object, str], object] | None = None) -> Iterator:
    """Yield `func(job)` for every job as Ray tasks finish them (`cpus`: the size of a local
    instance, 0 = every core). A task whose worker died becomes `on_crash(job, reason)`; an
    interrupt cancels what has not finished."""
    ray = _connect(address, cpus)
    from ray.exceptions import RayError, RayTaskError

    task = ray.remote(num_cpus=1, num_gpus=gpus, max_retries=0)(_run)
    pending = {task.remote(func, job): job for job in jobs}
    try:
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            for ref in done:
                job = pending.pop(ref)
                try:
                    yield ray.get(ref)
                except RayTaskError as exc:
                    # a bug escaping the worker's own guard: still one file's failure
                    cause = exc.cause if getattr(exc, "cause", None) is not None else exc
                    if on_crash is None:
                        raise
                    yield on_crash(job, f"internal error on a Ray worker ({type(cause).__name__}: {cause})")
                except RayError as exc:
                    if on_crash is None:
                        raise
                    yield on_crash(job, f"Ray worker died while processing it ({type(exc).__name__})")
    finally:
        # not force: a running task gets KeyboardInterrupt and unwinds, deleting its temporary file
        for ref in pending:
            ray.cancel(ref)
