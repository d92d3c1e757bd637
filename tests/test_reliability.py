"""Untrusted files and hostile conditions: bombs, symlinks, outputs onto inputs, two
processes on one folder, bad limits."""

from __future__ import annotations

import hashlib
import json
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from tests.conftest import run_cli

SAMPLES = Path(__file__).resolve().parent.parent / "samples"
DNG = SAMPLES / "canon_eos_550d_magiclantern.dng"
KDC = SAMPLES / "kodak_dc50.kdc"


def _bomb(path: Path, width: int, height: int) -> Path:
    """The sample DNG with its raw IFD claiming width×height (offsets of its first IFD's
    ImageWidth/ImageLength values, little-endian LONGs)."""
    data = bytearray(DNG.read_bytes())
    assert data[:2] == b"II"
    struct.pack_into("<I", data, 30, width)
    struct.pack_into("<I", data, 42, height)
    path.write_bytes(bytes(data))
    return path


def test_a_decompression_bomb_is_refused_before_allocation(tmp_path):
    bomb = _bomb(tmp_path / "bomb.dng", 60000, 40000)
    r = run_cli("develop", str(bomb), "-o", str(tmp_path / "out"), "--json")
    assert r.returncode == 1
    (rec,) = [json.loads(line) for line in r.stdout.splitlines()]
    assert rec["error"] == "header claims 60000x40000 (2400 MP), over the 500 MP limit (--max-megapixels)"
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())
    r = run_cli("info", str(bomb))
    assert r.returncode == 1 and "2400 MP" in r.stderr and "Traceback" not in r.stderr


def test_max_megapixels_sets_the_limit(tmp_path):
    r = run_cli("info", str(DNG))
    assert r.returncode == 0
    r = run_cli("develop", str(DNG), "-o", str(tmp_path / "out"), "--max-megapixels", "1", "--json")
    assert r.returncode == 1 and "over the 1 MP limit (--max-megapixels)" in r.stdout


def test_bad_limits_are_usage_errors(tmp_path):
    for command in ("develop", "demosaic"):
        for args in (["--timeout", "0"], ["--max-megapixels", "-3"]):
            r = run_cli(command, str(KDC), "-o", str(tmp_path / "out"), *args)
            assert r.returncode == 2 and args[0] in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "out").exists()


def test_symlinked_inputs_develop_under_the_link_name(tmp_path):
    src = tmp_path / "card"
    src.mkdir()
    (src / "link.kdc").symlink_to(KDC)
    r = run_cli("develop", str(src), "-o", str(tmp_path / "out"), "--json")
    assert r.returncode == 0, r.stderr
    (rec,) = [json.loads(line) for line in r.stdout.splitlines()]
    assert rec["status"] == "developed" and Path(rec["output"]).name == "link.jpg"
    assert (src / "link.kdc").is_symlink()


def test_an_output_never_overwrites_its_input(tmp_path):
    img = tmp_path / "photo.png"
    Image.fromarray((np.random.default_rng(0).random((40, 48, 3)) * 255).astype(np.uint8)).save(img)
    before = hashlib.sha256(img.read_bytes()).hexdigest()
    r = run_cli("denoise", str(img), "-o", str(tmp_path), "--sigma", "5", "--overwrite", "--json")
    assert r.returncode == 1
    (rec,) = [json.loads(line) for line in r.stdout.splitlines()]
    assert rec["status"] == "failed" and "input" in rec["error"]
    assert hashlib.sha256(img.read_bytes()).hexdigest() == before


def test_two_processes_on_one_folder_leave_only_whole_files(tmp_path):
    card = tmp_path / "card"
    card.mkdir()
    for i in range(4):
        shutil.copy(KDC, card / f"img{i}.kdc")
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "ispcli", "develop", str(card), "-o", str(out), "--json", "-q", "--jobs", "1"]
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    results = [p.communicate(timeout=600) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], results
    statuses = [json.loads(line)["status"] for stdout, _ in results for line in stdout.splitlines()]
    # each file written once; the other process found it done (skipped) or claimed first
    assert statuses.count("developed") >= 4 and set(statuses) <= {"developed", "skipped"}
    files = sorted(p.name for p in out.iterdir())
    assert files == [f"img{i}.jpg" for i in range(4)]          # no temporary files left
    for f in out.iterdir():
        with Image.open(f) as im:
            im.load()                                            # whole, decodable JPEGs
            assert im.size == (768, 512) or im.size == (512, 768)


def test_a_full_disk_stops_the_batch_early_and_leaves_nothing_partial(tmp_path, disk_full, capsys):
    from ispcli.cli.batch_run import BatchOptions, run_batch
    from ispcli.recipe import Recipe

    card = tmp_path / "card"
    card.mkdir()
    for i in range(3):
        shutil.copy(KDC, card / f"img{i}.kdc")
    code = run_batch(BatchOptions(inputs=[str(card)], output=str(tmp_path / "out"), recipe=Recipe(), jobs=1,
                                  quiet=True, json=True))
    assert code == 1
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    assert [r["error"] for r in records] == ["disk full while writing (No space left on device)",
                                             "not attempted: the output disk is full",
                                             "not attempted: the output disk is full"]
    assert list((tmp_path / "out").iterdir()) == []
