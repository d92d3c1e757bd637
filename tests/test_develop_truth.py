"""Synthetic raws whose truth is known: develop --look neutral must give the scene back."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import natural_image, psnr_after_gain, synthetic_raw_file
from typer.testing import CliRunner

from ispcli.cli.app import app
from ispcli.io.images import read_image


@pytest.mark.parametrize("cfa,camera", [("RGGB", "Canon EOS 30D"), ("BGGR", "Sony ILCE-7RM3"),
                                        ("GRBG", "Fujifilm X-H1"), ("GBRG", "Canon EOS D30")])
def test_neutral_develop_recovers_the_scene(tmp_path, cfa, camera):
    truth = natural_image(192, 256, seed=1)
    synthetic_raw_file(tmp_path / "s.dng", truth, cfa=cfa, camera=camera)
    res = CliRunner().invoke(app, ["develop", str(tmp_path / "s.dng"), "-o", str(tmp_path), "--look", "neutral",
                                   "-f", "png", "--bits", "16"])
    assert res.exit_code == 0, res.output
    out = read_image(tmp_path / "s.png")[0].astype(np.float64) / 65535
    assert psnr_after_gain(out, truth) > 33.0
    # a wrong CFA order or matrix shows as a colour cast: the mean colour must match too
    assert np.abs(out.mean((0, 1)) / out.mean() - truth.mean((0, 1)) / truth.mean()).max() < 0.03


def test_linear_dng_recovers_the_scene(tmp_path):
    truth = natural_image(96, 128, seed=2)
    synthetic_raw_file(tmp_path / "lin.dng", truth, linear=True, camera="Sony ILCE-7RM3")
    res = CliRunner().invoke(app, ["develop", str(tmp_path / "lin.dng"), "-o", str(tmp_path), "--look", "neutral",
                                   "-f", "tif", "--bits", "16"])
    assert res.exit_code == 0, res.output
    out = read_image(tmp_path / "lin.tif")[0].astype(np.float64) / 65535
    assert psnr_after_gain(out, truth) > 45.0


def test_blown_highlights_come_out_neutral_not_magenta(tmp_path):
    truth = natural_image(96, 128, seed=3)
    synthetic_raw_file(tmp_path / "hot.dng", truth, peak=4.0)  # way over the sensor's ceiling
    for mode in ("clip", "blend", "reconstruct"):
        res = CliRunner().invoke(app, ["develop", str(tmp_path / "hot.dng"), "-o", str(tmp_path / mode),
                                       "--highlights", mode, "-f", "png"])
        assert res.exit_code == 0, res.output
        out = read_image(tmp_path / mode / "hot.png")[0].astype(np.float64)
        bright = out.mean(-1) > 250
        assert bright.sum() > 100
        r, g, b = (out[bright][:, c].mean() for c in range(3))
        assert g >= min(r, b) - 2.0, (mode, r, g, b)  # magenta = green well below red and blue


def test_white_balance_modes(tmp_path):
    """camera (as shot) and daylight agree for a D65 scene; auto is near them; R,G,B is obeyed."""
    img = natural_image(96, 128, seed=5)
    truth = np.repeat(img.mean(-1, keepdims=True), 3, -1)  # a grey world: grey world's premise
    synthetic_raw_file(tmp_path / "wb.dng", truth)
    means = {}
    for wb in ("camera", "daylight", "auto", "4,1,1"):
        out = tmp_path / wb.replace(",", "_")
        res = CliRunner().invoke(app, ["develop", str(tmp_path / "wb.dng"), "-o", str(out), "--wb", wb,
                                       "--look", "neutral", "-f", "png", "--bits", "16"])
        assert res.exit_code == 0, res.output
        img = read_image(out / "wb.png")[0].astype(np.float64)
        means[wb] = img.mean((0, 1)) / img.mean()
    np.testing.assert_allclose(means["camera"], [1, 1, 1], atol=0.01)
    np.testing.assert_allclose(means["camera"], means["daylight"], atol=0.01)
    np.testing.assert_allclose(means["camera"], means["auto"], atol=0.05)
    assert means["4,1,1"][0] > 1.3 * means["camera"][0]


def test_exposure_and_auto_exposure(tmp_path):
    truth = natural_image(96, 128, seed=6)
    synthetic_raw_file(tmp_path / "dark.dng", truth, peak=0.05)  # four stops under
    levels = {}
    for args in ([], ["--exposure", "2"], ["--auto-exposure"]):
        out = tmp_path / ("_".join(args) or "plain")
        res = CliRunner().invoke(app, ["develop", str(tmp_path / "dark.dng"), "-o", str(out), "--look", "neutral",
                                       "-f", "png", "--bits", "16", *args])
        assert res.exit_code == 0, res.output
        levels[tuple(args)] = read_image(out / "dark.png")[0].astype(np.float64).mean() / 65535
    assert levels[("--exposure", "2")] > 1.8 * levels[()]  # +2 EV in linear is ×4, ×~1.9 after sRGB
    assert 0.3 < levels[("--auto-exposure",)] < 0.6  # log-average brought to middle grey
