"""`ispcli info`: what was read from a raw, for people and for scripts."""

from __future__ import annotations

import json
import subprocess
import sys

from conftest import SAMPLES, run_cli


def test_info_json_reports_the_metadata_read():
    proc = run_cli("info", str(SAMPLES / "canon_eos_550d_magiclantern.dng"), str(SAMPLES / "kodak_dc50.kdc"),
                   "--json")
    assert proc.returncode == 0, proc.stderr
    dng, kdc = map(json.loads, proc.stdout.splitlines())
    assert dng["camera"] == "Canon EOS Kiss X4" and dng["cfa"] == "RGGB"
    assert (dng["width"], dng["height"]) == (1734, 1156)
    assert dng["black_level"] == [2056.0] * 4 and dng["white_level"] == 15000.0
    assert dng["matrix_source"] == "dng"  # LibRaw's matrix is all zero; the DNG's own tag is used
    assert dng["wb_as_shot"] == [2.477, 1.0, 1.6943]
    assert kdc["cfa"] == "GRBG" and kdc["matrix_source"] == "none" and kdc["wb_as_shot"] is None
    assert any("no colour matrix" in w for w in kdc["warnings"])


def test_info_human_and_bad_files(tmp_path):
    bad = tmp_path / "fake.nef"
    bad.write_bytes(b"\xff\xd8\xff\xe0 not really a raw")
    proc = run_cli("info", str(SAMPLES / "kodak_dc50.kdc"), str(bad))
    assert proc.returncode == 1
    assert "GRBG" in proc.stdout and "Eastman Kodak" in proc.stdout
    assert proc.stderr.strip().splitlines() == [f"ispcli: {bad}: a JPEG image, not a raw file"]


def test_info_does_not_import_torch():
    code = ("import sys\nfrom ispcli.cli.app import app\n"
            f"try:\n    app(['info', {str(SAMPLES / 'kodak_dc50.kdc')!r}, '--json'])\nexcept SystemExit:\n    pass\n"
            "assert 'torch' not in sys.modules")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
