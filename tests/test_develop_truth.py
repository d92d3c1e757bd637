"""Synthetic raws whose truth is known: develop --look neutral must give the scene back."""

from __future__ import annotations

import numpy as np
import pytest
from typer.testing import CliRunner

from conftest import natural_image, psnr_after_gain, synthetic_raw_file
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
