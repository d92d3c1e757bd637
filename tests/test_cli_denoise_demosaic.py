"""`ispcli denoise` and `ispcli demosaic` as a user drives them: formats and bit depths kept,
metadata carried over, noise levels, bad inputs, batches, and tiling that changes nothing.

The models are the untrained `tiny_weights` ones: these tests check the machinery, not quality.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tifffile
from conftest import natural_image, run_cli, synthetic_raw_file
from PIL import Image
from typer.testing import CliRunner

from ispcli.cli.app import app
from ispcli.io.images import encode_image, read_image

SHOT = {"Exif.Image.Make": "Canon", "Exif.Image.Model": "Canon EOS 30D", "Exif.Image.Orientation": "6",
        "Exif.Photo.DateTimeOriginal": "2024:05:06 07:08:09", "Exif.Photo.ISOSpeedRatings": "400",
        "Exif.Photo.FNumber": "28/10"}


def invoke(*args):
    """In this process (fast: torch is imported once); for exit codes and messages use run_cli."""
    return CliRunner().invoke(app, list(map(str, args)), catch_exceptions=False)


def rows(stdout: str) -> dict[str, dict]:
    return {Path(r["input"]).name: r for r in map(json.loads, stdout.splitlines())}


def noisy(height=64, width=96, sigma=10.0, seed=0, lift=False) -> np.ndarray:
    """A photo plus Gaussian noise of `sigma` (0-255 units), float, unclipped."""
    img = natural_image(height, width, seed=seed)
    if lift:  # keep the noise away from 0 and 1, where clipping would hide some of it
        img = 0.1 + 0.8 * img
    return img + np.random.default_rng(seed).normal(0, sigma / 255, img.shape).astype(np.float32)


def quantise(img: np.ndarray, dtype) -> np.ndarray:
    top = np.iinfo(dtype).max
    return (np.clip(img, 0, 1) * top).round().astype(dtype)


def save(path: Path, image: np.ndarray, *, icc: bytes | None = None, exif: dict | None = None) -> Path:
    fmt = {".jpg": "jpg", ".png": "png", ".tif": "tif"}[path.suffix]
    path.write_bytes(encode_image(image, fmt, quality=95, icc=icc, exif=exif))
    return path


def exiv2_tags(path: Path) -> dict:
    import pyexiv2

    with pyexiv2.Image(str(path)) as img:
        return img.read_exif()


# ---- denoise: formats, bit depths, metadata ------------------------------------------------------

def test_denoise_keeps_each_inputs_format_and_bit_depth(tiny_weights, tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    img = noisy()
    wide = (img * 1.5 - 0.25).astype(np.float32)  # a float TIFF reaching below 0 and above 1
    save(src / "a8.png", quantise(img, np.uint8))
    save(src / "a16.png", quantise(img, np.uint16))
    save(src / "b16.tif", quantise(img, np.uint16))
    save(src / "f32.tif", wide)
    save(src / "c8.jpg", quantise(img, np.uint8))
    (src / "notes.txt").write_text("not an image")
    res = invoke("denoise", src, "-o", tmp_path / "out", "--sigma", "10", "--json", "-j", "1")
    assert res.exit_code == 0, res.output
    got = rows(res.stdout)
    assert sorted(got) == ["a16.png", "a8.png", "b16.tif", "c8.jpg", "f32.tif"]
    assert all(r["status"] == "denoised" and r["sigma"] == 10.0 for r in got.values())
    out = tmp_path / "out"
    assert sorted(p.name for p in out.iterdir()) == sorted(got)
    for name, dtype in [("a8.png", np.uint8), ("a16.png", np.uint16), ("b16.tif", np.uint16),
                        ("f32.tif", np.float32), ("c8.jpg", np.uint8)]:
        arr = read_image(out / name)[0]
        assert arr.dtype == dtype and arr.shape == (64, 96, 3), name
    assert tifffile.TiffFile(out / "b16.tif").pages[0].dtype == np.uint16
    assert np.any(read_image(out / "a16.png")[0] % 257 != 0)  # real 16-bit, not 8-bit × 257
    f = tifffile.imread(out / "f32.tif")
    assert f.min() < -0.1 and f.max() > 1.1  # float values outside [0, 1] are not clipped
    assert np.abs(f - wide).mean() < 0.2


def test_denoise_carries_icc_and_exif_over(tiny_weights, tmp_path):
    from ispcli.io.icc import icc_profile

    p3 = icc_profile("display-p3")
    src = tmp_path / "in"
    src.mkdir()
    img = noisy()
    save(src / "p.png", quantise(img, np.uint8), icc=p3, exif=SHOT)
    save(src / "t.tif", quantise(img, np.uint16), icc=p3, exif=SHOT)
    save(src / "j.jpg", quantise(img, np.uint8), icc=p3, exif=SHOT)
    res = invoke("denoise", src, "-o", tmp_path / "out", "--sigma", "5", "-j", "1")
    assert res.exit_code == 0, res.output
    for name in ("p.png", "t.tif", "j.jpg"):
        out = tmp_path / "out" / name
        assert read_image(out)[1]["icc"] == p3, name
        tags = exiv2_tags(out)
        for key, value in SHOT.items():  # Orientation 6 too: the pixels were not turned
            assert tags.get(key) == value, (name, key)
        assert tags["Exif.Image.Software"].startswith("ispcli")


def test_bits_and_format_options_change_the_output(tiny_weights, tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    img = noisy()
    save(src / "a8.png", quantise(img, np.uint8))
    save(src / "f32.tif", (img * 1.2).astype(np.float32))
    res = invoke("denoise", src / "a8.png", "-o", tmp_path / "b16", "--bits", "16", "--sigma", "5")
    assert res.exit_code == 0, res.output
    assert read_image(tmp_path / "b16" / "a8.png")[0].dtype == np.uint16
    res = invoke("denoise", src / "a8.png", "-o", tmp_path / "f", "--format", "tif", "--bits", "32", "--sigma", "5")
    assert res.exit_code == 0, res.output
    assert tifffile.imread(tmp_path / "f" / "a8.tif").dtype == np.float32
    res = invoke("denoise", src / "f32.tif", "-o", tmp_path / "p", "--format", "png", "--sigma", "5")
    assert res.exit_code == 0, res.output
    arr = read_image(tmp_path / "p" / "f32.png")[0]
    assert arr.dtype == np.uint16 and arr.max() == 65535  # PNG holds at most 16 bits: clipped


def test_sigma_given_or_estimated_per_image(tiny_weights, tmp_path):
    src = save(tmp_path / "n.png", quantise(noisy(128, 192, sigma=25, lift=True), np.uint16))
    blind = run_cli("denoise", str(src), "-o", str(tmp_path / "blind"), "--json")
    assert blind.returncode == 0, blind.stderr
    estimated = json.loads(blind.stdout)["sigma"]
    assert estimated == pytest.approx(25, rel=0.2)
    given = invoke("denoise", src, "-o", tmp_path / "given", "--sigma", "7.5", "--json")
    assert given.exit_code == 0 and json.loads(given.stdout)["sigma"] == 7.5
    assert not np.array_equal(read_image(tmp_path / "blind" / "n.png")[0], read_image(tmp_path / "given" / "n.png")[0])


def test_tiling_does_not_change_the_output(tiny_weights, tmp_path):
    # 150 x 210: tiles of 64 leave ragged ones at the right and bottom edges
    src = save(tmp_path / "t.png", quantise(noisy(150, 210), np.uint16))
    for tile in ("64", "1024"):
        res = invoke("denoise", src, "-o", tmp_path / tile, "--tile", tile)
        assert res.exit_code == 0, res.output
    assert (tmp_path / "64" / "t.png").read_bytes() == (tmp_path / "1024" / "t.png").read_bytes()


def test_stdin_skip_and_overwrite(tiny_weights, tmp_path):
    src = save(tmp_path / "s.png", quantise(noisy(), np.uint8))
    first = run_cli("denoise", "-", "-o", str(tmp_path / "out"), "-q", "--sigma", "3", stdin=f"{src}\n")
    assert first.returncode == 0 and first.stderr == "" and first.stdout == ""
    out = tmp_path / "out" / "s.png"
    out.write_bytes(b"sentinel")
    again = invoke("denoise", src, "-o", tmp_path / "out", "--json")
    assert again.exit_code == 0 and json.loads(again.stdout)["status"] == "skipped"
    assert out.read_bytes() == b"sentinel"
    forced = invoke("denoise", src, "-o", tmp_path / "out", "--overwrite", "--sigma", "3")
    assert forced.exit_code == 0 and out.read_bytes()[:4] == b"\x89PNG"
    assert "1 denoised, 0 skipped, 0 failed" in forced.output


# ---- denoise: bad input ---------------------------------------------------------------------------

def _break_weights(directory: Path, how: str) -> dict:
    manifest = directory / "manifest.json"
    if how == "corrupt":
        data = bytearray((directory / "tiny-denoise.pt").read_bytes())
        data[len(data) // 2] ^= 0xFF
        (directory / "tiny-denoise.pt").write_bytes(bytes(data))
    elif how == "mismatched":  # a manifest whose arguments do not fit the (intact) file
        body = json.loads(manifest.read_text())
        for m in body["models"]:
            if m["name"] == "tiny-denoise":
                m["args"]["channels"] = [8, 32]
        manifest.write_text(json.dumps(body))
    elif how == "none":
        return {"ISPCLI_WEIGHTS": str(directory.parent / "empty")}
    return {}


@pytest.mark.parametrize("args,weights,message", [
    (["--model", "nope"], None, ("--model nope: unknown model 'nope' (known: tiny-deblur, tiny-dehaze, "
                                 "tiny-demosaic, tiny-denoise, tiny-enhance, tiny-raw-denoise)")),
    (["--model", "tiny-demosaic"], None, "is a demosaic model, not a denoise model"),
    ([], "corrupt", "does not match the manifest"),
    ([], "mismatched", "do not fit"),
    ([], "none", "no denoise model is installed"),
    (["--sigma", "-1"], None, "--sigma -1: expected a noise level from 0 to 255"),
    (["--sigma", "300"], None, "--sigma 300: expected a noise level from 0 to 255"),
    (["--format", "gif"], None, "--format 'gif'"),
    (["--bits", "12"], None, "--bits 12"),
])
def test_bad_models_and_options_are_usage_errors(tiny_weights, tmp_path, args, weights, message):
    src = save(tmp_path / "x.png", quantise(noisy(), np.uint8))
    env = _break_weights(tiny_weights, weights) if weights else {}
    (tmp_path / "empty").mkdir()
    proc = run_cli("denoise", str(src), "-o", str(tmp_path / "out"), *args, env=env)
    assert proc.returncode == 2, proc.stderr
    assert message in proc.stderr and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_unusable_images_fail_alone_and_the_batch_goes_on(tiny_weights, tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    img = quantise(noisy(), np.uint8)
    save(src / "good.png", img)
    Image.fromarray(np.dstack([img, np.full(img.shape[:2], 255, np.uint8)])).save(src / "alpha.png")
    Image.fromarray(img[..., 1]).save(src / "grey.png")
    save(src / "small.png", img[:8, :12])
    (src / "corrupt.jpg").write_bytes(b"\xff\xd8\xff" + np.random.default_rng(0).bytes(3000))
    jpeg16 = save(tmp_path / "j.jpg", img)
    proc = run_cli("denoise", str(src), str(jpeg16), "-o", str(tmp_path / "out"), "--sigma", "5", "--json",
                   "--bits", "16")
    # --bits 16 is fine for PNG, not for a JPEG kept as JPEG
    assert proc.returncode == 1
    got = rows(proc.stdout)
    assert got["good.png"]["status"] == "denoised"
    reasons = {
        "alpha.png": "has an alpha channel; denoise takes RGB images",
        "grey.png": "is greyscale; denoise takes RGB images",
        "small.png": "is 12x8 pixels; images must be at least 16x16",
        "corrupt.jpg": "not a readable image",
        "j.jpg": "JPEG, which is 8-bit only",
    }
    for name, reason in reasons.items():
        assert got[name]["status"] == "failed" and reason in got[name]["error"], got[name]
        assert f"{name}: " in proc.stderr
    assert "Traceback" not in proc.stderr
    assert "1 denoised, 0 skipped, 5 failed" in proc.stderr
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["good.png"]


# ---- demosaic -------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def raw_scene(tmp_path_factory):
    d = tmp_path_factory.mktemp("raws")
    truth = synthetic_raw_file(d / "scene.dng", natural_image(96, 128), iso=400)
    return d / "scene.dng", truth


def camera_truth(truth: dict, peak: float = 0.8) -> np.ndarray:
    """The linear camera RGB the synthetic DNG recorded, normalised as levels leave it."""
    import torch

    from ispcli.train import unprocess

    lin = torch.from_numpy(truth["linear"]).permute(2, 0, 1)[None]
    cam = unprocess.rgb_to_camera(lin, torch.from_numpy(truth["xyz_to_cam"]).float())
    return (cam * (peak / float(cam.max())))[0].permute(1, 2, 0).numpy()


def test_demosaic_raw_gives_linear_camera_rgb(raw_scene, tmp_path):
    dng, truth = raw_scene
    res = invoke("demosaic", dng, "-o", tmp_path, "--method", "menon", "--json")
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["status"] == "demosaicked"
    out = tifffile.imread(tmp_path / "scene.tif")
    assert out.dtype == np.uint16 and out.shape == (96, 128, 3)
    got, want = out[4:-4, 4:-4].astype(np.float64) / 65535, camera_truth(truth)[4:-4, 4:-4]
    for c in range(3):
        assert np.corrcoef(got[..., c].ravel(), want[..., c].ravel())[0, 1] > 0.95
    assert np.abs(got - want).mean() < 0.01  # levels only: no white balance, matrix or curve
    assert exiv2_tags(tmp_path / "scene.tif")["Exif.Photo.ISOSpeedRatings"] == "400"
    res = invoke("demosaic", dng, "-o", tmp_path / "f", "--bits", "32")
    assert res.exit_code == 0 and tifffile.imread(tmp_path / "f" / "scene.tif").dtype == np.float32


def test_demosaic_refuses_linear_raws(tmp_path):
    synthetic_raw_file(tmp_path / "lin.dng", natural_image(32, 48), linear=True)
    proc = run_cli("demosaic", str(tmp_path / "lin.dng"), "-o", str(tmp_path / "out"))
    assert proc.returncode == 1 and "lin.dng: already demosaicked" in proc.stderr
    assert not any((tmp_path / "out").iterdir())


def test_a_network_refuses_x_trans_per_file(tiny_weights, tmp_path, monkeypatch):
    from ispcli.io import decoder
    from ispcli.io.raw import RawImage
    from ispcli.pipeline.image_jobs import demosaic_file
    from ispcli.pipeline.jobs import Job
    from ispcli.recipe import Recipe

    xtrans = np.array([[1, 1, 0, 1, 1, 2], [1, 1, 2, 1, 1, 0], [2, 0, 1, 0, 2, 1],
                       [1, 1, 2, 1, 1, 0], [1, 1, 0, 1, 1, 2], [0, 2, 1, 2, 0, 1]])
    fake = RawImage(path="x.raf", kind="xtrans", data=np.full((48, 48), 1000, np.uint16), cfa=xtrans,
                    black=np.zeros((6, 6)), white=4095.0, wb_camera=None, wb_daylight=None,
                    xyz_to_cam=np.eye(3), matrix_source="none")
    monkeypatch.setattr(decoder, "read_raw_isolated", lambda path, **kwargs: fake)
    job = Job("x.raf", str(tmp_path / "x.tif"), Recipe(format="tif", bits=0, demosaic="net:tiny-demosaic"))
    result = demosaic_file(job)
    assert result.status == "failed" and "X-Trans" in result.error
    assert not (tmp_path / "x.tif").exists()
    classical = demosaic_file(Job("x.raf", str(tmp_path / "x.tif"), Recipe(format="tif", bits=0, demosaic="menon")))
    assert classical.status == "demosaicked" and "X-Trans" in classical.warnings[0]


@pytest.mark.parametrize("method", ["menon", "net:tiny-demosaic"])
def test_demosaic_mosaic_images_with_cfa(tiny_weights, tmp_path, method):
    srgb = natural_image(64, 96)
    mosaic = np.empty(srgb.shape[:2], np.float32)
    for (dy, dx), c in {(0, 0): 0, (0, 1): 1, (1, 0): 1, (1, 1): 2}.items():  # RGGB
        mosaic[dy::2, dx::2] = srgb[dy::2, dx::2, c]
    Image.fromarray(quantise(mosaic, np.uint8)).save(tmp_path / "m.png")
    res = invoke("demosaic", tmp_path / "m.png", "-o", tmp_path / "out", "--cfa", "rggb", "--method", method)
    assert res.exit_code == 0, res.output
    out = tifffile.imread(tmp_path / "out" / "m.tif")
    assert out.dtype == np.uint8 and out.shape == (64, 96, 3)  # the input's bit depth
    if method == "menon":
        err = out[4:-4, 4:-4].astype(np.float64) / 255 - srgb[4:-4, 4:-4]
        assert 10 * np.log10(1 / np.mean(err ** 2)) > 25
    res = invoke("demosaic", tmp_path / "m.png", "-o", tmp_path / "b16", "--cfa", "RGGB", "--method", method,
                 "--bits", "16")
    assert res.exit_code == 0 and tifffile.imread(tmp_path / "b16" / "m.tif").dtype == np.uint16


@pytest.mark.parametrize("args,message", [
    (["--method", "fancy"], ("--method 'fancy': expected one of default, menon, malvar, bilinear or net:NAME "
                             "(installed: net:tiny-demosaic)")),
    (["--method", "net:nope"], "--method net:nope: unknown model 'nope'"),
    (["--method", "net:tiny-denoise"], "is a denoise model, not a demosaic model"),
    (["--cfa", "RGBW"], "--cfa 'RGBW': expected one of RGGB, BGGR, GRBG, GBRG"),
    (["--bits", "12"], "--bits 12"),
])
def test_demosaic_usage_errors(tiny_weights, raw_scene, tmp_path, args, message):
    proc = run_cli("demosaic", str(raw_scene[0]), "-o", str(tmp_path / "out"), *args)
    assert proc.returncode == 2 and message in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "out").exists()


def test_help_does_not_import_torch():
    code = ("import sys; from ispcli.cli.app import app\n"
            "for cmd in ('denoise', 'demosaic'):\n"
            "    try:\n        app([cmd, '--help'])\n    except SystemExit:\n        pass\n"
            "assert 'torch' not in sys.modules and 'rawpy' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)
