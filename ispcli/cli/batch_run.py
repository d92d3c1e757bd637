"""Running a batch from the command line: plan, execute, show progress, summarise.

Shared by every subcommand that maps input files to output files (develop, denoise,
demosaic): each gives its worker function, its verb and the input extensions it discovers.
Progress and the summary go to stderr (a progress bar only on a terminal); `--json` writes
one object per file to stdout; the exit code says whether everything worked.
"""

from __future__ import annotations

import signal
import sys
import time
from dataclasses import dataclass, field
from typing import Callable

from ispcli.cli.output import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, err_console
from ispcli.recipe import Recipe


@dataclass
class BatchOptions:
    inputs: list[str]
    output: str
    recipe: Recipe
    recursive: bool = False
    overwrite: bool = False
    jobs: int = 0
    sidecar: bool = False
    quiet: bool = False
    json: bool = False
    max_megapixels: float = 500.0
    timeout: float = 120.0
    # what folders and globs pick up; empty: raw files
    extensions: set = field(default_factory=set)
    # the per-file worker: a picklable top-level function Job -> FileResult (None: develop_file)
    worker: Callable | None = None
    # the status of a file that worked, as the summary says it ("3 developed, ...")
    verb: str = "developed"
    # the progress bar's label
    activity: str = "developing"
    # where jobs run: "local" (this machine's processes) or "ray" (a Ray cluster at `address`,
    # a local Ray instance without one)
    executor: str = "local"
    address: str | None = None
    # extra per-job settings (Job fields), e.g. {"cfa": "RGGB"}
    job_fields: dict = field(default_factory=dict)


class Interrupted(Exception):
    def __init__(self, code: int):
        self.code = code


def _on_sigterm(signum, frame):
    raise Interrupted(143)


def run_batch(opts: BatchOptions) -> int:
    from ispcli.io import batch
    from ispcli.io.images import DISK_FULL
    from ispcli.pipeline.jobs import FileResult, Job

    console = err_console()
    try:
        batch.check_template(opts.recipe.name)
    except ValueError as exc:
        from ispcli.cli.output import usage_error

        usage_error(str(exc))
    sources, missing = batch.discover(opts.inputs, recursive=opts.recursive,
                                      extensions=opts.extensions or batch.RAW_EXTENSIONS)
    results: list[FileResult] = [FileResult(m.arg, None, "failed", error=m.reason) for m in missing]
    problem = batch.check_writable(opts.output)
    if problem:
        console.print(f"ispcli: error: cannot write to output folder {opts.output} ({problem})", markup=False)
        return EXIT_FAILED
    plans = batch.plan_outputs(sources, opts.output, opts.recipe.name, opts.recipe.extension,
                               overwrite=opts.overwrite)
    todo = []
    for p in plans:
        if p.status == "todo":
            todo.append(Job(p.source, p.output, opts.recipe, overwrite=opts.overwrite, sidecar=opts.sidecar,
                            max_megapixels=opts.max_megapixels, timeout=opts.timeout, **opts.job_fields))
        else:
            results.append(FileResult(p.source, p.output, p.status,
                                      error=p.reason if p.status == "failed" else None))
            if p.status == "skipped" and not opts.quiet:
                console.print(f"skipped {p.source}: {p.reason}", markup=False)
    for r in results:
        _emit(r, opts, console)
    start = time.perf_counter()
    code = EXIT_OK
    old = signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        for r in _execute(todo, opts, console):
            results.append(r)
            _emit(r, opts, console)
            if r.status == "failed" and (r.error or "").startswith(DISK_FULL):
                break           # every later output would fail the same way: stop early
    except (KeyboardInterrupt, Interrupted) as exc:
        code = exc.code if isinstance(exc, Interrupted) else EXIT_INTERRUPTED
    except RuntimeError as exc:
        from ispcli.pipeline.ray_executor import RayUnavailable

        if not isinstance(exc, RayUnavailable):
            raise
        console.print(f"ispcli: error: {exc}", markup=False)
        return EXIT_FAILED
    finally:
        signal.signal(signal.SIGTERM, old)
    if code == EXIT_OK:
        reported = {r.input for r in results}
        for job in todo:
            if job.input not in reported:
                r = FileResult(job.input, job.output, "failed", error="not attempted: the output disk is full")
                results.append(r)
                _emit(r, opts, console)
    elapsed = time.perf_counter() - start
    if not opts.quiet or code != EXIT_OK or any(r.status == "failed" for r in results):
        _summary(results, elapsed, console, interrupted=code != EXIT_OK, quiet=opts.quiet, verb=opts.verb)
    if code != EXIT_OK:
        return code
    return EXIT_FAILED if any(r.status == "failed" for r in results) else EXIT_OK


