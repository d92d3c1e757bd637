"""A small fixed fuzzing budget for CI (the long mode: `python tests/fuzz_harness.py`)."""

from __future__ import annotations

from pathlib import Path

from fuzz_harness import MUTATIONS, fuzz, seed_files

SAMPLES = Path(__file__).resolve().parent.parent / "samples"


def test_damaged_raws_never_crash_hang_or_leave_partial_files(tmp_path):
    seeds = seed_files([SAMPLES])
    assert len(seeds) == 2
    report = fuzz(seeds, count=14, seed=1, batch=14, decode_timeout=30, workdir=tmp_path)
    assert report.mutants == 14 and report.runs == 2
    assert not report.violations, "\n\n".join(report.violations)
    # every kind of damage was tried, and the broken files were refused, not developed
    assert report.failed_files >= len(MUTATIONS) - 1
    assert report.ok_files + report.failed_files == 14
