"""The model registry and the shipped weights: names, checked and pickle-free loading,
`ispcli models`, the U-Net's declared receptive field, and weights packaged into the wheel."""

from __future__ import annotations

import builtins
import dataclasses
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import torch
from conftest import REPO, make_tiny_model, run_cli

from ispcli.models import registry, weights
from ispcli.models.registry import ModelError
from ispcli.models.unet import UNet
from ispcli.models.weights import WeightsError

TINY = ["tiny-deblur", "tiny-dehaze", "tiny-demosaic", "tiny-denoise", "tiny-enhance", "tiny-raw-denoise"]


def _flip_a_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


@pytest.fixture
def torch_load_calls(monkeypatch):
    """Every call of torch.load made through the weights code (to prove nothing was unpickled)."""
    calls = []
    real = torch.load

    def spy(*args, **kwargs):
        calls.append(args[0] if args else kwargs.get("f"))
        return real(*args, **kwargs)

    monkeypatch.setattr(torch, "load", spy)
    return calls


# --- registry -----------------------------------------------------------------------------


def test_build_unknown_architecture_names_the_known_ones():
    with pytest.raises(ModelError) as info:
        registry.build("transformer-xl", channels=[8])
    message = str(info.value)
    assert "'transformer-xl'" in message
    assert all(arch in message for arch in registry.ARCHITECTURES) and "unet" in message


def test_build_with_arguments_the_architecture_does_not_take():
    with pytest.raises(ModelError, match="'unet' does not take these arguments"):
        registry.build("unet", widths=[8, 16])


def test_load_unknown_model_lists_the_known_names(tiny_weights):
    with pytest.raises(WeightsError) as info:
        registry.load("denoise-large")
    message = str(info.value)
    assert "'denoise-large'" in message
    assert "known: " + ", ".join(TINY) in message


def test_load_unknown_model_with_no_manifest_says_none_shipped(tmp_path):
    with pytest.raises(WeightsError, match="none shipped"):
        registry.load("denoise-unet", weights_dir=tmp_path)


def test_wrong_task_or_domain_is_refused_with_both_named(tiny_weights, torch_load_calls):
    with pytest.raises(ModelError) as info:
        registry.load("tiny-denoise", task="demosaic")
    message = str(info.value)
    assert "'tiny-denoise' is a denoise model, not a demosaic model" in message
    assert "models for demosaic: tiny-demosaic" in message
    with pytest.raises(ModelError, match="works on display images, this stage needs mosaic"):
        registry.load("tiny-denoise", domain="mosaic")
    assert torch_load_calls == []
    assert registry.load("tiny-denoise", task="denoise", domain="display").entry.name == "tiny-denoise"


# --- weight files ---------------------------------------------------------------------------


def test_changed_bytes_fail_the_sha256_check_and_nothing_is_loaded(tiny_weights, torch_load_calls):
    path = tiny_weights / "tiny-denoise.pt"
    _flip_a_byte(path)
    with pytest.raises(WeightsError) as info:
        registry.load("tiny-denoise")
    message = str(info.value)
    assert "sha256" in message and str(path) in message and "refusing to load" in message
    assert torch_load_calls == []          # the check comes before any unpickling
    with pytest.raises(WeightsError, match="sha256"):
        weights.load_state(weights.entry("tiny-denoise"))
    assert torch_load_calls == []


def test_missing_weight_file_is_a_clear_error(tiny_weights, torch_load_calls):
    (tiny_weights / "tiny-demosaic.pt").unlink()
    with pytest.raises(WeightsError, match="weight file of model 'tiny-demosaic' is missing"):
        registry.load("tiny-demosaic")
    assert torch_load_calls == []


@pytest.mark.parametrize("channels, expect", [
    ([8, 32], r"shape mismatch\(es\) \(downs\.0\.weight is \[16, 8, 2, 2\] in the file, \[32, 8, 2, 2\]"),
    ([8, 16, 32], r"key\(s\) missing from the file \(encoders\.1\.0\.weight"),
    ([8], r"unexpected key\(s\) in the file"),
])
def test_manifest_args_that_do_not_fit_the_file_are_a_clear_error(tiny_weights, channels, expect):
    e = weights.entry("tiny-denoise")
    e.args = {**e.args, "channels": channels}
    weights.write_entry(e)                  # sha256 still right: only the args lie
    with pytest.raises(ModelError, match=expect) as info:
        registry.load("tiny-denoise")
    message = str(info.value)
    assert "tiny-denoise.pt" in message and "do not fit unet" in message and str(channels) in message


