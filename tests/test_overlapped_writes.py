"""One process's batch writes file N on a writer thread while file N+1 is computed."""

from __future__ import annotations

import errno
import threading

import pytest

from ispcli.io.images import write_atomic
from ispcli.pipeline.executor import run_jobs
from ispcli.pipeline.jobs import Job, run_guarded
from ispcli.recipe import Recipe


def _jobs(tmp_path, n):
    return [Job(input=f"in{i}.dng", output=str(tmp_path / f"out{i}.jpg"), recipe=Recipe()) for i in range(n)]


def test_the_write_of_one_file_overlaps_the_computing_of_the_next(tmp_path):
    computing = {i: threading.Event() for i in range(3)}
    overlapped = []

    def body(job, result):
        i = int(job.input[2])
        computing[i].set()

        def write():
            # in a serial batch the next file's computing starts only after this returns
            overlapped.append(computing[i + 1].wait(5) if i + 1 in computing else True)
            write_atomic(job.output, b"pixels %d" % i, overwrite=False)

        return write

    results = list(run_jobs(lambda job: run_guarded(job, "developed", body), _jobs(tmp_path, 3), workers=1))
    assert [r.status for r in results] == ["developed"] * 3
    assert [r.input for r in results] == ["in0.dng", "in1.dng", "in2.dng"]      # in order
    assert overlapped == [True, True, True]
    assert (tmp_path / "out1.jpg").read_bytes() == b"pixels 1"


def test_a_write_that_fails_fails_its_file_only_and_results_keep_their_order(tmp_path):
    def body(job, result):
        i = int(job.input[2])
        if i == 2:
            raise ValueError("odd file")                 # fails while computing: no write step

        def write():
            if i == 1:
                raise OSError(errno.ENOSPC, "No space left on device")
            write_atomic(job.output, b"ok", overwrite=False)

        return write

    results = list(run_jobs(lambda job: run_guarded(job, "developed", body), _jobs(tmp_path, 4), workers=1))
    assert [(r.input, r.status) for r in results] == [("in0.dng", "developed"), ("in1.dng", "failed"),
                                                      ("in2.dng", "failed"), ("in3.dng", "developed")]
    assert "No space left" in results[1].error and "odd file" in results[2].error
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out0.jpg", "out3.jpg"]


def test_an_interrupt_waits_for_the_write_in_flight_so_no_file_is_half_written(tmp_path):
    release = threading.Event()

    def body(job, result):
        i = int(job.input[2])
        if i == 1:
            release.set()
            raise KeyboardInterrupt                       # Ctrl-C while file 1 computes

        def write():
            release.wait(5)
            write_atomic(job.output, b"x" * 1_000_000, overwrite=False)

        return write

    with pytest.raises(KeyboardInterrupt):
        list(run_jobs(lambda job: run_guarded(job, "developed", body), _jobs(tmp_path, 3), workers=1))
    assert [p.name for p in tmp_path.iterdir()] == ["out0.jpg"]                  # whole, no temp file
    assert (tmp_path / "out0.jpg").stat().st_size == 1_000_000
