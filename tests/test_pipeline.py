"""The runner: domain checks, order table, and tiled output == whole-frame output."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ispcli.io.raw import RawImage
from ispcli.pipeline import develop, runner
from ispcli.pipeline.jobs import Canvas
from ispcli.pipeline.stage import Domain, Pipeline, PipelineError, Stage
from ispcli.pipeline.tiling import tile_grid
from ispcli.recipe import Recipe

XTRANS = np.array([[1, 1, 0, 1, 1, 2], [1, 1, 2, 1, 1, 0], [2, 0, 1, 0, 2, 1],
                   [1, 1, 2, 1, 1, 0], [1, 1, 0, 1, 1, 2], [0, 2, 1, 2, 0, 1]])
BAYER = {"RGGB": [[0, 1], [1, 2]], "BGGR": [[2, 1], [1, 0]], "GRBG": [[1, 0], [2, 1]], "GBRG": [[1, 2], [0, 1]]}


def fake_raw(kind: str = "bayer", cfa=None, height: int = 150, width: int = 203, seed: int = 0,
             clipped: bool = True) -> RawImage:
    """A RawImage with smooth structure, edges and (optionally) blown highlights."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width] / 40.0
    base = 0.3 + 0.25 * np.sin(yy * 1.3 + xx) * np.cos(xx * 0.7)
    base = base + 0.1 * (rng.random((height, width)) - 0.5)
    base[height // 3: height // 2, width // 4: width // 2] = 1.5 if clipped else 0.9
    white, black = 4095.0, 128.0
    if kind == "linear":
        data = np.stack([base * f for f in (0.6, 1.0, 0.8)], -1)
        cfa_arr, black_arr = None, np.full(3, black)
    else:
        cfa_arr = np.array(cfa if cfa is not None else BAYER["RGGB"])
        p = cfa_arr.shape[0]
        colour = np.tile(cfa_arr, (-(-height // p), -(-width // p)))[:height, :width]
        data = base * np.array([0.5, 1.0, 0.7])[colour]
        black_arr = np.full((p, p), black)
    counts = np.clip(black + data * (white - black), 0, white).astype(np.uint16)
    return RawImage(path="fake", kind=kind, data=counts, cfa=cfa_arr, black=black_arr, white=white,
                    wb_camera=np.array([2.0, 1.0, 1.4]), wb_daylight=None,
                    xyz_to_cam=np.array([[0.6257, -0.0303, -0.1], [-0.788, 1.5621, 0.2396],
                                         [-0.1714, 0.1904, 0.7046]]), matrix_source="test")


def tiled_vs_whole(raw: RawImage, recipe: Recipe, tile: int = 64) -> float:
    analysis = develop.analyse(raw, recipe)
    pipe = develop.build_pipeline(raw, recipe, analysis, float_output=True)
    whole = runner.run_whole(pipe, raw.data, torch.device("cpu"))
    out = torch.zeros_like(whole)

    def sink(t, part):
        out[..., t.y0:t.y1, t.x0:t.x1] = part

    align = raw.cfa.shape[0] if raw.cfa is not None else 1
    runner.run(pipe, raw.data, sink, device=torch.device("cpu"), tile=tile, align=align)
    return float((out - whole).abs().max())


@pytest.mark.parametrize("order", list(BAYER))
@pytest.mark.parametrize("method", ["bilinear", "malvar", "menon", "default"])
def test_tiles_equal_whole_frame_for_every_demosaic_and_order(order, method):
    raw = fake_raw(cfa=BAYER[order])
    assert tiled_vs_whole(raw, Recipe(demosaic=method, look="neutral", highlights="clip")) < 1e-5


@pytest.mark.parametrize("mode", ["clip", "blend", "reconstruct"])
@pytest.mark.parametrize("look", ["neutral", "default"])
def test_tiles_equal_whole_frame_for_highlights_and_looks(mode, look):
    recipe = Recipe(highlights=mode, look=look, auto_exposure=True, wb="auto", color_space="prophoto")
    assert tiled_vs_whole(fake_raw(), recipe, tile=48) < 1e-5


def test_tiles_equal_whole_frame_for_xtrans_and_linear_raws():
    assert tiled_vs_whole(fake_raw(cfa=XTRANS), Recipe(highlights="reconstruct"), tile=60) < 1e-5
    assert tiled_vs_whole(fake_raw(kind="linear"), Recipe(highlights="reconstruct"), tile=50) < 1e-5


def test_tile_grid_covers_frame_once_with_aligned_halo():
    tiles = tile_grid(101, 77, 32, halo=5, align=2)
    cover = np.zeros((101, 77), int)
    for t in tiles:
        cover[t.y0:t.y1, t.x0:t.x1] += 1
        assert t.ry0 % 2 == 0 and t.rx0 % 2 == 0
        assert t.y0 - t.ry0 in (0, 6) and t.x0 - t.rx0 in (0, 6)
    assert (cover == 1).all()


def test_pipeline_refuses_domains_that_do_not_chain_and_wrong_order():
    ident = lambda x: x  # noqa: E731
    with pytest.raises(PipelineError, match="takes camera"):
        Pipeline([Stage("levels", Domain.counts, Domain.mosaic, ident),
                  Stage("color", Domain.camera, Domain.linear, ident)])
    with pytest.raises(PipelineError, match="must come after"):
        Pipeline([Stage("tone", Domain.linear, Domain.linear, ident),
                  Stage("exposure", Domain.linear, Domain.linear, ident)])


@pytest.mark.parametrize("orientation", range(1, 9))
def test_canvas_places_tiles_upright_for_every_orientation(orientation):
    from ispcli.isp.geometry import orient

    img = torch.rand(1, 3, 37, 53)
    canvas = Canvas(37, 53, orientation, 32)
    for t in tile_grid(37, 53, 16, 0):
        canvas(t, img[..., t.y0:t.y1, t.x0:t.x1])
    expected = orient(img[0], orientation).permute(1, 2, 0).numpy()
    np.testing.assert_array_equal(canvas.image, expected)


def test_a_device_out_of_memory_halves_the_tile_and_gives_the_same_result():
    from torch.nn import functional as F

    def smooth(x):
        return F.avg_pool2d(x, 5, stride=1, padding=2, count_include_pad=False)

    seen = []

    def greedy(x):                       # a device that fits at most 150×150 pixels
        seen.append(x.shape[-1] * x.shape[-2])
        if x.shape[-1] * x.shape[-2] > 150 * 150:
            raise runner._OUT_OF_MEMORY("CUDA out of memory (simulated)")
        return smooth(x)

    rng = np.random.default_rng(0)
    image = rng.random((300, 280, 3), dtype=np.float32)
    expected = runner.run_whole(Pipeline([Stage("s", Domain.display, Domain.display, smooth, halo=2)]),
                                image, torch.device("cpu"))
    canvas = Canvas(300, 280, 1, 32)
    runner.run(Pipeline([Stage("s", Domain.display, Domain.display, greedy, halo=2)]), image, canvas,
               device=torch.device("cpu"), tile=512)
    assert max(seen) > 150 * 150 and seen[-1] <= 150 * 150          # it failed, then went smaller
    np.testing.assert_allclose(canvas.image, expected[0].permute(1, 2, 0).numpy(), atol=1e-6)

    def hopeless(x):
        raise runner._OUT_OF_MEMORY("CUDA out of memory (simulated)")

    with pytest.raises(runner._OUT_OF_MEMORY):
        runner.run(Pipeline([Stage("s", Domain.display, Domain.display, hopeless, halo=2)]), image,
                   Canvas(300, 280, 1, 32), device=torch.device("cpu"), tile=512)
