"""`develop --executor ray`: the batch on a local Ray instance behaves as a local run."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import run_cli

pytest.importorskip("ray", reason="Ray is not installed (pip install 'ispcli[ray]')")

SAMPLES = Path(__file__).resolve().parent.parent / "samples"


def _pixels(path: Path) -> np.ndarray:
    from ispcli.io.images import read_image

    return read_image(path)[0]


def _exif(path: Path) -> dict:
    from ispcli.io.exif import read_image_exif

    return read_image_exif(path)


def test_a_ray_batch_equals_a_local_one_and_keeps_the_batch_contract(tmp_path):
    card = tmp_path / "card"
    card.mkdir()
    shutil.copy(SAMPLES / "kodak_dc50.kdc", card / "a.kdc")
    shutil.copy(SAMPLES / "canon_eos_550d_magiclantern.dng", card / "b.dng")
    (card / "broken.dng").write_bytes(b"\xff\xd8\xff\xe0" + bytes(4000))   # a JPEG named .dng
    local = run_cli("develop", str(card), "-o", str(tmp_path / "local"), "-q")
    assert local.returncode == 1
    ray_run = run_cli("develop", str(card), "-o", str(tmp_path / "ray"), "--executor", "ray", "--json",
                      timeout=600)
    assert ray_run.returncode == 1, ray_run.stderr                    # one file failed, as locally
    lines = {Path(d["input"]).name: d for d in map(json.loads, ray_run.stdout.splitlines())}
    assert {k: v["status"] for k, v in lines.items()} == {"a.kdc": "developed", "b.dng": "developed",
                                                          "broken.dng": "failed"}
    assert "JPEG" in lines["broken.dng"]["error"]
    assert "broken.dng" in ray_run.stderr and "2 developed, 0 skipped, 1 failed" in ray_run.stderr
    for name in ("a.jpg", "b.jpg"):
        np.testing.assert_array_equal(_pixels(tmp_path / "ray" / name), _pixels(tmp_path / "local" / name))
        assert _exif(tmp_path / "ray" / name) == _exif(tmp_path / "local" / name)
    assert sorted(p.name for p in (tmp_path / "ray").iterdir()) == ["a.jpg", "b.jpg"]   # nothing partial
    again = run_cli("develop", str(card / "a.kdc"), "-o", str(tmp_path / "ray"), "--executor", "ray", "--json",
                    timeout=600)
    assert again.returncode == 0 and json.loads(again.stdout)["status"] == "skipped"


def test_executor_options_are_checked_before_anything_runs(tmp_path):
    r = run_cli("develop", str(SAMPLES), "-o", str(tmp_path / "o"), "--executor", "slurm")
    assert r.returncode == 2 and "--executor 'slurm'" in r.stderr
    r = run_cli("develop", str(SAMPLES), "-o", str(tmp_path / "o"), "--address", "auto")
    assert r.returncode == 2 and "--address is for --executor ray" in r.stderr
    assert not (tmp_path / "o").exists()