class _Payload:
    """Unpickling this runs code: it writes `marker`."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return builtins.exec, (f"open({self.marker!r}, 'w').write('pwned')",)


def test_a_pickle_that_runs_code_is_refused_even_with_the_right_sha256(tiny_weights, tmp_path, torch_load_calls):
    marker = tmp_path / "pwned"
    good = weights.entry("tiny-denoise")
    evil = tiny_weights / "evil.pt"
    state = torch.load(tiny_weights / good.file, weights_only=True)
    torch.save({**state, "head.bias": _Payload(marker)}, evil)
    torch_load_calls.clear()
    weights.write_entry(dataclasses.replace(good, name="evil", file="evil.pt", sha256=weights.sha256(evil)))

    with pytest.raises(WeightsError) as info:
        registry.load("evil")
    assert "not a loadable weight file" in str(info.value) and str(evil) in str(info.value)
    assert torch_load_calls == [evil]      # it got past the sha256 check: the refusal is the loader's
    assert not marker.exists(), "loading the weights executed code from the pickle"

    # The file really is malicious: an unsafe load runs its code.
    torch.load(evil, weights_only=False)
    assert marker.read_text() == "pwned"


def test_a_file_that_is_not_a_state_dict_is_refused(tiny_weights):
    good = weights.entry("tiny-denoise")
    odd = tiny_weights / "odd.pt"
    torch.save([1, 2, 3], odd)
    weights.write_entry(dataclasses.replace(good, name="odd", file="odd.pt", sha256=weights.sha256(odd)))
    with pytest.raises(WeightsError, match="does not hold a state dict of tensors"):
        registry.load("odd")


def test_save_then_load_gives_the_same_network(tmp_path):
    torch.manual_seed(1)
    args = {"in_channels": 4, "out_channels": 3, "channels": [8, 16], "blocks": 1}
    model = registry.build("unet", **args).eval()
    e = weights.Entry(name="round-trip", task="denoise", domain="display", arch="unet", args=args,
                      file="round-trip.pt", sha256="", parameters=0, training={"validation_psnr": 30.0})
    weights.save(model, e, tmp_path)

    manifest = json.loads((tmp_path / "manifest.json").read_text())
    (item,) = manifest["models"]
    assert item["sha256"] == weights.sha256(tmp_path / "round-trip.pt")
    assert item["parameters"] == sum(p.numel() for p in model.parameters())
    assert item["args"] == args and item["training"] == {"validation_psnr": 30.0}
    assert all(v.dtype == torch.float16 for v in torch.load(tmp_path / "round-trip.pt", weights_only=True).values())

    loaded = registry.load("round-trip", task="denoise", weights_dir=tmp_path)
    assert not loaded.training and loaded.entry.sha256 == item["sha256"]
    assert all(p.dtype == torch.float32 for p in loaded.parameters())
    x = torch.rand(2, 4, 40, 48, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        difference = (loaded(x) - model(x)).abs().max().item()
    assert difference < 1e-2


# --- `ispcli models` ------------------------------------------------------------------------


def test_models_lists_the_manifest(tiny_weights):
    e = weights.entry("tiny-denoise")
    e.scores = {"CBSD68 sigma=25": {"psnr": 29.87, "ssim": 0.841}}
    e.training = {**e.training, "validation_psnr": 31.42}
    weights.write_entry(e)
    proc = run_cli("models")
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    for name in TINY:
        assert name in out
    for text in ("denoise", "raw-denoise", "demosaic", "display", "mosaic", "unet",
                 weights.sha256(tiny_weights / "tiny-denoise.pt")[:12], f"{e.parameters:,}",
                 "31.42 dB", "CBSD68 sigma=25: 29.87 dB, ssim 0.841", "KB", "ok"):
        assert text in out, text


def test_models_json_has_every_manifest_field_path_and_ok(tiny_weights):
    proc = run_cli("models", "--json")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["weights_dir"] == str(tiny_weights)
    assert [m["name"] for m in doc["models"]] == TINY
    manifest = {m["name"]: m for m in json.loads((tiny_weights / "manifest.json").read_text())["models"]}
    for m in doc["models"]:
        for field in dataclasses.fields(weights.Entry):
            assert m[field.name] == manifest[m["name"]][field.name], field.name
        assert m["path"] == str(tiny_weights / m["file"])
        assert m["ok"] is True and m["size"] == (tiny_weights / m["file"]).stat().st_size


def test_models_check_names_each_bad_file(tiny_weights):
    proc = run_cli("models", "--check")
    assert proc.returncode == 0, proc.stderr
    assert "all 6 weight files match the manifest" in proc.stdout

    _flip_a_byte(tiny_weights / "tiny-denoise.pt")
    (tiny_weights / "tiny-demosaic.pt").unlink()
    proc = run_cli("models", "--check")
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert any(str(tiny_weights / "tiny-denoise.pt") in line and "sha256" in line for line in lines), proc.stderr
    assert any(str(tiny_weights / "tiny-demosaic.pt") in line and "missing" in line for line in lines), proc.stderr
    assert "tiny-raw-denoise" not in proc.stderr
    assert "2 of 6 weight files failed the check" in proc.stderr

    proc = run_cli("models", "--json", "--check")
    assert proc.returncode == 1
    ok = {m["name"]: m["ok"] for m in json.loads(proc.stdout)["models"]}
    assert ok == {"tiny-demosaic": False, "tiny-denoise": False, "tiny-raw-denoise": True,
                  "tiny-deblur": True, "tiny-dehaze": True, "tiny-enhance": True}

    proc = run_cli("models")                # listing still works and shows the problem
    assert proc.returncode == 0 and "does not match" in proc.stdout and "missing" in proc.stdout


def test_models_with_no_manifest_says_so(tmp_path):
    empty = tmp_path / "nothing-here"
    for args in (["models"], ["models", "--check"]):
        proc = run_cli(*args, env={"ISPCLI_WEIGHTS": str(empty)})
        assert proc.returncode == 0, proc.stderr
        assert f"no models installed (weights folder: {empty})" in proc.stdout
    proc = run_cli("models", "--json", env={"ISPCLI_WEIGHTS": str(empty)})
    assert proc.returncode == 0 and json.loads(proc.stdout)["models"] == []
    assert "no models installed" in proc.stderr


def test_models_with_a_broken_manifest_fails(tmp_path):
    (tmp_path / "manifest.json").write_text('{"models": [{"name": "x"}]}')
    proc = run_cli("models", env={"ISPCLI_WEIGHTS": str(tmp_path)})
    assert proc.returncode == 1 and "broken weights manifest" in proc.stderr


@pytest.mark.parametrize("args", [["models"], ["models", "--json", "--check"]])
def test_models_does_not_import_torch(tiny_weights, args):
    code = ("import sys, runpy\n"
            f"sys.argv = ['ispcli', *{args!r}]\n"
            "try:\n    runpy.run_module('ispcli', run_name='__main__')\n"
            "except SystemExit as exc:\n    print('exit', exc.code)\n"
            "assert 'torch' not in sys.modules, 'ispcli models imported torch'\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={**os.environ, "COLUMNS": "200"})
    assert proc.returncode == 0, proc.stderr
    assert "tiny-raw-denoise" in proc.stdout and proc.stdout.rstrip().endswith("exit 0")


# --- U-Net -----------------------------------------------------------------------------------


def _measured_reach(net: UNet, size: int, points) -> int:
    """The farthest input pixel (Chebyshev distance) whose value changes any channel of an
    output pixel at `points`, from the gradient of that pixel w.r.t. the input."""
    reach = 0
    for y, x in points:
        inp = torch.rand(1, net.in_channels, size, size, requires_grad=True)
        net(inp)[0, :, y, x].sum().backward()
        ys, xs = torch.nonzero(inp.grad.abs().sum((0, 1)), as_tuple=True)
        assert len(ys), "no gradient at all"
        reach = max(reach, int((ys - y).abs().max()), int((xs - x).abs().max()))
    return reach


@pytest.mark.parametrize("config", [
    {"in_channels": 4, "out_channels": 3, "channels": (8, 16), "blocks": 1},
    {"in_channels": 2, "out_channels": 1, "channels": (4, 8, 16), "blocks": 2},
    {"in_channels": 3, "out_channels": 3, "channels": (4, 8), "blocks": 2, "unshuffle": 1},
    {"in_channels": 4, "out_channels": 3, "channels": (8, 16), "blocks": 1, "refine": 8, "refine_blocks": 2},
])
def test_unet_receptive_field_bounds_the_measured_one(config):
    torch.manual_seed(0)
    net = UNet(**config)
    if net.refine is not None:           # its last layer starts at zero: give it weights to measure
        torch.nn.init.normal_(net.refine[-1].weight)
    rf = net.receptive_field
    size = net.multiple * -(-(2 * rf + 24) // net.multiple)   # no output pixel's window reaches a border
    centre = size // 2
    points = [(centre + dy, centre + dx) for dy, dx in ((0, 0), (1, 3), (5, 2), (-3, -7))]
    reach = _measured_reach(net, size, points)
    assert 0 < reach <= rf, (reach, rf)
    assert reach > rf // 2, f"receptive_field {rf} is far looser than the measured {reach}"


@pytest.mark.parametrize("config", [
    {"in_channels": 4, "out_channels": 3, "channels": (8, 16), "blocks": 1},
    {"in_channels": 2, "out_channels": 1, "channels": (8, 16, 32), "blocks": 1},
    {"in_channels": 4, "out_channels": 3},                       # the shipped size
])
@pytest.mark.parametrize("size", [(37, 53), (1, 1), (64, 31)])
def test_unet_output_has_the_input_size(config, size):
    torch.manual_seed(0)
    net = UNet(**config).eval()
    x = torch.rand(1, config["in_channels"], *size)
    with torch.no_grad():
        y = net(x)
    assert y.shape == (1, config["out_channels"], *size)
    assert torch.isfinite(y).all()


def test_a_refined_unet_grown_from_an_unrefined_one_starts_with_its_output():
    torch.manual_seed(0)
    base = UNet(4, 3, (8, 16), 1).eval()
    grown = UNet(4, 3, (8, 16), 1, refine=8).eval()
    grown.grow_from(base.state_dict())
    x = torch.rand(2, 4, 40, 24)
    with torch.no_grad():
        assert torch.equal(grown(x), base(x))
    assert grown.receptive_field == base.receptive_field + grown.refine_blocks + 2
    with pytest.raises(RuntimeError, match="do not fit"):
        UNet(4, 3, (8, 32), 1, refine=8).grow_from(base.state_dict())      # other widths
    with pytest.raises(RuntimeError, match="do not fit"):
        UNet(4, 3, (8, 16), 1).grow_from(grown.state_dict())               # refinement to nowhere


# --- packaging -------------------------------------------------------------------------------


def _wheel_building_possible() -> str | None:
    if importlib.util.find_spec("pip") is None:
        return "pip is not importable in this environment"
    if importlib.util.find_spec("setuptools") is None:
        return "setuptools is not importable (the wheel is built with --no-build-isolation, offline)"
    from importlib.metadata import (
        version,  # not `import setuptools`: it fights torch over distutils
    )

    found = version("setuptools")
    major, minor = (int(p) for p in (found.split(".") + ["0"])[:2])
    if (major, minor) < (70, 1) and importlib.util.find_spec("wheel") is None:
        return f"setuptools {found} needs the 'wheel' package to build wheels"
    return None


@pytest.mark.skipif(_wheel_building_possible() is not None, reason=str(_wheel_building_possible()))
def test_the_wheel_ships_the_weights_folder_as_ispcli_weights(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "setup.py", "README.md", "MANIFEST.in", "LICENSE"):
        if (REPO / name).is_file():
            shutil.copy2(REPO / name, src / name)
    shutil.copytree(REPO / "ispcli", src / "ispcli", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    make_tiny_model(src / "weights", "tiny-denoise", "denoise")
    (src / "weights" / ".manifest.json.lock").write_text("")   # left by write_entry: not shipped

    env = {k: v for k, v in os.environ.items() if k != "ISPCLI_WEIGHTS"}
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", ".", "--no-deps", "--no-build-isolation",
                           "--no-index", "-q", "-w", str(tmp_path / "dist")],
                          cwd=src, capture_output=True, text=True, timeout=600, env={**env, "PIP_NO_INPUT": "1"})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (wheel,) = (tmp_path / "dist").glob("ispcli-*.whl")
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        shipped = sorted(n for n in names if n.startswith("ispcli/_weights/"))
        assert shipped == ["ispcli/_weights/manifest.json", "ispcli/_weights/tiny-denoise.pt"]
        assert "ispcli/models/weights.py" in names and "ispcli/cli/app.py" in names
        assert not any(n.startswith("weights/") for n in names)
        site = tmp_path / "site"
        zf.extractall(site)                  # a pure-Python wheel, installed

    # Installed, the code finds the shipped weights by itself and they pass their sha256 check.
    code = ("from ispcli.models import weights\n"
            "e = weights.entry('tiny-denoise')\n"
            "print(weights.weights_dir()); print(weights.sha256(weights.weights_dir() / e.file) == e.sha256)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path,
                          env={**env, "PYTHONPATH": str(site)})
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == [str(site / "ispcli" / "_weights"), "True"]
