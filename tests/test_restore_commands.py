"""`ispcli enhance`, `dehaze`, `deblur` and develop's --enhance/--dehaze/--deblur: tiles equal the
whole frame (whole-image analyses computed once), strength blends, formats and metadata carried,
bad input refused in one line.

The models are the untrained `tiny_weights` ones: these tests check the machinery, not quality.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import tifffile
import torch
from conftest import SAMPLES, make_tiny_model, natural_image, run_cli
from PIL import Image
from typer.testing import CliRunner

from ispcli.cli.app import app
from ispcli.io.images import encode_image, read_image
from ispcli.isp import dehaze
from ispcli.pipeline import develop, image_jobs, learned, runner
from ispcli.pipeline.stage import Domain, Pipeline
from ispcli.recipe import Recipe

CPU = torch.device("cpu")
SHOT = {"Exif.Image.Make": "Canon", "Exif.Image.Model": "Canon EOS 30D", "Exif.Image.Orientation": "6",
        "Exif.Photo.ISOSpeedRatings": "400"}


def invoke(*args):
    """In this process (torch imported once); exit codes and messages as a user sees them."""
    return CliRunner().invoke(app, list(map(str, args)), catch_exceptions=False)


def rows(stdout: str) -> dict[str, dict]:
    return {Path(r["input"]).name: r for r in map(json.loads, stdout.splitlines())}


def hazy(height=96, width=128, seed=0) -> np.ndarray:
    """A photo seen through bright haze (so the airlight and transmission are not trivial)."""
    img = natural_image(height, width, seed=seed)
    t = np.linspace(0.9, 0.4, height, dtype=np.float32)[:, None, None]
    return img * t + np.array([0.85, 0.88, 0.92], np.float32) * (1 - t)


def quantise(img: np.ndarray, dtype) -> np.ndarray:
    return (np.clip(img, 0, 1) * np.iinfo(dtype).max).round().astype(dtype)


def save(path: Path, image: np.ndarray, **kw) -> Path:
    path.write_bytes(encode_image(image, {".png": "png", ".tif": "tif", ".jpg": "jpg"}[path.suffix], **kw))
    return path


def tiled_error(pipe: Pipeline, source: np.ndarray, tile: int) -> float:
    whole = runner.run_whole(pipe, source, CPU)
    out = torch.full_like(whole, float("nan"))

    def sink(t, part):
        out[..., t.y0:t.y1, t.x0:t.x1] = part

    runner.run(pipe, source, sink, device=CPU, tile=tile)
    return float((out - whole).abs().max())


@pytest.fixture
def busy_enhance(tiny_weights) -> str:
    """A tiny enhancer whose global branch is not the identity, so its parameters depend on
    the picture (an untrained one's head starts at zero), with all three heads: its blend with
    auto-enhance too comes from the whole image."""
    from dataclasses import replace

    from ispcli.models import registry, weights

    make_tiny_model(tiny_weights, "tiny-enhance-busy", "enhance")
    entry = weights.entry("tiny-enhance-busy")
    entry = replace(entry, args={**entry.args, "stats_width": 8, "auto_width": 8})
    model = registry.build(entry.arch, **entry.args)
    torch.manual_seed(1)
    for head in (model.head, model.stats_head, model.auto_head):
        torch.nn.init.normal_(head[-1].weight, std=0.3)
    with torch.no_grad():
        model.auto_head[-1].bias[0] = 1.0
    weights.save(model, entry, tiny_weights)
    return "tiny-enhance-busy"


# ---- stages: tiles equal the whole frame ------------------------------------------------------------

def _stage(kind: str, image: torch.Tensor, encoded: bool, enhance: str = "tiny-enhance"):
    airlight = dehaze.image_airlight(image if encoded else learned._srgb_encode(image))[0]
    if kind == "dcp":
        return learned.dcp_stage(airlight, encoded=encoded)
    if kind == "dehaze":
        return learned.dehaze_stage("tiny-dehaze", airlight, device=CPU, encoded=encoded)
    if kind == "deblur":
        return learned.deblur_stage("tiny-deblur", device=CPU, encoded=encoded)
    params = learned.enhance_params(enhance, image, device=CPU)
    return learned.enhance_stage(enhance, params, 0.8, device=CPU)


@pytest.mark.parametrize("kind,encoded", [("dcp", True), ("dcp", False), ("dehaze", True), ("dehaze", False),
                                          ("deblur", True), ("deblur", False), ("enhance", True)])
def test_restore_stages_tiles_equal_whole_frame(tiny_weights, busy_enhance, kind, encoded):
    image = hazy(100, 150)
    if not encoded:  # linear light with highlights above 1, as develop gives it
        image = 1.3 * image ** 2.2
    stage = _stage(kind, torch.from_numpy(image).permute(2, 0, 1)[None], encoded, busy_enhance)
    domain = Domain.display if encoded else Domain.linear
    assert (stage.domain_in, stage.domain_out) == (domain, domain)
    # 78 is not on the networks' 4-pixel grid; DCP's halo (87) is wider than the tiles
    assert tiled_error(Pipeline([stage]), image, tile=78) < 1e-4, kind


def _tiny_positional_dehazer(directory) -> str:
    from ispcli.models import registry, weights

    torch.manual_seed(2)
    args = {"channels": [8, 16], "blocks": 1, "position": True}
    entry = weights.Entry(name="tiny-dehaze-pos", task="dehaze", domain="display", arch="dehaze-net",
                          args=args, file="tiny-dehaze-pos.pt", sha256="", parameters=0,
                          training={"note": "untrained test model"})
    weights.save(registry.build("dehaze-net", **args), entry, directory)
    return entry.name


@pytest.mark.parametrize("encoded", [True, False])
def test_a_positional_dehazer_sees_frame_coordinates_whatever_the_tiles(tiny_weights, encoded):
    image = hazy(100, 150)
    if not encoded:
        image = 1.3 * image ** 2.2
    name = _tiny_positional_dehazer(tiny_weights)
    stage = learned.dehaze_stage(name, [0.8, 0.8, 0.8], device=CPU, encoded=encoded)
    assert stage.positional
    for tile in (78, 64):            # tiles, batches of them, context reflected at the edges
        assert tiled_error(Pipeline([stage]), image, tile=tile) < 1e-4
    # the same pixels lower in the frame come out differently: position is what it reads
    top = runner.run_whole(Pipeline([stage]), image[:60], CPU)
    lower = runner.run_whole(Pipeline([stage]), image, CPU)[..., :60, :]
    assert (top[..., 10:50, 10:-10] - lower[..., 10:50, 10:-10]).abs().max() > 1e-3


def test_linear_stages_run_the_network_between_the_srgb_curves(tiny_weights):
    image = hazy(64, 64)
    lin = learned._srgb_decode(torch.from_numpy(image).permute(2, 0, 1)[None])
    for make in (lambda e: learned.deblur_stage("tiny-deblur", device=CPU, encoded=e),
                 lambda e: learned.dcp_stage([0.8, 0.85, 0.9], encoded=e)):
        on_srgb = make(True)(torch.from_numpy(image).permute(2, 0, 1)[None])
        on_linear = make(False)(lin)
        assert torch.allclose(learned._srgb_encode(on_linear), on_srgb, atol=1e-5)


def test_enhance_params_come_from_the_whole_image(busy_enhance):
    from ispcli.models import registry

    image = torch.from_numpy(hazy(120, 160)).permute(2, 0, 1)[None]
    params = learned.enhance_params(busy_enhance, image, device=CPU)
    assert params.shape == (1, 12 + 3 * 16 + 7 + 1)        # curves, then auto-enhance and its weight
    crop = learned.enhance_params(busy_enhance, image[..., :60, :80], device=CPU)
    assert (params - crop).abs().max() > 1e-3          # a tile's own params would differ
    # with the whole image's params, the stage is the network itself (away from the edges,
    # where the stage reflects and the bare network zero-pads)
    model = registry.load(busy_enhance)
    with torch.inference_mode():
        direct = model(image)
        staged = learned.enhance_stage(busy_enhance, params, 1.0, device=CPU)(image)
    assert torch.allclose(staged[..., 20:-20, 20:-20], direct[..., 20:-20, 20:-20], atol=1e-5)
    with pytest.raises(ValueError, match="params"):
        learned.enhance_stage(busy_enhance, None, 1.0, device=CPU)


def test_enhance_strength_blends_with_the_input(busy_enhance):
    image = torch.from_numpy(hazy(64, 80)).permute(2, 0, 1)[None]
    params = learned.enhance_params(busy_enhance, image, device=CPU)
    out = {s: learned.enhance_stage(busy_enhance, params, s, device=CPU)(image) for s in (0.0, 0.4, 1.0)}
    assert torch.equal(out[0.0], image)
    assert (out[1.0] - image).abs().max() > 1e-3
    assert torch.allclose(out[0.4], image + 0.4 * (out[1.0] - image), atol=1e-6)


@pytest.mark.parametrize("dtype,scale", [(np.uint16, 1 / 65535), (np.float32, 1.0)])
def test_the_analysis_copy_is_the_whole_images_copy_computed_in_bands(dtype, scale):
    rng = np.random.default_rng(0)
    image = rng.random((1100, 700, 3), dtype=np.float32)
    if dtype == np.uint16:
        image = quantise(image, np.uint16)
    streamed = image_jobs.analysis_copy(image, scale)
    whole = dehaze.analysis_copy(torch.from_numpy(image.astype(np.float32) * np.float32(scale)).permute(2, 0, 1)[None])
    assert streamed.shape == whole.shape == (1, 3, 367, 234)
    assert torch.allclose(streamed, whole, atol=1e-6)


# ---- the commands ---------------------------------------------------------------------------------

def _tiny_dehazer_with_airlight_branch(directory) -> str:
    """A tiny dehazer whose airlight branch gives a correction that is not the identity."""
    from ispcli.models import registry, weights

    torch.manual_seed(1)
    args = {"channels": [8, 16], "blocks": 1, "airlight_width": 8}
    model = registry.build("dehaze-net", **args)
    torch.nn.init.normal_(model.airlight_head[-1].weight, std=0.3)
    entry = weights.Entry(name="tiny-dehaze-global", task="dehaze", domain="display", arch="dehaze-net",
                          args=args, file="tiny-dehaze-global.pt", sha256="", parameters=0,
                          training={"note": "untrained test model"})
    weights.save(model, entry, directory)
    return entry.name


@pytest.mark.parametrize("model", ["dcp", "tiny-dehaze", "global"])
def test_dehaze_estimates_the_airlight_once_per_image_whatever_the_tiles(tiny_weights, tmp_path, monkeypatch,
                                                                         model):
    if model == "global":
        model = _tiny_dehazer_with_airlight_branch(tiny_weights)
    calls = []
    real = dehaze.image_airlight
    monkeypatch.setattr(dehaze, "image_airlight", lambda x: calls.append(x.shape) or real(x))
    src = save(tmp_path / "h.png", quantise(hazy(100, 150), np.uint16))
    for tile in ("64", "0"):
        res = invoke("dehaze", src, "-o", tmp_path / tile, "--tile", tile, "--model", model, "-j", "1")
        assert res.exit_code == 0, res.output
    assert len(calls) == 2                                 # once per run, not once per tile
    assert (tmp_path / "64" / "h.png").read_bytes() == (tmp_path / "0" / "h.png").read_bytes()
    out = read_image(tmp_path / "0" / "h.png")[0].astype(np.float64)
    if model == "dcp":  # the haze is gone: more contrast than the input
        assert out.std() > read_image(src)[0].astype(np.float64).std() * 1.1


@pytest.mark.parametrize("command,model,verb", [("enhance", "tiny-enhance", "enhanced"),
                                                ("dehaze", "tiny-dehaze", "dehazed"),
                                                ("deblur", "tiny-deblur", "deblurred")])
def test_each_command_end_to_end(tiny_weights, tmp_path, command, model, verb):
    from ispcli.io.icc import icc_profile

    p3 = icc_profile("display-p3")
    src = tmp_path / "in"
    src.mkdir()
    img = hazy(64, 96)
    save(src / "a.png", quantise(img, np.uint8), icc=p3, exif=SHOT)
    save(src / "b.tif", quantise(img, np.uint16), icc=p3, exif=SHOT)
    Image.fromarray(quantise(img, np.uint8)[..., 0]).save(src / "grey.png")
    proc = run_cli(command, str(src), "-o", str(tmp_path / "out"), "--model", model, "--json", "-j", "1")
    assert proc.returncode == 1, proc.stderr        # the greyscale file failed, the rest did not
    got = rows(proc.stdout)
    assert got["a.png"]["status"] == got["b.tif"]["status"] == verb
    assert got["grey.png"]["status"] == "failed"
    assert f"is greyscale; {command} takes RGB images" in got["grey.png"]["error"]
    assert f"2 {verb}, 0 skipped, 1 failed" in proc.stderr
    assert "Traceback" not in proc.stderr
    out = tmp_path / "out"
    assert sorted(p.name for p in out.iterdir()) == ["a.png", "b.tif"]
    assert read_image(out / "a.png")[0].dtype == np.uint8
    assert tifffile.imread(out / "b.tif").dtype == np.uint16
    import pyexiv2

    for name in ("a.png", "b.tif"):
        assert read_image(out / name)[1]["icc"] == p3, name
        with pyexiv2.Image(str(out / name)) as f:
            tags = f.read_exif()
        assert all(tags.get(k) == v for k, v in SHOT.items()), name
        assert tags["Exif.Image.Software"].startswith("ispcli")


def test_enhance_strength_zero_gives_back_the_input_and_stdin_works(busy_enhance, tmp_path):
    src = save(tmp_path / "s.png", quantise(hazy(), np.uint16))
    res = invoke("enhance", src, "-o", tmp_path / "zero", "--model", busy_enhance, "--strength", "0")
    assert res.exit_code == 0, res.output
    assert np.array_equal(read_image(tmp_path / "zero" / "s.png")[0], read_image(src)[0])
    res = CliRunner().invoke(app, ["enhance", "-", "-o", str(tmp_path / "full"), "--model", busy_enhance, "--json"],
                             input=f"{src}\n", catch_exceptions=False)
    assert res.exit_code == 0 and json.loads(res.stdout)["status"] == "enhanced"
    assert not np.array_equal(read_image(tmp_path / "full" / "s.png")[0], read_image(src)[0])
    again = invoke("enhance", src, "-o", tmp_path / "full", "--model", busy_enhance, "--json")
    assert json.loads(again.stdout)["status"] == "skipped"


@pytest.mark.parametrize("args,message", [
    (["enhance", "--model", "nope"], ("--model nope: unknown model 'nope' (known: tiny-deblur, tiny-dehaze, "
                                      "tiny-demosaic, tiny-denoise, tiny-enhance, tiny-raw-denoise)")),
    (["dehaze", "--model", "nope"], "--model also takes dcp"),
    (["dehaze", "--model", "tiny-denoise"], ("is a denoise model, not a dehaze model (models for dehaze: "
                                             "tiny-dehaze)")),
    (["deblur", "--model", "tiny-enhance"], "not a deblur model"),
    (["enhance", "--model", "tiny-raw-denoise"], "not an enhance model"),
    (["enhance", "--strength", "2"], "--strength 2: expected 0..1"),
    (["enhance", "--strength", "-0.5"], "--strength -0.5: expected 0..1"),
    (["dehaze", "--bits", "12"], "--bits 12"),
])
def test_bad_models_and_options_are_one_line_usage_errors(tiny_weights, tmp_path, args, message):
    src = save(tmp_path / "x.png", quantise(hazy(), np.uint8))
    res = invoke(args[0], src, "-o", tmp_path / "out", *args[1:])
    assert res.exit_code == 2, res.output
    assert message in res.output and len(res.output.strip().splitlines()) == 1, res.output
    assert not (tmp_path / "out").exists()


def test_without_installed_models_deblur_refuses_and_dehaze_uses_dcp(tmp_path, monkeypatch):
    monkeypatch.setenv("ISPCLI_WEIGHTS", str(tmp_path / "empty"))
    src = save(tmp_path / "x.png", quantise(hazy(), np.uint8))
    res = invoke("deblur", src, "-o", tmp_path / "out")
    assert res.exit_code == 2 and "no deblur model is installed" in res.output
    res = invoke("dehaze", src, "-o", tmp_path / "out", "--json")
    assert res.exit_code == 0 and json.loads(res.stdout)["status"] == "dehazed"


def test_unusable_images_fail_alone(tiny_weights, tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    img = quantise(hazy(), np.uint8)
    Image.fromarray(np.dstack([img, np.full(img.shape[:2], 255, np.uint8)])).save(src / "alpha.png")
    save(src / "small.png", img[:8, :12])
    save(src / "good.png", img)
    res = invoke("enhance", src, "-o", tmp_path / "out", "--model", "tiny-enhance", "--json", "-j", "1")
    assert res.exit_code == 1
    got = rows(res.stdout)
    assert got["good.png"]["status"] == "enhanced"
    assert "has an alpha channel; enhance takes RGB images" in got["alpha.png"]["error"]
    assert "is 12x8 pixels; images must be at least 16x16" in got["small.png"]["error"]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["good.png"]


# ---- develop --------------------------------------------------------------------------------------

def test_develop_places_the_stages_and_tiles_equal_the_whole_frame(tiny_weights):
    from test_pipeline import fake_raw

    raw = fake_raw()
    recipe = Recipe(deblur="tiny-deblur", dehaze="dcp", enhance="tiny-enhance", strength=0.5, look="neutral")
    analysis = develop.analyse(raw, recipe)
    assert len(analysis.airlight) == 3 and len(analysis.enhance) == 60
    pipe = develop.build_pipeline(raw, recipe, analysis, float_output=True, device=CPU)
    names = [s.name for s in pipe.stages]
    assert names[names.index("color"):] == ["color", "deblur", "dehaze", "tone", "enhance"]
    assert [s.domain_in for s in pipe.stages[-3:]] == [Domain.linear, Domain.linear, Domain.display]
    assert tiled_error(pipe, raw.data, tile=100) < 1e-4


def test_develop_analysis_sees_the_image_where_the_stage_runs(tiny_weights):
    """The airlight is estimated on linear light sRGB-encoded (what the dehazer gets), and auto
    exposure, which runs after dehaze, measures the dehazed picture."""
    from test_pipeline import fake_raw

    raw = fake_raw(clipped=False)
    plain = develop.analyse(raw, Recipe(auto_exposure=True))
    hazy_ = develop.analyse(raw, Recipe(auto_exposure=True, dehaze="dcp"))
    assert plain.airlight is None and hazy_.airlight is not None
    assert hazy_.wb_gains == plain.wb_gains and hazy_.exposure_ev != plain.exposure_ev


def test_develop_with_restore_stages_on_the_sample_raw(tiny_weights, tmp_path):
    res = invoke("develop", SAMPLES / "kodak_dc50.kdc", "-o", tmp_path, "--dehaze", "dcp", "--deblur", "tiny-deblur",
                 "--enhance", "tiny-enhance", "--strength", "0.7", "--sidecar", "--json")
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout.splitlines()[-1])["status"] == "developed"
    assert Image.open(tmp_path / "kodak_dc50.jpg").size == (768, 512)
    side = json.loads((tmp_path / "kodak_dc50.jpg.ispcli.json").read_text())
    assert (side["recipe"]["dehaze"], side["recipe"]["deblur"], side["recipe"]["enhance"]) == \
        ("dcp", "tiny-deblur", "tiny-enhance")
    assert side["recipe"]["strength"] == 0.7
    assert len(side["analysis"]["airlight"]) == 3 and len(side["analysis"]["enhance"]) == 60


@pytest.mark.parametrize("args,message", [
    (["--dehaze", "tiny-denoise"], "--dehaze tiny-denoise: model 'tiny-denoise' is a denoise model, not a dehaze"),
    (["--enhance", "nope"], "--enhance nope: unknown model 'nope'"),
    (["--deblur", "tiny-dehaze"], "not a deblur model"),
    (["--strength", "2"], "--strength 2: expected 0..1"),
])
def test_develop_refuses_bad_restore_options(tiny_weights, tmp_path, args, message):
    res = invoke("develop", SAMPLES / "kodak_dc50.kdc", "-o", tmp_path / "out", *args)
    assert res.exit_code == 2 and message in res.output, res.output
    assert not (tmp_path / "out").exists()
