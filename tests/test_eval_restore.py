"""`ispcli eval dehaze|deblur|enhance`: fixed-seed degradations, the classical baselines (DCP,
Wiener and Richardson–Lucy with the true kernel, auto-enhance), the held-out pairs, the
table/JSON and the manifest scores.

Images are small crops of scikit-image photos and the models the untrained `tiny_weights`
ones: these tests check the protocols and the machinery, and that the baselines do their job.
"""

from __future__ import annotations

import inspect
import json

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from ispcli.cli.app import app
from ispcli.eval import baselines, benchmark, dataset
from ispcli.isp import autoenhance, dehaze
from ispcli.train import blur, data, haze

CROPS = [("astronaut", 40, 200), ("coffee", 150, 250)]      # (photo, top, left) of 96×128 crops


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    from skimage import data as photos

    folder = tmp_path_factory.mktemp("restore") / "bench"
    folder.mkdir()
    for i, (name, y, x) in enumerate(CROPS):
        Image.fromarray(getattr(photos, name)()[y:y + 96, x:x + 128]).save(folder / f"img{i}_{name}.png")
    return folder


@pytest.fixture(scope="module")
def kernels(tmp_path_factory):
    """Two sets: 'line' (two motion kernels) and 'gauss' (one Gaussian)."""
    folder = tmp_path_factory.mktemp("kernels")
    line = np.zeros((9, 9))
    line[4, 1:8] = 1
    np.save(folder / "line_1.npy", line)
    np.save(folder / "line_2.npy", line.T.copy())
    r = np.arange(7) - 3
    np.save(folder / "gauss_1.npy", np.exp(-(r[:, None] ** 2 + r[None, :] ** 2) / (2 * 1.2 ** 2)))
    (folder / "notes.txt").write_text("not a kernel\n")
    return folder


@pytest.fixture(scope="module")
def pairs(tmp_path_factory):
    """Ten dark/bright pairs with names whose sorted order is not alphabetical (2 < 10)."""
    root = tmp_path_factory.mktemp("pairs")
    low, high = root / "low", root / "high"
    low.mkdir()
    high.mkdir()
    rng = np.random.default_rng(0)
    for i in range(10):
        bright = rng.uniform(0.2, 1.0, (32, 40, 3)).astype(np.float32)
        Image.fromarray((bright * 255).round().astype(np.uint8)).save(high / f"{i * 3}.png")
        Image.fromarray((bright * 0.25 * 255).round().astype(np.uint8)).save(low / f"{i * 3}.png")
    return low, high


def invoke(*args):
    res = CliRunner().invoke(app, ["eval", *map(str, args)])
    return res.exit_code, res.stdout, res.stderr


def eval_json(*args) -> dict:
    code, out, err = invoke(*args, "--json")
    assert code == 0, err
    return json.loads(out)


def results(doc: dict) -> dict[tuple[str, str], dict]:
    return {(r["method"], r["level"]): r for r in doc["results"]}


def clean_tensor(path) -> torch.Tensor:
    return torch.from_numpy(dataset.load_rgb(path)).permute(2, 0, 1)[None]


# ---- dehaze ------------------------------------------------------------------------------------

def test_dehaze_protocol_is_random_hazes_defaults_and_deterministic(images):
    defaults = inspect.signature(haze.random_haze).parameters
    assert benchmark.HAZE_BETA == defaults["beta"].default
    assert benchmark.HAZE_AIRLIGHT == defaults["airlight"].default
    task = benchmark.make_task("dehaze")
    clean = clean_tensor(dataset.find_images(images)[0])
    a, b = (task.degrade(clean, task.levels[0], 0, 1) for _ in range(2))
    c = task.degrade(clean, task.levels[0], 1, 1)
    assert np.array_equal(a.source, b.source) and not np.array_equal(a.source, c.source)
    # every method is given the airlight estimated on the hazy image, not the true one
    estimated = dehaze.image_airlight(torch.from_numpy(a.source).permute(2, 0, 1)[None])[0]
    assert a.extra["airlight"] == pytest.approx(estimated.tolist())
    true = a.extra["true_airlight"]
    assert 0.7 <= true[0] <= 1.0 and true[0] == true[1] == true[2]


