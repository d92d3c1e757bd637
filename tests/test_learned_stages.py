"""Learned stages inside the runner and inside develop: tiles equal the whole frame, every
CFA order works, the noise level is recorded, bad models are refused before a batch."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch

from ispcli.pipeline import develop, learned, runner
from ispcli.pipeline.stage import Pipeline
from ispcli.recipe import Recipe
from tests.conftest import natural_image, run_cli, synthetic_raw_file
from tests.test_pipeline import BAYER, XTRANS, fake_raw

CPU = torch.device("cpu")


def _tiled(pipe, source, tile, align=1):
    whole = runner.run_whole(pipe, source, CPU, align=align)
    out = torch.full_like(whole, float("nan"))

    def sink(t, part):
        out[..., t.y0:t.y1, t.x0:t.x1] = part

    runner.run(pipe, source, sink, device=CPU, tile=tile, align=align)
    return float((out - whole).abs().max())


@pytest.mark.parametrize("tile", [64, 100, 250])
def test_denoise_stage_tiles_equal_whole_frame(tiny_weights, tile):
    image = natural_image(150, 230)
    pipe = Pipeline([learned.denoise_stage("tiny-denoise", 25 / 255, device=CPU)])
    assert _tiled(pipe, image, tile) < 1e-4   # tile 100 is not on the network's 4-pixel grid


@pytest.mark.parametrize("order", list(BAYER))
def test_raw_stages_tiles_equal_whole_frame_for_every_cfa_order(tiny_weights, order):
    mosaic = np.random.default_rng(1).random((131, 157), dtype=np.float32)
    cfa = BAYER[order]
    for stage in (learned.demosaic_stage("tiny-demosaic", cfa, device=CPU),
                  learned.raw_denoise_stage("tiny-raw-denoise", cfa, [2.0, 1.0, 1.5], 1e-3, 1e-5, device=CPU)):
        assert _tiled(Pipeline([stage]), mosaic, tile=62, align=2) < 1e-4, stage.name


@pytest.mark.parametrize("demosaic", ["net:tiny-demosaic", "default"])
@pytest.mark.parametrize("order", list(BAYER))
def test_develop_with_learned_stages_tiles_equal_whole_frame(tiny_weights, order, demosaic):
    raw = fake_raw(cfa=BAYER[order])
    raw.exif.iso = 3200
    recipe = Recipe(denoise="tiny-raw-denoise", demosaic=demosaic, look="neutral")
    analysis = develop.analyse(raw, recipe)
    assert analysis.noise["source"] == "ISO 3200"
    pipe = develop.build_pipeline(raw, recipe, analysis, float_output=True, device=CPU)
    assert [s.name for s in pipe.stages][:5] == ["levels", "white_balance", "raw_denoise", "demosaic",
                                                 "highlight_recovery"]
    assert _tiled(pipe, raw.data, tile=48, align=2) < 1e-4


def test_the_raw_noise_level_is_measured_when_the_iso_is_unknown():
    raw = fake_raw()
    rng = np.random.default_rng(0)
    sigma_counts = 40.0
    scene = natural_image(raw.height, raw.width)[..., 1] * 2000 + 500     # photo-like, noise-free
    raw.data = (scene + rng.normal(0, sigma_counts, scene.shape)).clip(0, 4095).astype(np.uint16)
    raw.exif.iso = None
    noise = develop.noise_levels(raw)
    assert noise["source"].startswith("estimated")
    level = float(np.median(develop.green_sites(raw)))
    sigma = np.sqrt(noise["shot"] * level + noise["read"]) * (raw.white - float(np.mean(raw.black)))
    assert 0.6 * sigma_counts < sigma < 1.6 * sigma_counts


def test_learned_raw_stages_refuse_xtrans_with_a_clear_message(tiny_weights):
    with pytest.raises(learned.StageError, match="Bayer"):
        learned.demosaic_stage("tiny-demosaic", XTRANS, device=CPU)
    raw = fake_raw(cfa=XTRANS)
    analysis = develop.analyse(raw, Recipe(denoise="tiny-raw-denoise"))
    assert analysis.noise is None and any("Bayer" in w for w in analysis.warnings)


def test_develop_cli_runs_learned_stages_and_records_the_noise(tiny_weights, tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    synthetic_raw_file(src / "a.dng", natural_image(96, 128), cfa="GRBG", iso=6400)
    r = run_cli("develop", str(src), "-o", str(tmp_path / "out"), "--denoise", "tiny-raw-denoise",
                "--demosaic", "net:tiny-demosaic", "--sidecar", "-q")
    assert r.returncode == 0, r.stderr
    side = json.loads((tmp_path / "out" / "a.jpg.ispcli.json").read_text())
    assert side["recipe"]["denoise"] == "tiny-raw-denoise" and side["recipe"]["demosaic"] == "net:tiny-demosaic"
    assert side["analysis"]["noise"]["source"] == "ISO 6400"


@pytest.mark.parametrize("args,message", [
    (["--denoise", "nosuch"], "unknown model 'nosuch'"),
    (["--denoise", "tiny-denoise"], "is a denoise model, not a raw-denoise model"),
    (["--demosaic", "net:tiny-raw-denoise"], "not a demosaic model"),
])
def test_develop_refuses_bad_models_before_the_batch(tiny_weights, tmp_path, args, message):
    src = tmp_path / "in"
    src.mkdir()
    synthetic_raw_file(src / "a.dng", natural_image(64, 64))
    r = run_cli("develop", str(src), "-o", str(tmp_path / "out"), *args)
    assert r.returncode == 2 and message in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_develop_refuses_a_corrupt_weight_file(tiny_weights, tmp_path):
    f = tiny_weights / "tiny-raw-denoise.pt"
    data = bytearray(f.read_bytes())
    data[-10] ^= 0xFF
    f.write_bytes(bytes(data))
    src = tmp_path / "in"
    src.mkdir()
    synthetic_raw_file(src / "a.dng", natural_image(64, 64))
    r = run_cli("develop", str(src), "-o", str(tmp_path / "out"), "--denoise", "tiny-raw-denoise")
    assert r.returncode == 2 and "sha256" in r.stderr


def test_compiled_stages_give_the_eager_result(tiny_weights, tmp_path):
    """--compile changes speed only: torch.compile of a model (dynamic shapes) gives what the
    eager model gives, on the main tile shape and on edge tiles'. Run as a user runs it, in a
    fresh process (inside pytest, another test's stdlib distutils import trips the compiler's
    setuptools)."""
    from PIL import Image

    from ispcli.io.images import read_image

    src = tmp_path / "in"
    src.mkdir()
    Image.fromarray((natural_image(200, 168, seed=4) * 255).round().astype(np.uint8)).save(src / "a.png")
    outs, caches = {}, {}
    for flag in ("--no-compile", "--compile"):
        caches[flag] = tmp_path / f"inductor{flag}"
        r = run_cli("deblur", str(src), "-o", str(tmp_path / flag), "--model", "tiny-deblur", "--tile", "128",
                    "--bits", "16", flag, env={"TORCHINDUCTOR_CACHE_DIR": str(caches[flag])})
        assert r.returncode == 0, r.stderr
        outs[flag] = read_image(tmp_path / flag / "a.png")[0].astype(np.int32)
    assert any(caches["--compile"].rglob("*")) and not caches["--no-compile"].exists()   # it did compile
    assert np.abs(outs["--compile"] - outs["--no-compile"]).max() <= 1   # 16-bit steps


def test_stages_after_the_last_network_work_on_little_more_than_the_tile(tiny_weights):
    # the classical stages behind a raw denoiser must not pay for the network's wide halo
    raw = fake_raw(cfa=BAYER["RGGB"])
    raw.exif.iso = 3200
    recipe = Recipe(denoise="tiny-raw-denoise", look="neutral")
    pipe = develop.build_pipeline(raw, recipe, develop.analyse(raw, recipe), float_output=True, device=CPU)
    seen = {}

    def spy(stage):
        def fn(x):
            seen[stage.name] = tuple(x.shape[-2:])
            return stage.fn(x)
        return dataclasses.replace(stage, fn=fn)

    spied = Pipeline([spy(s) for s in pipe.stages])
    halo, later = pipe.halo, sum(s.halo for s in pipe.stages[3:])
    x = torch.rand(1, 1, 64 + 2 * halo, 64 + 2 * halo)
    with torch.inference_mode():
        out, (top, left) = spied.apply(x, (halo,) * 4, align=2)
        expected = pipe(x)[..., halo:halo + 64, halo:halo + 64]
    assert seen["raw_denoise"] == (64 + 2 * halo,) * 2
    assert max(seen["demosaic"]) <= 64 + 2 * (later + 2)                 # cropped to what is left
    assert torch.equal(out[..., top:top + 64, left:left + 64], expected)