def _execute(todo, opts: BatchOptions, console):
    from ispcli.io.batch import RAW_EXTENSIONS
    from ispcli.pipeline.executor import auto_jobs, run_jobs
    from ispcli.pipeline.jobs import FileResult, develop_file

    worker = opts.worker or develop_file
    workers = opts.jobs or auto_jobs(len(todo), device=opts.recipe.device)
    run = run_jobs
    if opts.executor == "ray":
        from ispcli.pipeline.ray_executor import run_jobs_ray

        gpus = 1.0 if (opts.recipe.device or "").startswith("cuda") else 0.0

        def run(func, jobs, workers, on_crash):  # the same contract, on a Ray cluster
            return run_jobs_ray(func, jobs, address=opts.address, cpus=opts.jobs, gpus=gpus, on_crash=on_crash)
    elif todo and (workers <= 1 or len(todo) <= 1) and not opts.job_fields.get("cfa") \
            and set(opts.extensions or RAW_EXTENSIONS) & RAW_EXTENSIONS:
        # this process decodes: start its decoder now and let it read ahead, so that its
        # start-up and the first file's decoding overlap torch's import, and each later
        # file's decoding overlaps the work on the one before
        from ispcli.io import decoder
        from ispcli.pipeline.jobs import decode_request

        decoder.prestart(opts.timeout, upcoming=[decode_request(job) for job in todo])
    elif workers > 1 and not opts.job_fields.get("cfa") and set(opts.extensions or RAW_EXTENSIONS) & RAW_EXTENSIONS:
        # Parallel workers each keep a decoder. The pool hands out jobs in order, so the next
        # one a worker gets is most likely `workers` places on: its decoder reads that one ahead.
        import dataclasses

        todo = [dataclasses.replace(job, read_ahead=todo[i + workers].input if i + workers < len(todo) else None)
                for i, job in enumerate(todo)]

    def crashed(job, reason):
        return FileResult(job.input, job.output, "failed", error=reason)

    show_bar = not opts.quiet and sys.stderr.isatty() and todo
    if not show_bar:
        yield from run(worker, todo, workers, on_crash=crashed)
        return
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    with Progress(TextColumn(f"[bold]{opts.activity}"), BarColumn(), MofNCompleteColumn(),
                  TextColumn("{task.fields[rate]}"), TimeRemainingColumn(), console=console,
                  transient=True) as bar:
        task = bar.add_task(opts.activity, total=len(todo), rate="")
        t0, mp = time.perf_counter(), 0.0
        for r in run(worker, todo, workers, on_crash=crashed):
            mp += r.megapixels
            rate = mp / max(1e-6, time.perf_counter() - t0)
            bar.update(task, advance=1, rate=f"{rate:.1f} MP/s")
            yield r


def _emit(result, opts: BatchOptions, console) -> None:
    if opts.json:
        sys.stdout.write(result.to_json() + "\n")
        sys.stdout.flush()
    if result.status == "failed":
        console.print(f"ispcli: {result.input}: {result.error}", markup=False)
    elif result.warnings and not opts.quiet:
        for w in result.warnings:
            console.print(f"warning: {result.input}: {w}", markup=False)


def _summary(results, elapsed: float, console, *, interrupted: bool, quiet: bool,
             verb: str = "developed") -> None:
    done = sum(r.done for r in results)
    skipped = sum(r.status == "skipped" for r in results)
    failed = sum(r.status == "failed" for r in results)
    mp = sum(r.megapixels for r in results if r.done)
    line = (f"{done} {verb}, {skipped} skipped, {failed} failed "
            f"in {elapsed:.1f} s" + (f" ({mp / elapsed:.1f} MP/s)" if elapsed > 0 and mp else ""))
    if interrupted:
        line = "interrupted: " + line
    console.print(line, markup=False)
    failed = [r for r in results if r.status == "failed"]
    if failed and not quiet:
        console.print("failed:", markup=False)
        for r in failed:
            console.print(f"  {r.input}: {r.error}", markup=False)
