"""`develop`: the full classical chain, built from a `RawImage` and a `Recipe`.

Whole-picture decisions (auto white balance, auto exposure, the dehazer's airlight, the
enhancer's global parameters) come from an analysis pass on a small binned copy of the frame
and enter the stages as plain numbers, so tiling can never change the result. Where a decision
belongs to a later stage, the copy is first taken through the stages before it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from ispcli.io.raw import RawImage
from ispcli.isp import color, colorspaces, demosaic, highlights, tone
from ispcli.isp.cfa import cfa_plane
from ispcli.isp.levels import normalize_levels
from ispcli.isp.whitebalance import grey_world, white_balance_mosaic, white_balance_rgb
from ispcli.pipeline.stage import Domain, Pipeline, Stage
from ispcli.recipe import Recipe, parse_wb

PREVIEW_PIXELS = 1_000_000


@dataclass
class Analysis:
    """The numbers the whole-picture pass decided, recorded in the sidecar."""

    wb_gains: list[float]
    wb_source: str
    exposure_ev: float
    matrix: list[list[float]]
    warnings: list[str] = field(default_factory=list)
    # raw denoising: shot/read variances of the normalised sensor data and where they came from
    noise: dict | None = None
    # dehaze: the airlight, sRGB-encoded (as the dehazer sees its input)
    airlight: list[float] | None = None
    # enhance: the parameters its global branch chose for the whole picture
    enhance: list[float] | None = None


def binned_preview(raw: RawImage, max_pixels: int = PREVIEW_PIXELS) -> torch.Tensor:
    """(1, 3, h, w) normalised camera RGB, one pixel per CFA period, strided to ~1 MP."""
    data = raw.data
    if raw.cfa is None:
        k = max(1, int(np.sqrt(raw.height * raw.width / max_pixels)))
        sub = data[::k, ::k, :].astype(np.float32)
        rgb = (sub - raw.black.astype(np.float32)) / (raw.white - raw.black.astype(np.float32))
        return torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1).unsqueeze(0)
    p = raw.cfa.shape[0]
    hb, wb = raw.height // p, raw.width // p
    k = max(1, int(np.sqrt(hb * wb / max_pixels)))
    h, w = -(-hb // k), -(-wb // k)
    sums = np.zeros((3, h, w), np.float32)
    # each CFA site of every k-th period is one strided slice: no copy of the frame
    for i in range(p):
        for j in range(p):
            black = np.float32(raw.black[i, j])
            site = data[i: hb * p: p * k, j: wb * p: p * k].astype(np.float32)
            sums[raw.cfa[i, j]] += (site - black) / (np.float32(raw.white) - black)
    counts = np.bincount(raw.cfa.ravel(), minlength=3).astype(np.float32)
    return torch.from_numpy(sums / counts[:, None, None]).unsqueeze(0)


def choose_white_balance(raw: RawImage, recipe: Recipe, preview: torch.Tensor) -> tuple[np.ndarray, str, list[str]]:
    """Gains (G = 1) and where they came from; falls back loudly, never silently."""
    mode, custom = parse_wb(recipe.wb)
    notes: list[str] = []
    if mode == "custom":
        g = np.asarray(custom, np.float64)
        return g / g[1], "custom", notes
    if mode == "camera":
        if raw.wb_camera is not None:
            return raw.wb_camera, "camera", notes
        mode = "daylight" if raw.wb_daylight is not None else "auto"
    if mode == "daylight":
        if raw.wb_daylight is not None:
            return raw.wb_daylight, "daylight", notes
        notes.append("no daylight white balance known for this camera; using auto")
    return grey_world(preview).double().numpy(), "auto", notes


def green_sites(raw: RawImage, max_pixels: int = 2_000_000) -> np.ndarray:
    """Normalised values of one green CFA site from a central crop at full resolution
    (noise must be measured before any binning averages it away)."""
    p = raw.cfa.shape[0]
    ys, xs = np.nonzero(raw.cfa == 1)
    dy, dx = int(ys[0]), int(xs[0])
    plane = raw.data[dy::p, dx::p]
    side = int(np.sqrt(max_pixels))
    y0, x0 = max(0, (plane.shape[0] - side) // 2), max(0, (plane.shape[1] - side) // 2)
    crop = plane[y0:y0 + side, x0:x0 + side].astype(np.float32)
    black = float(raw.black[dy, dx]) if np.ndim(raw.black) == 2 else float(np.mean(raw.black))
    return (crop - black) / (raw.white - black)


def noise_levels(raw: RawImage) -> dict:
    """Shot/read noise of the sensor data: from the ISO when the file records it, else
    measured (the σ the wavelet estimator sees on a green site, read as shot noise at the
    median level plus Brooks et al.'s read-noise fit)."""
    from ispcli.train.unprocess import noise_levels_for_iso, read_from_shot

    if raw.exif.iso:
        shot, read = noise_levels_for_iso(raw.exif.iso)
        return {"shot": shot, "read": read, "source": f"ISO {raw.exif.iso}"}
    from ispcli.isp.noise import estimate_sigma

    green = green_sites(raw)
    sigma = estimate_sigma(green[..., None])
    level = max(float(np.median(green)), 1e-3)
    lo, hi = 1e-7, 1.0
    for _ in range(60):  # σ² = shot·level + read(shot) grows with shot: bisect in log space
        mid = (lo * hi) ** 0.5
        lo, hi = (mid, hi) if mid * level + read_from_shot(mid) < sigma ** 2 else (lo, mid)
    shot = (lo * hi) ** 0.5
    return {"shot": shot, "read": read_from_shot(shot), "source": f"estimated (σ {sigma:.4f} at {level:.3f})"}


def _through(stages: list[Stage], x: torch.Tensor, device: torch.device) -> torch.Tensor:
    """A (1, 3, h, w) preview taken through `stages` whole (with the runner's edge handling)."""
    from ispcli.pipeline import runner

    if not stages:
        return x
    source = np.ascontiguousarray(x[0].permute(1, 2, 0).numpy())
    return runner.run_whole(Pipeline(stages), source, device).float().cpu()


def analyse(raw: RawImage, recipe: Recipe, device: torch.device | None = None) -> Analysis:
    from ispcli.isp import dehaze

    preview = binned_preview(raw)
    gains, source, notes = choose_white_balance(raw, recipe, preview)
    matrix = color.camera_to_output_matrix(raw.xyz_to_cam, recipe.color_space)
    # the preview as the colour stage leaves it: balanced, clipped at the balanced ceiling
    lin = color.apply_matrix(white_balance_rgb(preview, torch.tensor(gains)).clamp(max=float(gains.min())),
                             torch.tensor(matrix))
    airlight = params = None
    if recipe.dehaze != "none" or recipe.enhance != "none":
        from ispcli.pipeline.device import resolve_device
        from ispcli.pipeline.learned import _srgb_encode

        device = device or resolve_device(recipe.device)
        if recipe.dehaze != "none":
            # the dehazer sees sRGB-encoded linear light; deblur, which comes first, keeps the
            # local means an airlight and a 64-pixel thumbnail are made of, so it is left out here
            encoded = _srgb_encode(lin)
            if recipe.dehaze == "dcp":
                airlight = dehaze.image_airlight(encoded)[0]
            else:
                from ispcli.pipeline import learned

                airlight = learned.dehaze_airlight(recipe.dehaze, encoded, device=device,
                                                   precision=recipe.precision)[0]
            lin = _through(restore_stages(recipe, airlight, device), dehaze.analysis_copy(lin), device)
    ev = recipe.exposure
    if recipe.auto_exposure:
        # auto exposure decides the brightness itself: the file's and the look's lifts
        # would count twice
        to_xyz = colorspaces.rgb_to_xyz_matrix(colorspaces.get(recipe.color_space))
        ev += tone.auto_exposure_ev(lin, torch.tensor(to_xyz[1], dtype=torch.float32))
    else:
        ev += raw.baseline_exposure + (tone.DEFAULT_LOOK_EV if recipe.look == "default" else 0.0)
    if recipe.enhance != "none":
        from ispcli.pipeline import learned

        display = _through(tone_stages(recipe, ev), dehaze.analysis_copy(lin), device)
        params = learned.enhance_params(recipe.enhance, display, device=device, precision=recipe.precision)[0]
    noise = None
    if recipe.denoise != "none":
        if raw.cfa is not None and raw.cfa.shape == (2, 2):
            noise = noise_levels(raw)
        else:
            notes.append(f"--denoise {recipe.denoise}: the raw denoiser needs a Bayer mosaic; not applied")
    return Analysis(wb_gains=[float(g) for g in gains], wb_source=source, exposure_ev=float(ev),
                    matrix=np.asarray(matrix).tolist(), warnings=notes, noise=noise,
                    airlight=None if airlight is None else [float(a) for a in airlight],
                    enhance=None if params is None else [float(v) for v in params])


def restore_stages(recipe: Recipe, airlight, device: torch.device, *, deblur: bool = False) -> list[Stage]:
    """Deblur (with `deblur`) and dehaze on linear light, each between the sRGB curve and its
    inverse (the models were trained on sRGB photos)."""
    from ispcli.pipeline import learned

    stages = []
    if deblur and recipe.deblur != "none":
        stages.append(learned.deblur_stage(recipe.deblur, device=device, precision=recipe.precision,
                                           compile=recipe.compile, encoded=False))
    if recipe.dehaze == "dcp":
        stages.append(learned.dcp_stage(airlight, encoded=False))
    elif recipe.dehaze != "none":
        stages.append(learned.dehaze_stage(recipe.dehaze, airlight, device=device, precision=recipe.precision,
                                           compile=recipe.compile, encoded=False))
    return stages


def tone_stages(recipe: Recipe, ev: float, *, float_output: bool = False) -> list[Stage]:
    """Exposure and the tone curve: scene-referred linear light to display values."""
    stages = []
    if ev != 0.0:
        stages.append(Stage("exposure", Domain.linear, Domain.linear, lambda x: tone.exposure(x, ev)))
    space = recipe.color_space
    if recipe.look == "default":
        stages.append(Stage("tone", Domain.linear, Domain.display, lambda x: tone.tone_default(x, space)))
    else:
        stages.append(Stage("tone", Domain.linear, Domain.display,
                            lambda x: tone.tone_neutral(x, space, clip=not float_output)))
    return stages


def build_pipeline(raw: RawImage, recipe: Recipe, analysis: Analysis, *, float_output: bool = False,
                   device: torch.device | None = None) -> Pipeline:
    """The develop chain for this file, every number fixed by the analysis pass."""
    device = device or torch.device("cpu")
    gains = torch.tensor(analysis.wb_gains, dtype=torch.float32)
    threshold = highlights.clip_threshold(gains)
    matrix = torch.tensor(analysis.matrix, dtype=torch.float32)
    white = float(raw.white)
    stages: list[Stage] = []
    if raw.cfa is not None:
        cfa = torch.as_tensor(raw.cfa)
        black = torch.as_tensor(raw.black, dtype=torch.float32)
        stages += [
            Stage("levels", Domain.counts, Domain.mosaic,
                  lambda x: normalize_levels(x, cfa_plane(black.to(x.device), x.shape[-2], x.shape[-1]), white)),
            Stage("white_balance", Domain.mosaic, Domain.mosaic, lambda x: white_balance_mosaic(x, gains, cfa)),
        ]
        if recipe.highlights == "clip":
            stages.append(Stage("highlight_clip", Domain.mosaic, Domain.mosaic,
                                lambda x: highlights.clip_highlights(x, threshold)))
        if analysis.noise is not None:
            from ispcli.pipeline import learned

            stages.append(learned.raw_denoise_stage(recipe.denoise, cfa, gains, analysis.noise["shot"],
                                                    analysis.noise["read"], device=device,
                                                    precision=recipe.precision, compile=recipe.compile))
        if recipe.demosaic.startswith("net:"):
            from ispcli.pipeline import learned

            stages.append(learned.demosaic_stage(recipe.demosaic[4:], cfa, device=device,
                                                 precision=recipe.precision, compile=recipe.compile))
        else:
            method = recipe.demosaic if raw.kind == "bayer" else "bilinear" if recipe.demosaic == "bilinear" \
                else "default"
            stages.append(Stage("demosaic", Domain.mosaic, Domain.camera,
                                lambda x: demosaic.demosaic(x, cfa, method), halo=demosaic.HALO[method]))
    else:
        black = torch.as_tensor(raw.black, dtype=torch.float32).view(1, 3, 1, 1)
        stages += [
            Stage("levels", Domain.counts, Domain.camera, lambda x: normalize_levels(x, black.to(x.device), white)),
            Stage("white_balance", Domain.camera, Domain.camera, lambda x: white_balance_rgb(x, gains)),
        ]
        if recipe.highlights == "clip":
            stages.append(Stage("highlight_clip", Domain.camera, Domain.camera,
                                lambda x: highlights.clip_highlights(x, threshold)))
    if recipe.highlights == "blend":
        stages.append(Stage("highlight_recovery", Domain.camera, Domain.camera,
                            lambda x: highlights.blend_highlights(x, gains)))
    elif recipe.highlights == "reconstruct":
        stages.append(Stage("highlight_recovery", Domain.camera, Domain.camera,
                            lambda x: highlights.reconstruct_highlights(x, gains),
                            halo=highlights.HALO["reconstruct"]))
    stages.append(Stage("color", Domain.camera, Domain.linear, lambda x: color.apply_matrix(x, matrix)))
    stages += restore_stages(recipe, analysis.airlight, device, deblur=True)
    stages += tone_stages(recipe, analysis.exposure_ev, float_output=float_output)
    if recipe.enhance != "none":
        from ispcli.pipeline import learned

        stages.append(learned.enhance_stage(recipe.enhance, analysis.enhance, recipe.strength, device=device,
                                            precision=recipe.precision, compile=recipe.compile))
    return Pipeline(stages)
