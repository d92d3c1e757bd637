"""`ispcli eval`: fixed-seed degradations, baselines, the table/JSON and the manifest scores."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from conftest import SHARED_DATA, run_cli
from typer.testing import CliRunner

from ispcli.cli.app import app

BENCH = SHARED_DATA / "bench"
requires_bench = pytest.mark.skipif(
    not BENCH.is_dir(), reason="../shared/data/bench is absent: the benchmark-set tests need it")

# Crops of scikit-image photos (never benchmark images): textured enough that demosaickers
# differ, with few pixels at 0 or 255 so σ=25 noise is rarely clipped.
CROPS = [("chelsea", 0.25, 0.25), ("chelsea", 0.5, 0.5), ("rocket", 0.25, 0.25), ("rocket", 0.5, 0.5)]


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    from PIL import Image
    from skimage import data

    folder = tmp_path_factory.mktemp("evaldata") / "bench"
    folder.mkdir()
    for i, (name, fy, fx) in enumerate(CROPS):
        img = getattr(data, name)()
        h, w = img.shape[:2]
        y, x = int(h * fy) - (64 if fy == 0.5 else 0), int(w * fx) - (80 if fx == 0.5 else 0)
        Image.fromarray(img[y:y + 128, x:x + 160]).save(folder / f"img{i}_{name}.png")
    (folder / "notes.txt").write_text("not an image\n")
    return folder


@pytest.fixture
def no_models(tmp_path, monkeypatch):
    """An empty weights folder: baselines only, whatever weights/ holds."""
    monkeypatch.setenv("ISPCLI_WEIGHTS", str(tmp_path / "no-weights"))


def invoke(*args: str):
    """The command in-process; (exit code, stdout, stderr)."""
    res = CliRunner().invoke(app, ["eval", *args])
    return res.exit_code, res.stdout, res.stderr


def eval_json(*args: str) -> dict:
    code, out, err = invoke(*args, "--json")
    assert code == 0, err
    return json.loads(out)


def scores(doc: dict) -> list[tuple]:
    return [(m["image"], m["method"], m["level"], m["psnr"], m["ssim"]) for m in doc["per_image"]]


def expected_clipped_noise_psnr(clean: np.ndarray, sigma: float) -> float:
    """PSNR of clip(x + N(0, σ²)) against x, in expectation, for clean values x in [0, 1]."""
    from scipy.stats import norm

    x = clean.astype(np.float64).ravel()
    a, b = -x / sigma, (1 - x) / sigma          # the noise (in σ) that clipping cuts off
    inside = sigma ** 2 * ((norm.cdf(b) - norm.cdf(a)) - (b * norm.pdf(b) - a * norm.pdf(a)))
    mse = inside + x ** 2 * norm.cdf(a) + (1 - x) ** 2 * norm.sf(b)
    return -10 * math.log10(mse.mean() + 1 / 12 / 255 ** 2)   # + 8-bit rounding


def test_denoise_is_reproducible_and_any_prefix_scores_the_same(images, tiny_weights):
    full = eval_json("denoise", "--data", str(images), "--sigma", "15,25", "--limit", "3")
    first_two = eval_json("denoise", "--data", str(images), "--sigma", "25", "--limit", "2")
    assert first_two["images"] == 2
    wanted = [s for s in scores(full) if s[2] == "sigma=25" and s[0] in ("img0_chelsea.png", "img1_chelsea.png")]
    assert len(wanted) == 6 and scores(first_two) == wanted   # other images and levels change nothing
    assert scores(eval_json("denoise", "--data", str(images), "--sigma", "25", "--limit", "2")) == wanted
    other_seed = eval_json("denoise", "--data", str(images), "--sigma", "25", "--limit", "2", "--seed", "7")
    assert scores(other_seed) != wanted


def test_json_holds_every_method_and_level(images, tiny_weights):
    from ispcli.eval.baselines import bm3d_available

    doc = eval_json("denoise", "--data", str(images), "--sigma", "15,50", "--limit", "1")
    methods = ["noisy", "nlm"] + (["bm3d"] if bm3d_available() else []) + ["tiny-denoise"]
    got = {(r["method"], r["level"]) for r in doc["results"]}
    assert got == {(m, lv) for m in methods for lv in ("sigma=15", "sigma=50")}
    assert doc["task"] == "denoise" and doc["benchmark"] == "bench" and doc["images"] == 1
    for r in doc["results"]:
        assert r["images"] == 1 and r["seconds_per_mp"] > 0 and 0 < r["ssim"] <= 1
        assert r["kind"] == ("model" if r["method"] == "tiny-denoise" else "baseline")
    by = {(r["method"], r["level"]): r["psnr"] for r in doc["results"]}
    assert by[("noisy", "sigma=15")] > by[("noisy", "sigma=50")] + 9     # 20·log10(50/15) ≈ 10.5 dB
    assert by[("nlm", "sigma=50")] > by[("noisy", "sigma=50")] + 5       # the baseline really denoises


def test_noisy_psnr_at_sigma_25_is_the_clipped_gaussian_value(images, tiny_weights):
    from ispcli.eval.dataset import find_images, load_rgb

    doc = eval_json("denoise", "--data", str(images), "--sigma", "25", "--model", "tiny-denoise")
    noisy = {m["image"]: m["psnr"] for m in doc["per_image"] if m["method"] == "noisy"}
    for path in find_images(images):
        expected = expected_clipped_noise_psnr(load_rgb(path), 25 / 255)
        assert noisy[path.name] == pytest.approx(expected, abs=0.1), path.name
    mean = np.mean(list(noisy.values()))
    # 20·log10(255/25) = 20.17 dB unclipped; clipping at 0 and 1 can only lower the error
    assert 20.17 - 0.02 < mean < 20.17 + 0.3


def test_demosaic_classical_ranking(images, no_models):
    doc = eval_json("demosaic", "--data", str(images))
    psnr = {r["method"]: r["psnr"] for r in doc["results"]}
    assert set(psnr) == {"bilinear", "malvar", "menon", "default"}
    assert psnr["menon"] > psnr["bilinear"] + 3
    assert psnr["default"] > psnr["bilinear"] + 3
    assert psnr["malvar"] > psnr["bilinear"]
    assert doc["protocol"]["border"] == 5


def test_raw_denoise_levels_and_reproducibility(images, tiny_weights):
    args = ("raw-denoise", "--data", str(images), "--limit", "2", "--iso", "1600,6400")
    doc = eval_json(*args)
    assert scores(doc) == scores(eval_json(*args))
    psnr = {(r["method"], r["level"]): r["psnr"] for r in doc["results"]}
    assert set(psnr) == {(m, lv) for m in ("noisy", "tiny-raw-denoise") for lv in ("iso=1600", "iso=6400")}
    # 4× the gain: 4× the shot variance (and more read noise), about 6 dB less
    assert 5 < psnr[("noisy", "iso=1600")] - psnr[("noisy", "iso=6400")] < 8


def test_raw_denoise_camera_is_fixed_per_image():
    import torch

    from ispcli.eval import benchmark

    task = benchmark.make_task("raw-denoise", isos=[1600, 6400])
    clean = torch.rand(1, 3, 32, 48, generator=torch.Generator().manual_seed(1))
    a = task.degrade(clean, task.levels[0], 0, 3)
    b = task.degrade(clean, task.levels[1], 0, 3)
    c = task.degrade(clean, task.levels[0], 0, 4)
    assert a.extra["gains"] == b.extra["gains"] != c.extra["gains"]
    assert torch.equal(a.target, b.target)                       # same camera and exposure
    assert not np.array_equal(a.source, b.source)                 # more noise at ISO 6400


def test_denoise_noise_is_unclipped():
    import torch

    from ispcli.eval import benchmark

    task = benchmark.make_task("denoise", sigmas=[50])
    clean = torch.full((1, 3, 32, 32), 0.02)
    sample = task.degrade(clean, task.levels[0], 0, 0)
    assert sample.source.min() < 0 and sample.source.dtype == np.float32


def test_record_writes_scores_into_the_manifest(images, tiny_weights):
    from ispcli.models import weights

    doc = eval_json("demosaic", "--data", str(images), "--model", "tiny-demosaic", "--limit", "2", "--record")
    entry = weights.read_manifest(tiny_weights)["tiny-demosaic"]
    result = next(r for r in doc["results"] if r["method"] == "tiny-demosaic")
    assert entry.scores["bench noise-free"]["psnr"] == pytest.approx(result["psnr"], abs=1e-3)
    assert entry.scores["bench noise-free"]["images"] == 2
    assert doc["recorded"] == ["tiny-demosaic: bench noise-free"]
    assert weights.read_manifest(tiny_weights)["tiny-denoise"].scores == {}   # others untouched


def test_table_on_stdout(images, tiny_weights):
    code, out, err = invoke("demosaic", "--data", str(images), "--limit", "1", "--model", "tiny-demosaic")
    assert code == 0, err
    for word in ("bilinear", "menon", "tiny-demosaic", "CPSNR", "SSIM", "s/MP", "images"):
        assert word in out


@pytest.mark.parametrize("args,message", [
    (["denoise", "--data", "{empty}"], "no images"),
    (["denoise", "--data", "{missing}"], "no such folder"),
    (["denoise", "--data", "{images}", "--model", "nope"], "tiny-denoise"),
    (["denoise", "--data", "{images}", "--model", "tiny-demosaic"], "is a demosaic model, not a denoise model"),
    (["denoise", "--data", "{images}", "--sigma", "abc"], "expected a number"),
    (["denoise", "--data", "{images}", "--sigma", "0"], "must be above 0"),
    (["denoise", "--data", "{images}", "--sigma", "25,300"], "at most 255"),
    (["demosaic", "--data", "{images}", "--sigma", "25"], "--sigma applies to the denoise task"),
    (["denoise", "--data", "{images}", "--limit", "0"], "--limit 0"),
    (["sharpen", "--data", "{images}"], "unknown task"),
])
def test_bad_input_is_one_line_and_exit_2(images, tiny_weights, tmp_path, args, message):
    (tmp_path / "empty").mkdir()
    paths = {"empty": tmp_path / "empty", "missing": tmp_path / "missing", "images": images}
    proc = run_cli("eval", *[a.format(**paths) for a in args], timeout=60)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr and proc.stdout == ""


@requires_bench
def test_kodak_demosaic_ranking(no_models):
    code, out, err = invoke("demosaic", "--data", str(BENCH / "Kodak24"), "--limit", "1", "--json")
    assert code == 0, err
    psnr = {r["method"]: r["psnr"] for r in json.loads(out)["results"]}
    assert psnr["menon"] > psnr["bilinear"] + 3 and psnr["default"] > psnr["bilinear"] + 3


@requires_bench
def test_cbsd68_noisy_psnr(no_models):
    from ispcli.eval.dataset import find_images, load_rgb

    code, out, err = invoke("denoise", "--data", str(BENCH / "CBSD68"), "--limit", "2", "--sigma", "25", "--json")
    assert code == 0, err
    noisy = {m["image"]: m["psnr"] for m in json.loads(out)["per_image"] if m["method"] == "noisy"}
    for path in find_images(BENCH / "CBSD68", 2):
        assert noisy[path.name] == pytest.approx(expected_clipped_noise_psnr(load_rgb(path), 25 / 255), abs=0.1)


def test_bm3d_row_appears_only_when_the_package_is_importable(images, no_models, monkeypatch):
    import sys
    import types

    from scipy.ndimage import gaussian_filter

    calls = []

    def bm3d_rgb(z, sigma_psd):                  # a stand-in with bm3d's signature
        calls.append((z.dtype, z.shape, sigma_psd))
        return gaussian_filter(z, (1, 1, 0))

    monkeypatch.setitem(sys.modules, "bm3d", types.SimpleNamespace(bm3d_rgb=bm3d_rgb))
    doc = eval_json("denoise", "--data", str(images), "--sigma", "25", "--limit", "1")
    assert [r["method"] for r in doc["results"]] == ["noisy", "nlm", "bm3d"]
    assert calls[-1][0] == np.float64 and calls[-1][1] == (128, 160, 3)
    assert calls[-1][2] == pytest.approx(25 / 255)
    monkeypatch.setitem(sys.modules, "bm3d", None)   # import bm3d now fails
    doc = eval_json("denoise", "--data", str(images), "--sigma", "25", "--limit", "1")
    assert [r["method"] for r in doc["results"]] == ["noisy", "nlm"]