def test_dehaze_dcp_beats_the_hazy_input(images, tiny_weights):
    doc = eval_json("dehaze", "--data", images)
    by = results(doc)
    level = "haze β0.5-2 A0.7-1"
    assert set(by) == {(m, level) for m in ("none", "dcp", "tiny-dehaze")}
    assert by[("dcp", level)]["psnr"] > by[("none", level)]["psnr"] + 3
    assert by[("dcp", level)]["ssim"] > by[("none", level)]["ssim"]
    assert by[("tiny-dehaze", level)]["kind"] == "model" and doc["images"] == 2


# ---- deblur ------------------------------------------------------------------------------------

def test_deblur_rows_per_kernel_set_and_an_oracle_grid(images, kernels, no_models):
    doc = eval_json("deblur", "--data", images, "--kernels", kernels, "--limit", "1")
    by = results(doc)
    rows = list(dict.fromkeys(r["level"] for r in doc["results"]))
    assert rows == ["gauss1 blur, 1% noise", "line2 blur, 1% noise", "gauss1+line2 blur, 1% noise"]
    assert doc["protocol"]["kernels"] == {"gauss": ["gauss_1"], "line": ["line_1", "line_2"]}
    for row in rows:
        assert [r["method"] for r in doc["results"] if r["level"] == row] == ["none", "wiener", "rl"]
        # the true kernel's Wiener filter and RL restore what the blur took
        assert by[("wiener", row)]["psnr"] > by[("none", row)]["psnr"] + 1
        assert by[("rl", row)]["psnr"] > by[("none", row)]["psnr"] + 1
        for method, name, grid in (("wiener", "balance", baselines.WIENER_BALANCES),
                                   ("rl", "iterations", baselines.RL_ITERATIONS)):
            r = by[(method, row)]
            assert [g["setting"][name] for g in r["grid"]] == list(grid)
            best = max(r["grid"], key=lambda g: g["psnr"])
            assert r["setting"] == best["setting"] and r["psnr"] == best["psnr"]
    line = by[("none", "line2 blur, 1% noise")]
    assert (line["images"], line["samples"]) == (1, 2)
    assert by[("none", rows[-1])]["samples"] == 3
    # per image: every grid value of every baseline at every kernel
    assert len(doc["per_image"]) == 3 * (1 + len(baselines.WIENER_BALANCES) + len(baselines.RL_ITERATIONS))


def test_deblur_table_names_the_chosen_settings(images, kernels, no_models):
    res = CliRunner().invoke(app, ["eval", "deblur", "--data", str(images), "--kernels", str(kernels), "--limit", "1",
                                   "--kernel-limit", "1", "--model", "none"], env={"COLUMNS": "200"})
    assert res.exit_code == 0, res.stderr
    assert "wiener (balance 0." in res.stdout and "rl (iterations " in res.stdout
    assert "gauss1+line1 blur, 1% noise" in res.stdout and "no deblur models" not in res.stderr


def test_deblur_degradation_is_deterministic_and_noise_is_its_option(images, kernels):
    task = benchmark.make_task("deblur", kernels=kernels, noise=1)
    quiet = benchmark.make_task("deblur", kernels=kernels, noise=0)
    clean = clean_tensor(dataset.find_images(images)[0])
    level = next(lv for lv in task.levels if lv.key == "line_1")
    a, b = task.degrade(clean, level, 0, 0).source, task.degrade(clean, level, 0, 0).source
    blurred = quiet.degrade(clean, level, 0, 0).source
    assert np.array_equal(a, b)
    expected = blur.blur(clean, torch.from_numpy(np.load(kernels / "line_1.npy") / 7).float()[None])
    assert np.allclose(blurred, expected[0].permute(1, 2, 0).numpy(), atol=1e-6)
    assert np.std(a - blurred) == pytest.approx(0.01, rel=0.05)     # unclipped Gaussian noise of 1%
    assert [lv.key for lv in benchmark.make_task("deblur", kernels=kernels, kernel_limit=1).levels] == \
        ["gauss_1", "line_1"]


