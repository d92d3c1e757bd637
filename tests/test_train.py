"""`ispcli train`: a run writes weights + manifest, resumes exactly, refuses bad data."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
from PIL import Image

from tests.conftest import natural_image, run_cli

TINY = ["--channels", "8,16", "--blocks", "1", "--patch", "32", "--batch", "2", "--threads", "1", "-q"]


@pytest.fixture
def folder(tmp_path):
    d = tmp_path / "clean"
    d.mkdir()
    for i in range(4):
        img = natural_image(64, 80, seed=i)
        Image.fromarray((img * 255).round().astype(np.uint8)).save(d / f"{i}.png")
    return d


def _train(tmp_path, folder, *args, name="m", run="run"):
    return run_cli("train", *args, "--data", str(folder), "--out", name, "--run-dir", str(tmp_path / run),
                   "--weights-dir", str(tmp_path / "w"), *TINY, cwd=tmp_path)


@pytest.mark.parametrize("task", ["denoise", "demosaic", "raw-denoise", "dehaze", "deblur", "enhance"])
def test_a_run_writes_weights_the_registry_loads(tmp_path, folder, task):
    r = _train(tmp_path, folder, task, "--steps", "3", "--val-every", "3")
    assert r.returncode == 0, r.stderr
    manifest = json.loads((tmp_path / "w" / "manifest.json").read_text())
    (entry,) = manifest["models"]
    assert entry["task"] == task and entry["training"]["steps"] == 3 and entry["parameters"] > 0
    assert entry["training"]["command"].startswith(f"ispcli train {task}")
    from ispcli.models import registry

    model = registry.load("m", task=task, weights_dir=tmp_path / "w")
    assert model.receptive_field > 0
    log = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert log[-1]["step"] == 3 and log[-1]["val_psnr"] is not None


def test_killed_run_resumes_from_its_checkpoint_and_matches(tmp_path, folder):
    steps = ["--steps", "40", "--checkpoint-every", "4"]
    full = _train(tmp_path, folder, "denoise", *steps, name="full", run="full")
    assert full.returncode == 0, full.stderr
    # the same run, killed (SIGKILL: no cleanup) as soon as it has written a checkpoint
    proc = subprocess.Popen([sys.executable, "-m", "ispcli", "train", "denoise", "--data", str(folder),
                             "--out", "part", "--run-dir", str(tmp_path / "part"), "--weights-dir",
                             str(tmp_path / "w"), *steps, *TINY], cwd=tmp_path,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ckpt = tmp_path / "part" / "checkpoint.pt"
    deadline = time.time() + 120
    while not ckpt.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.01)
    proc.kill()
    proc.wait()
    step = torch.load(ckpt, weights_only=True)["step"]     # loads: never half-written
    assert step % 4 == 0 and step >= 4
    resumed = run_cli("train", "denoise", "--data", str(folder), "--out", "part", "--run-dir",
                      str(tmp_path / "part"), "--weights-dir", str(tmp_path / "w"), "--resume", "-q",
                      "--threads", "1", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    a = torch.load(tmp_path / "full" / "checkpoint.pt", weights_only=True)
    b = torch.load(ckpt, weights_only=True)
    assert a["step"] == b["step"] == 40
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])  # bit-identical
    log = [json.loads(line)["step"] for line in (tmp_path / "part" / "log.jsonl").read_text().splitlines()]
    assert log[-1] == 40


def test_bad_training_inputs_get_one_line(tmp_path, folder):
    empty = tmp_path / "empty"
    empty.mkdir()
    r = _train(tmp_path, empty, "denoise", "--steps", "2")
    assert r.returncode == 2 and "no images" in r.stderr and "Traceback" not in r.stderr
    r = run_cli("train", "denoise", "--data", str(folder), "--out", "x", "--batch", "9", "--steps", "2",
                "--run-dir", str(tmp_path / "r9"), "--weights-dir", str(tmp_path / "w"), "-q", cwd=tmp_path)
    assert r.returncode == 2 and "need at least 9" in r.stderr
    r = run_cli("train", "sharpen", "--data", str(folder), "--out", "x", cwd=tmp_path)
    assert r.returncode == 2 and "unknown task" in r.stderr
    r = run_cli("train", "denoise", "--data", str(folder), "--out", "x", "--patch", "50", cwd=tmp_path)
    assert r.returncode == 2 and "--patch" in r.stderr
    r = run_cli("train", "denoise", "--data", str(folder), "--out", "x", "--resume",
                "--run-dir", str(tmp_path / "none"), cwd=tmp_path)
    assert r.returncode == 2 and "no checkpoint" in r.stderr
    assert not (tmp_path / "w").exists()


def test_ddp_two_processes_equal_one_process_with_the_global_batch(tmp_path, folder):
    """torchrun with 2 CPU processes (gloo) of --batch 2 trains the same weights as one process
    of --batch 4: each process draws the global batch and trains on its half."""
    pytest.importorskip("torch.distributed")
    steps = ["--steps", "4", "--val-every", "4", "--lr", "0.5"]  # warm-up: steps of 2.5e-3 to 1e-2
    one = run_cli("train", "denoise", "--data", str(folder), "--out", "one", "--run-dir", str(tmp_path / "one"),
                  "--weights-dir", str(tmp_path / "w"), *steps, *TINY, "--batch", "4", cwd=tmp_path)
    assert one.returncode == 0, one.stderr
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29517",
           "-m", "ispcli", "train", "denoise", "--data", str(folder), "--out", "ddp", "--run-dir",
           str(tmp_path / "ddp"), "--weights-dir", str(tmp_path / "w"), "--device", "cpu", *steps, *TINY]
    r = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=300,
                       env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert r.returncode == 0, r.stderr[-2000:]
    entries = {e["name"]: e for e in json.loads((tmp_path / "w" / "manifest.json").read_text())["models"]}
    assert entries["ddp"]["training"]["processes"] == 2 and entries["ddp"]["training"]["batch"] == 4
    a = torch.load(tmp_path / "one" / "checkpoint.pt", weights_only=True)["model"]
    b = torch.load(tmp_path / "ddp" / "checkpoint.pt", weights_only=True)["model"]
    from ispcli.models import registry

    torch.manual_seed(0)                                              # the runs' --seed: their start
    start = registry.build("unet", **entries["one"]["args"]).state_dict()
    assert max(float((start[k] - a[k]).abs().max()) for k in a) > 1e-3   # training moved the weights
    for k in a:
        torch.testing.assert_close(b[k], a[k], rtol=1e-4, atol=1e-5)


def test_init_starts_from_an_installed_model(tmp_path, folder):
    assert _train(tmp_path, folder, "denoise", "--steps", "3", name="base", run="base").returncode == 0
    r = _train(tmp_path, folder, "denoise", "--steps", "1", "--lr", "1e-12", "--init", "base", name="tuned",
               run="tuned")
    assert r.returncode == 0, r.stderr
    from ispcli.models import registry

    base = registry.load("base", weights_dir=tmp_path / "w").state_dict()
    tuned = registry.load("tuned", weights_dir=tmp_path / "w")
    assert all(torch.allclose(base[k], v, atol=1e-6) for k, v in tuned.state_dict().items())
    assert tuned.entry.training["initialised_from"].startswith("base (sha256")
    other = run_cli("train", "denoise", "--data", str(folder), "--out", "x", "--init", "base", "--channels", "8,16,32",
                    "--run-dir", str(tmp_path / "x"), "--weights-dir", str(tmp_path / "w"), "--steps", "1", "-q",
                    "--patch", "32", "--batch", "2",
                    cwd=tmp_path)
    assert other.returncode == 2 and "architecture arguments" in other.stderr


def test_refine_with_init_grows_an_installed_model(tmp_path, folder):
    assert _train(tmp_path, folder, "denoise", "--steps", "3", name="base", run="base").returncode == 0
    r = _train(tmp_path, folder, "denoise", "--steps", "2", "--init", "base", "--arch-arg", "refine=8", name="grown",
               run="grown")
    assert r.returncode == 0, r.stderr
    from ispcli.models import registry

    base = registry.load("base", weights_dir=tmp_path / "w")
    grown = registry.load("grown", weights_dir=tmp_path / "w")
    assert grown.entry.args == {**base.entry.args, "refine": 8}
    assert grown.entry.training["initialised_from"].startswith("base (sha256")
    assert grown.refine is not None and grown.receptive_field > base.receptive_field
    again = _train(tmp_path, folder, "denoise", "--steps", "1", "--init", "grown", name="again", run="again")
    assert again.returncode == 0, again.stderr                      # fine-tuning keeps what it starts from
    assert registry.load("again", weights_dir=tmp_path / "w").entry.args == grown.entry.args
    bad = _train(tmp_path, folder, "denoise", "--steps", "1", "--init", "grown", "--arch-arg", "refine=0",
                 name="y", run="y")
    assert bad.returncode == 2 and "architecture arguments" in bad.stderr     # no shrinking back


def test_a_part_trains_alone_and_the_rest_of_the_model_stays(tmp_path, folder):
    assert _train(tmp_path, folder, "enhance", "--steps", "2", name="base", run="base").returncode == 0
    r = _train(tmp_path, folder, "enhance", "--steps", "4", "--init", "base", "--part", "global", "--lr", "1e-2",
               name="g", run="g")
    assert r.returncode == 0, r.stderr
    from ispcli.models import registry

    base = registry.load("base", weights_dir=tmp_path / "w").state_dict()
    tuned = registry.load("g", weights_dir=tmp_path / "w")
    assert tuned.entry.training["part"] == "global"
    changed = {k for k, v in tuned.state_dict().items() if not torch.equal(v, base[k])}
    assert changed and all(k.startswith(("features.", "head.")) for k in changed)
    assert any(k.startswith("head.") for k in changed)
    no_init = _train(tmp_path, folder, "enhance", "--steps", "1", "--part", "global", name="x", run="x")
    assert no_init.returncode == 2 and "--part global: give --init" in no_init.stderr
    wrong = _train(tmp_path, folder, "denoise", "--steps", "1", name="d", run="d")
    assert wrong.returncode == 0
    bad = _train(tmp_path, folder, "denoise", "--steps", "1", "--init", "d", "--part", "global", name="y", run="y")
    assert bad.returncode == 2 and "no parts to train alone" in bad.stderr


def test_a_dehazer_grows_position_then_an_airlight_branch_trained_alone(tmp_path, folder):
    from ispcli.models import registry

    assert _train(tmp_path, folder, "dehaze", "--steps", "2", name="base", run="base").returncode == 0
    pos = _train(tmp_path, folder, "dehaze", "--steps", "2", "--init", "base", "--arch-arg", "position=true",
                 name="pos", run="pos")
    assert pos.returncode == 0, pos.stderr
    assert registry.load("pos", weights_dir=tmp_path / "w").position
    r = _train(tmp_path, folder, "dehaze", "--steps", "3", "--init", "pos", "--arch-arg", "position=true",
               "--arch-arg", "airlight_width=8", "--part", "airlight", "--scenes", "1", "--lr", "1e-2",
               name="air", run="air")
    assert r.returncode == 0, r.stderr
    tuned = registry.load("air", weights_dir=tmp_path / "w")
    assert tuned.entry.training["degradation_settings"] == {"airlight_error": 0.0}   # it learns the truth
    before = registry.load("pos", weights_dir=tmp_path / "w").state_dict()
    after = tuned.state_dict()
    changed = {k for k, v in after.items() if k not in before or not torch.equal(v, before[k])}
    assert {k for k in changed if k in before} == set()           # the dehazer itself stays as it was
    assert any(not torch.equal(v, torch.zeros_like(v)) for k, v in after.items() if k.startswith("airlight_head.2"))
    plain = _train(tmp_path, folder, "dehaze", "--steps", "1", "--init", "base", "--part", "airlight",
                   name="x", run="x")
    assert plain.returncode == 2 and "--part airlight: this model has none of its parameters" in plain.stderr


def test_a_stopped_run_can_be_finished_where_it_stands(tmp_path, folder):
    # a run stopped early (Ctrl-C, a session's end) becomes weights without training further
    r = _train(tmp_path, folder, "denoise", "--steps", "12", "--checkpoint-every", "4", name="early")
    assert r.returncode == 0, r.stderr
    manifest = tmp_path / "w" / "manifest.json"
    manifest.unlink()
    again = run_cli("train", "denoise", "--data", str(folder), "--out", "early", "--run-dir", str(tmp_path / "run"),
                    "--weights-dir", str(tmp_path / "w"), "--resume", "--steps", "12", "-q", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    (entry,) = json.loads(manifest.read_text())["models"]
    assert entry["name"] == "early" and entry["training"]["steps"] == 12
    shorter = run_cli("train", "denoise", "--data", str(folder), "--out", "early", "--run-dir", str(tmp_path / "run"),
                      "--weights-dir", str(tmp_path / "w"), "--resume", "--steps", "8", "-q", cwd=tmp_path)
    assert shorter.returncode == 2 and "already past it, at step 12" in shorter.stderr


def test_scene_samples_are_whole_photos_shrunk_and_crops_stay_as_they_were():
    from ispcli.train.data import PatchSampler

    ramp = np.linspace(0, 255, 96, dtype=np.float32)
    img = np.stack([np.tile(ramp[None, :], (64, 1))] * 3, axis=2).astype(np.uint8)   # 64 x 96, dark to bright
    scenes = PatchSampler([img], 32, seed=1, scenes=1.0).batch(8)
    for s in scenes:
        # a 64x64 square of the photo at half size: it spans two thirds of the ramp, in some
        # orientation, where a 32-px crop would span a third
        spread = float(s.amax() - s.amin())
        assert 0.55 < spread < 0.7, spread
    crops = PatchSampler([img], 32, seed=1).batch(8)
    assert all(float(c.amax() - c.amin()) < 0.36 for c in crops)
    mixed = PatchSampler([img], 32, seed=1, scenes=0.5).batch(64)
    wide = sum(float(c.amax() - c.amin()) > 0.5 for c in mixed)
    assert 16 < wide < 48


def test_bad_scenes_fraction_is_refused(tmp_path, folder):
    r = _train(tmp_path, folder, "enhance", "--steps", "1", "--scenes", "1.5")
    assert r.returncode == 2 and "--scenes 1.5" in r.stderr and not (tmp_path / "w").exists()


@pytest.mark.parametrize("arg,expect", [("foo=1", "does not take these arguments"), ("refine", "NAME=VALUE"),
                                        ("refine=abc", "must be a number")])
def test_bad_arch_args_are_one_clear_line(tmp_path, folder, arg, expect):
    r = _train(tmp_path, folder, "denoise", "--steps", "1", "--arch-arg", arg)
    assert r.returncode == 2 and expect in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "w").exists()


def test_noise_range_sets_the_sigma_the_denoiser_trains_on(tmp_path, folder):
    from ispcli.train import degrade

    clean = torch.rand(64, 3, 8, 8)
    x, _ = degrade.denoise_pair(clean, torch.Generator().manual_seed(0), sigma_min=10 / 255, sigma_max=20 / 255)
    sigma = x[:, 3, 0, 0] * 255                                   # the noise-level plane it is told
    assert float(sigma.min()) >= 10 and float(sigma.max()) <= 20 and float(sigma.max() - sigma.min()) > 5
    noise = (x[:, :3] - clean).flatten(1).std(1) * 255
    assert float((noise - sigma).abs().max()) < 6                 # and the noise it gets
    r = _train(tmp_path, folder, "denoise", "--steps", "2", "--noise-range", "5,30")
    assert r.returncode == 0, r.stderr
    (entry,) = json.loads((tmp_path / "w" / "manifest.json").read_text())["models"]
    assert entry["training"]["degradation_settings"] == {"sigma_min": 5 / 255, "sigma_max": 30 / 255}


@pytest.mark.parametrize("task,value,expect", [("denoise", "30,5", "0 <= LO < HI <= 255"),
                                               ("denoise", "a,b", "expected LO,HI"),
                                               ("deblur", "0,50", "only for the denoise task")])
def test_bad_noise_range_is_refused(tmp_path, folder, task, value, expect):
    r = _train(tmp_path, folder, task, "--steps", "1", "--noise-range", value)
    assert r.returncode == 2 and expect in r.stderr and not (tmp_path / "w").exists()


def test_untouched_sets_how_many_plain_photos_the_enhancer_sees_as_they_are(tmp_path, folder):
    from ispcli.train import degrade

    clean = torch.rand(40, 3, 16, 16)
    batch = torch.cat([clean, clean], dim=1)                       # plain photos: input = target
    for untouched, expect in ((1.0, 40), (0.0, 0)):
        x, target = degrade.enhance_pair(batch, torch.Generator().manual_seed(0), untouched=untouched)
        assert sum(torch.equal(x[i], target[i]) for i in range(40)) == expect
    r = _train(tmp_path, folder, "enhance", "--steps", "2", "--untouched", "0.1")
    assert r.returncode == 0, r.stderr
    (entry,) = json.loads((tmp_path / "w" / "manifest.json").read_text())["models"]
    assert entry["training"]["degradation_settings"] == {"untouched": 0.1}
    for task, value, expect in (("enhance", "1.5", "must be between 0 and 1"),
                                ("denoise", "0.1", "only for the enhance")):
        bad = _train(tmp_path, folder, task, "--steps", "1", "--untouched", value, name="x", run="x")
        assert bad.returncode == 2 and expect in bad.stderr


def test_a_resumed_run_still_says_which_weights_it_started_from(tmp_path, folder):
    assert _train(tmp_path, folder, "denoise", "--steps", "2", name="base", run="base").returncode == 0
    assert _train(tmp_path, folder, "denoise", "--steps", "2", "--init", "base", name="tuned",
                  run="tuned").returncode == 0
    longer = run_cli("train", "denoise", "--out", "tuned", "--run-dir", str(tmp_path / "tuned"), "--resume",
                     "--steps", "3", "--weights-dir", str(tmp_path / "w"), "-q", cwd=tmp_path)
    assert longer.returncode == 0, longer.stderr
    entries = {e["name"]: e for e in json.loads((tmp_path / "w" / "manifest.json").read_text())["models"]}
    assert entries["tuned"]["training"]["steps"] == 3
    assert entries["tuned"]["training"]["initialised_from"].startswith("base (sha256 ")
