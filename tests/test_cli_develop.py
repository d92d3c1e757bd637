"""`ispcli develop` as a user drives it: options, outputs, exit codes, JSON, stdin, batches."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import tifffile
from conftest import SAMPLES, natural_image, synthetic_raw_file
from PIL import Image
from typer.testing import CliRunner

from ispcli.cli.app import app

DC50 = SAMPLES / "kodak_dc50.kdc"
DNG550 = SAMPLES / "canon_eos_550d_magiclantern.dng"


def invoke(*args, input=None):
    return CliRunner().invoke(app, list(map(str, args)), input=input, catch_exceptions=False)


@pytest.fixture(scope="module")
def small_dng(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("raws")
    synthetic_raw_file(d / "scene.dng", natural_image(96, 128), iso=400, datetime="2024:05:06 07:08:09",
                       exposure_time=0.01, f_number=2.8, focal_length=50)
    return d / "scene.dng"


def exiv2_tags(path: Path) -> dict:
    import pyexiv2

    with pyexiv2.Image(str(path)) as img:
        return img.read_exif()


def test_develops_the_shipped_samples_with_exif_and_icc(tmp_path):
    res = invoke("develop", SAMPLES, "-o", tmp_path, "-j", "1")
    assert res.exit_code == 0, res.output
    dc50, c550 = tmp_path / "kodak_dc50.jpg", tmp_path / "canon_eos_550d_magiclantern.jpg"
    assert Image.open(dc50).size == (768, 512)
    assert Image.open(c550).size == (1734, 1156)
    tags = exiv2_tags(dc50)
    assert tags["Exif.Image.Make"] == "Eastman Kodak Company"
    assert tags["Exif.Image.Orientation"] == "1"
    from ispcli.io.icc import icc_profile

    assert Image.open(c550).info["icc_profile"] == icc_profile("srgb")
    # no metadata in the DC50: auto white balance and an sRGB stand-in matrix, said out loud
    assert "no colour matrix" in res.output


@pytest.mark.parametrize("fmt,bits,dtype", [("png", 16, np.uint16), ("png", 8, np.uint8), ("tif", 16, np.uint16),
                                            ("tif", 8, np.uint8), ("tif", 32, np.float32)])
def test_formats_and_bit_depths(small_dng, tmp_path, fmt, bits, dtype):
    res = invoke("develop", small_dng, "-o", tmp_path, "--format", fmt, "--bits", bits)
    assert res.exit_code == 0, res.output
    out = tmp_path / f"scene.{fmt}"
    if fmt == "tif":
        arr = tifffile.imread(out)
    else:
        from ispcli.io.images import read_image

        arr = read_image(out)[0]
    assert arr.dtype == dtype and arr.shape == (96, 128, 3)
    if bits == 16:  # real 16-bit, not 8-bit × 257
        assert np.any(arr % 257 != 0)
    tags = exiv2_tags(out)
    assert tags["Exif.Photo.ISOSpeedRatings"] == "400"
    assert tags["Exif.Photo.FNumber"] in ("28/10", "14/5")


@pytest.mark.parametrize("space", ["srgb", "display-p3", "adobe-rgb", "prophoto", "rec2020", "linear-srgb"])
def test_every_color_space_embeds_its_profile(small_dng, tmp_path, space):
    from ispcli.io.icc import icc_profile

    res = invoke("develop", small_dng, "-o", tmp_path, "--color-space", space, "-f", "tif")
    assert res.exit_code == 0, res.output
    with tifffile.TiffFile(tmp_path / "scene.tif") as tf:
        assert bytes(tf.pages[0].tags[34675].value) == icc_profile(space)


def test_existing_outputs_are_skipped_unless_overwrite(small_dng, tmp_path):
    assert invoke("develop", small_dng, "-o", tmp_path).exit_code == 0
    out = tmp_path / "scene.jpg"
    out.write_bytes(b"sentinel")
    res = invoke("develop", small_dng, "-o", tmp_path, "--json")
    assert res.exit_code == 0
    assert json.loads(res.stdout.splitlines()[0])["status"] == "skipped"
    assert out.read_bytes() == b"sentinel"
    res = invoke("develop", small_dng, "-o", tmp_path, "--overwrite")
    assert res.exit_code == 0 and out.read_bytes()[:2] == b"\xff\xd8"


def test_json_lines_report_each_file(small_dng, tmp_path):
    res = invoke("develop", small_dng, DC50, tmp_path / "nope.dng", "-o", tmp_path / "o", "--json", "-j", "1")
    assert res.exit_code == 1
    rows = [json.loads(line) for line in res.stdout.splitlines()]
    by_status = {r["status"]: r for r in rows}
    assert set(by_status) == {"developed", "failed"} and len(rows) == 3
    ok = [r for r in rows if r["input"] == str(small_dng)][0]
    assert ok["output"].endswith("scene.jpg") and ok["megapixels"] == pytest.approx(0.012, abs=1e-3)
    assert ok["seconds"] > 0 and ok["error"] is None
    assert by_status["failed"]["error"] == "no such file or folder"


def test_paths_from_stdin(small_dng, tmp_path, cli):
    proc = cli("develop", "-", "-o", str(tmp_path), "-q", stdin=f"{small_dng}\n{DC50}\n")
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == "" and proc.stdout == ""
    assert sorted(p.name for p in tmp_path.iterdir()) == ["kodak_dc50.jpg", "scene.jpg"]


def test_recursive_mirrors_the_tree_and_globs_work(small_dng, tmp_path):
    src = tmp_path / "card"
    (src / "day1").mkdir(parents=True)
    shutil.copy(small_dng, src / "day1" / "a.dng")
    shutil.copy(small_dng, src / "b.dng")
    (src / "notes.txt").write_text("not a raw")
    assert invoke("develop", src, "-o", tmp_path / "flat").exit_code == 0
    assert sorted(p.name for p in (tmp_path / "flat").iterdir()) == ["b.jpg"]
    assert invoke("develop", src, "-r", "-o", tmp_path / "tree").exit_code == 0
    assert (tmp_path / "tree" / "day1" / "a.jpg").is_file() and (tmp_path / "tree" / "b.jpg").is_file()
    assert invoke("develop", str(src / "**" / "*.dng"), "-o", tmp_path / "glob").exit_code == 0
    assert sorted(p.name for p in (tmp_path / "glob").iterdir()) == ["a.jpg", "b.jpg"]


def test_name_template_values_are_sanitised(small_dng, tmp_path):
    from ispcli.io.batch import Source, output_path
    from ispcli.io.exif import ExifSummary

    res = invoke("develop", small_dng, "-o", tmp_path, "--name", "{date:%Y%m%d}_{camera}_{iso}_{stem}")
    assert res.exit_code == 0, res.output
    assert (tmp_path / "20240506_Canon EOS 30D_400_scene.jpg").is_file()
    evil = ExifSummary(model="EOS 1/1600 ../../x", make="a\x00b")
    out = output_path(Source("/in/x.cr2"), "/out", "{camera}/{make}_{stem}", ".jpg", exif=evil)
    assert out == "/out/EOS 1_1600 .._.._x/a_b_x.jpg"  # no separator survives


@pytest.mark.parametrize("args,message", [
    (["--bits", "12"], "--bits 12"),
    (["--quality", "200"], "--quality 200"),
    (["--color-space", "cmyk"], "--color-space 'cmyk'"),
    (["--bits", "16"], "JPEG is 8-bit only"),
    (["--wb", "warm"], "--wb 'warm'"),
    (["--name", "{nope}"], "unknown field {nope}"),
    (["--name", "../{stem}"], "must stay inside"),
    (["--device", "tpu"], "--device 'tpu'"),
    (["--jobs", "-1"], "--jobs -1"),
    (["--tile", "8"], "--tile 8"),
])
def test_bad_option_values_are_usage_errors(small_dng, tmp_path, args, message, cli):
    proc = cli("develop", str(small_dng), "-o", str(tmp_path / "out"), *args)
    assert proc.returncode == 2
    assert message in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "out" / "scene.jpg").exists()


def test_asking_for_a_missing_gpu_is_a_usage_error(small_dng, tmp_path, cli):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a CUDA GPU")
    proc = cli("develop", str(small_dng), "-o", str(tmp_path), "--device", "cuda")
    assert proc.returncode == 2 and "--device cuda: no CUDA GPU is available" in proc.stderr


def test_bad_files_fail_alone_and_the_batch_goes_on(small_dng, tmp_path):
    bad = tmp_path / "in"
    bad.mkdir()
    good = bad / "good.dng"
    shutil.copy(small_dng, good)
    data = small_dng.read_bytes()
    (bad / "truncated.dng").write_bytes(data[: len(data) // 3])
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(bad / "photo.dng", "JPEG")
    (bad / "empty.cr2").write_bytes(b"")
    (bad / "noise.nef").write_bytes(np.random.default_rng(0).bytes(50_000))
    (bad / "clip.gpr").write_bytes(b"GPR\x00" * 1000)
    empty_dir = tmp_path / "nothing"
    empty_dir.mkdir()
    out = tmp_path / "out"
    res = invoke("develop", bad, empty_dir, tmp_path / "missing.dng", "-o", out, "--json", "-j", "1")
    assert res.exit_code == 1
    rows = {Path(r["input"]).name: r for r in map(json.loads, res.stdout.splitlines())}
    assert rows["good.dng"]["status"] == "developed"
    for name in ("truncated.dng", "photo.dng", "empty.cr2", "noise.nef", "clip.gpr", "nothing", "missing.dng"):
        assert rows[name]["status"] == "failed", name
        assert rows[name]["error"] and "\n" not in rows[name]["error"]
        assert f"{name}: " in res.stderr
    assert sorted(p.name for p in out.iterdir()) == ["good.jpg"]  # nothing half-written


def test_unwritable_output_folder(small_dng, tmp_path, cli):
    if os.geteuid() == 0:
        target = "/proc/ispcli-out"  # even root cannot create files there
    else:
        ro = tmp_path / "ro"
        ro.mkdir()
        ro.chmod(0o500)
        target = str(ro / "out")
    proc = cli("develop", str(small_dng), "-o", target)
    assert proc.returncode == 1
    assert f"cannot write to output folder {target}" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_disk_full_leaves_no_partial_file(tmp_path, disk_full):
    from ispcli.io import images
    from ispcli.io.errors import OutputError

    with pytest.raises(OutputError, match="disk full"):
        images.write_atomic(tmp_path / "x.jpg", b"x" * 1000, overwrite=False)
    assert list(tmp_path.iterdir()) == []


def test_recipe_file_flags_override_and_sidecar_reproduces_bit_for_bit(small_dng, tmp_path):
    recipe = tmp_path / "r.toml"
    recipe.write_text('look = "neutral"\ncolor_space = "adobe-rgb"\nformat = "png"\nbits = 16\nexposure = 0.5\n')
    res = invoke("develop", small_dng, "-o", tmp_path / "a", "--recipe", recipe, "--exposure", "1", "--sidecar")
    assert res.exit_code == 0, res.output
    side = json.loads((tmp_path / "a" / "scene.png.ispcli.json").read_text())
    assert side["recipe"]["look"] == "neutral" and side["recipe"]["exposure"] == 1.0
    assert side["recipe"]["color_space"] == "adobe-rgb"
    res = invoke("develop", small_dng, "-o", tmp_path / "b", "--recipe", tmp_path / "a" / "scene.png.ispcli.json")
    assert res.exit_code == 0, res.output
    assert (tmp_path / "a" / "scene.png").read_bytes() == (tmp_path / "b" / "scene.png").read_bytes()
    bad = tmp_path / "bad.toml"
    bad.write_text('colour = "srgb"\n')
    res = invoke("develop", small_dng, "-o", tmp_path / "c", "--recipe", bad)
    assert res.exit_code == 2 and "unknown setting(s) colour" in res.output


def test_orientation_is_baked_in(tmp_path):
    img = natural_image(64, 96)
    synthetic_raw_file(tmp_path / "rot.dng", img, orientation=6)
    res = invoke("develop", tmp_path / "rot.dng", "-o", tmp_path / "o")
    assert res.exit_code == 0, res.output
    out = tmp_path / "o" / "rot.jpg"
    assert Image.open(out).size == (64, 96)  # width, height: turned upright
    assert exiv2_tags(out)["Exif.Image.Orientation"] == "1"


def test_version_and_help_do_not_import_torch(cli):
    proc = cli("--version")
    assert proc.returncode == 0 and proc.stdout.startswith("ispcli ")
    import subprocess
    import sys

    code = ("import sys; from ispcli.cli.app import app\n"
            "try:\n    app(['develop', '--help'])\nexcept SystemExit:\n    pass\n"
            "assert 'torch' not in sys.modules and 'rawpy' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)


def test_an_unexpected_error_costs_one_file_not_the_batch(small_dng, tmp_path, monkeypatch):
    from ispcli.pipeline import jobs

    real = jobs.develop_array

    def flaky(raw, recipe, device=None):
        if "boom" in raw.path:
            raise RuntimeError("simulated bug")
        return real(raw, recipe, device)

    monkeypatch.setattr(jobs, "develop_array", flaky)
    shutil.copy(small_dng, tmp_path / "boom.dng")
    res = invoke("develop", tmp_path / "boom.dng", small_dng, "-o", tmp_path / "o", "-j", "1", "--json")
    assert res.exit_code == 1
    rows = {Path(r["input"]).name: r for r in map(json.loads, res.stdout.splitlines())}
    assert rows["scene.dng"]["status"] == "developed"
    assert rows["boom.dng"]["error"].startswith("internal error (RuntimeError: simulated bug)")