def test_deconvolutions_are_scikit_images(kernels):
    from skimage.restoration import richardson_lucy, wiener

    rng = np.random.default_rng(1)
    image = rng.uniform(0, 1, (3, 40, 48)).astype(np.float32)
    psf = np.load(kernels / "line_1.npy")
    psf = torch.from_numpy(psf / psf.sum()).float()
    padded, (ys, xs) = baselines.pad_for_deconvolution(image, 9)
    assert padded.shape[1] >= 40 + 18 and np.array_equal(padded[:, ys, xs], image)
    ours = baselines.wiener_deblur(psf, 0.01)(torch.from_numpy(image)[None])[0].numpy()
    theirs = np.stack([wiener(c, psf.double().numpy(), 0.01) for c in padded])[:, ys, xs]
    assert np.abs(ours - theirs).max() < 1e-4
    iterates = baselines.richardson_lucy_iterates(padded, psf.numpy(), (3, 7))
    for n in (3, 7):
        theirs = np.stack([richardson_lucy(c, psf.numpy(), num_iter=n) for c in padded])
        assert np.abs(iterates[n] - theirs).max() < 1e-5
    rl = baselines.RichardsonLucy((3, 7))
    stage = rl.stage(psf, 7)
    x = torch.from_numpy(image)[None]
    assert torch.allclose(stage(x)[0], torch.from_numpy(iterates[7][:, ys, xs]))
    assert torch.equal(rl.stage(psf, 3)(x)[0], torch.from_numpy(iterates[3][:, ys, xs]))   # from the same run


# ---- enhance -----------------------------------------------------------------------------------

def test_enhance_scores_exactly_the_pairs_training_held_out(images, pairs, tiny_weights):
    low, high = pairs
    doc = eval_json("enhance", "--data", images, "--pairs", low, high, "--hold-out", "3")
    held = data.held_out(data.pair_names(low, high), 3)
    assert held == ["0.png", "9.png", "18.png"]                       # the order train uses
    level = "held-out pairs (3)"
    scored = [m["image"] for m in doc["per_image"] if m["level"] == level and m["method"] == "none"]
    assert scored == held
    by = results(doc)
    assert by[("none", level)]["benchmark"] == low.parent.name        # the folder holding low/ and high/
    assert by[("none", level)]["params"]["names"] == held
    # the untouched input is not a method where the input is the target
    assert ("none", "unchanged (PSNR to input)") not in by
    assert {m for m, lv in by if lv == "unchanged (PSNR to input)"} == {"auto", "tiny-enhance"}
    # auto levels undo a 4× darkening
    assert by[("auto", level)]["psnr"] > by[("none", level)]["psnr"] + 5
    assert by[("auto", "unchanged (PSNR to input)")]["psnr"] > 20


def test_enhance_phone_degradation_is_seeded_and_never_a_no_op(images):
    task = benchmark.make_task("enhance")
    clean = clean_tensor(dataset.find_images(images)[0])
    phone, unchanged = task.levels
    for index in range(8):                   # train's identity draw (15%) would hit one of these
        a = task.degrade(clean, phone, 0, index).source
        assert np.array_equal(a, task.degrade(clean, phone, 0, index).source)
        assert not np.allclose(a, clean[0].permute(1, 2, 0).numpy(), atol=1 / 255)
    assert np.array_equal(task.degrade(clean, unchanged, 0, 0).source, clean[0].permute(1, 2, 0).numpy())


def test_auto_enhance_is_global_so_tiles_equal_the_whole_image():
    rng = torch.Generator().manual_seed(0)
    image = (torch.rand(1, 3, 64, 80, generator=rng) * 0.3 + torch.tensor([0.1, 0.05, 0.0]).view(1, 3, 1, 1))
    params = autoenhance.analyse(image)
    assert params.shape == (1, len(autoenhance.PARAMS))
    whole = autoenhance.apply(image, params)
    halves = torch.cat([autoenhance.apply(image[..., :30], params), autoenhance.apply(image[..., 30:], params)], -1)
    assert torch.equal(whole, halves)
    gains, black, white, gamma = params[0, :3], params[0, 3], params[0, 4], params[0, 5]
    assert gains[2] > 1 > gains[0]                      # the blue-poor cast is pulled back
    assert black < 0.2 < white < 0.6 and gamma <= 1
    assert whole.amax() > 0.95 and whole.amin() < 0.05  # stretched to the full range


