"""Batches in parallel and batches interrupted: same results, no partial files, honest codes."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import natural_image, run_cli, synthetic_raw_file


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("card")
    synthetic_raw_file(d / "f00.dng", natural_image(480, 640, seed=4))
    for i in range(1, 6):
        shutil.copy(d / "f00.dng", d / f"f{i:02d}.dng")
    return d


def test_parallel_jobs_give_the_same_files_as_one_job(folder, tmp_path):
    one = run_cli("develop", str(folder), "-o", str(tmp_path / "one"), "-j", "1", "--json")
    two = run_cli("develop", str(folder), "-o", str(tmp_path / "two"), "-j", "2", "--json")
    assert one.returncode == 0 and two.returncode == 0, two.stderr
    assert len(two.stdout.splitlines()) == 6
    assert all(json.loads(line)["status"] == "developed" for line in two.stdout.splitlines())
    for f in sorted((tmp_path / "one").iterdir()):
        assert f.read_bytes() == (tmp_path / "two" / f.name).read_bytes()


@pytest.mark.parametrize("jobs,sig,code", [("1", signal.SIGINT, 130), ("2", signal.SIGINT, 130),
                                           ("2", signal.SIGTERM, 143)])
def test_interrupt_stops_cleanly_and_a_rerun_resumes(folder, tmp_path, jobs, sig, code):
    out = tmp_path / "out"
    env = {**os.environ, "COLUMNS": "200"}
    proc = subprocess.Popen([sys.executable, "-m", "ispcli", "develop", str(folder), "-o", str(out),
                             "-j", jobs, "--tile", "128"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env)
    deadline = time.time() + 120
    # Wait for a finished file, not a temp one (".ispcli-tmp-*.jpg"), which an interrupt may rightly delete.
    while time.time() < deadline and not (out.is_dir() and any(
            p.suffix == ".jpg" and not p.name.startswith(".") for p in out.iterdir())):
        time.sleep(0.05)
    proc.send_signal(sig)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == code, stderr
    assert "interrupted" in stderr and "Traceback" not in stderr
    names = [p.name for p in out.iterdir()]
    assert all(n.endswith(".jpg") and not n.startswith(".") for n in names), names  # no temp files
    done = len(names)
    assert 1 <= done < 6
    rerun = run_cli("develop", str(folder), "-o", str(out), "-j", "1", "--json")
    statuses = [json.loads(line)["status"] for line in rerun.stdout.splitlines()]
    assert statuses.count("skipped") == done and statuses.count("developed") == 6 - done


def test_progress_bar_only_on_a_terminal(folder, tmp_path):
    import pty

    master, slave = pty.openpty()
    env = {**os.environ, "COLUMNS": "120", "TERM": "xterm"}
    proc = subprocess.Popen([sys.executable, "-m", "ispcli", "develop", str(folder / "f00.dng"),
                             str(folder / "f01.dng"), "-o", str(tmp_path / "tty"), "-j", "1"],
                            stdout=subprocess.PIPE, stderr=slave, env=env)
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 4096)
        except OSError:
            break
        if not data:
            break
        chunks.append(data)
    proc.wait(timeout=120)
    os.close(master)
    shown = b"".join(chunks).decode("utf-8", "replace")
    assert proc.returncode == 0
    assert "developing" in shown and "2 developed, 0 skipped, 0 failed" in shown
    assert proc.stdout.read() == b""  # data only on stdout, and there is none without --json
    piped = run_cli("develop", str(folder / "f00.dng"), "-o", str(tmp_path / "pipe"))
    assert "developing" not in piped.stderr and "1 developed" in piped.stderr