def test_a_model_trained_on_the_held_out_pairs_is_warned_about(images, pairs, tiny_weights):
    from ispcli.models import weights

    entry = weights.entry("tiny-enhance", tiny_weights)
    entry.training["pairs_used"] = ["9.png", "12.png"]
    weights.write_entry(entry, tiny_weights)
    code, out, err = invoke("enhance", "--data", images, "--limit", "1", "--pairs", *pairs, "--hold-out", "3",
                            "--model", "tiny-enhance", "--json")
    assert code == 0
    assert "warning: tiny-enhance was trained on 1 of the held-out pairs scored here (9.png)" in err
    assert json.loads(out)["warnings"][0].startswith("tiny-enhance was trained on 1")


# ---- record, bad input -------------------------------------------------------------------------

def test_record_writes_each_rows_score_key(images, kernels, pairs, tiny_weights):
    from ispcli.models import weights

    doc = eval_json("deblur", "--data", images, "--kernels", kernels, "--limit", "1", "--kernel-limit", "1",
                    "--model", "tiny-deblur", "--record")
    assert doc["recorded"] == ["tiny-deblur: bench gauss1 blur, 1% noise", "tiny-deblur: bench line1 blur, 1% noise",
                               "tiny-deblur: bench gauss1+line1 blur, 1% noise"]
    scores = weights.read_manifest(tiny_weights)["tiny-deblur"].scores
    overall = results(doc)[("tiny-deblur", "gauss1+line1 blur, 1% noise")]
    assert scores["bench gauss1+line1 blur, 1% noise"] == {"psnr": overall["psnr"], "ssim": overall["ssim"],
                                                         "images": 1, "samples": 2, "seed": 0}
    doc = eval_json("enhance", "--data", images, "--limit", "1", "--pairs", *pairs, "--hold-out", "2",
                    "--model", "tiny-enhance", "--record")
    name = pairs[0].parent.name
    assert doc["recorded"] == ["tiny-enhance: bench phone-degraded", "tiny-enhance: bench unchanged (PSNR to input)",
                               f"tiny-enhance: {name} held-out pairs (2)"]
    assert weights.read_manifest(tiny_weights)["tiny-dehaze"].scores == {}


@pytest.fixture
def no_models(tmp_path, monkeypatch):
    monkeypatch.setenv("ISPCLI_WEIGHTS", str(tmp_path / "no-weights"))


@pytest.mark.parametrize("args,message", [
    (["dehaze", "--data", "{images}", "--model", "nope"], "--model nope: unknown model (models for dehaze: tiny-deh"),
    (["deblur", "--data", "{images}", "--model", "tiny-dehaze"], "is a dehaze model, not a deblur model"),
    (["dehaze", "--data", "{empty}"], "no images"),
    (["enhance", "--data", "{images}", "--pairs", "{low}", "{odd}"], "1 file(s) without a partner (extra.png)"),
    (["enhance", "--data", "{images}", "--pairs", "{low}", "{missing}"], "no such folder"),
    (["enhance", "--data", "{images}", "--pairs", "{low}", "{high}", "--hold-out", "10"], "cannot hold out 10 of 10"),
    (["deblur", "--data", "{images}", "--kernels", "{empty}"], "no .npy kernels"),
    (["dehaze", "--data", "{images}", "--kernels", "{empty}"], "--kernels applies to the deblur task"),
    (["deblur", "--data", "{images}", "--pairs", "{low}", "{high}"], "--pairs applies to the enhance task"),
    (["deblur", "--data", "{images}", "--noise", "-1"], "--noise -1"),
    (["deblur", "--data", "{images}", "--kernel-limit", "0"], "--kernel-limit 0"),
])
def test_bad_input_is_one_line_and_exit_2(images, pairs, tiny_weights, tmp_path, args, message):
    (tmp_path / "empty").mkdir()
    odd = tmp_path / "odd"
    odd.mkdir()
    for p in pairs[1].iterdir():
        (odd / p.name).write_bytes(p.read_bytes())
    (odd / "extra.png").write_bytes((pairs[1] / "0.png").read_bytes())
    paths = {"images": images, "empty": tmp_path / "empty", "missing": tmp_path / "missing", "low": pairs[0],
             "high": pairs[1], "odd": odd}
    code, out, err = invoke(*[a.format(**paths) for a in args])
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], err
    assert out == ""


def test_results_name_the_shared_data_without_this_machines_path(tmp_path):
    from ispcli.eval import dataset

    shared = dataset.BENCH / "Kodak24"
    assert dataset.portable(shared) == "../shared/data/bench/Kodak24"
    assert dataset.portable(tmp_path / "mine") == str(tmp_path / "mine")
