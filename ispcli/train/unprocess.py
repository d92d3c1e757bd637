"""Turn sRGB images into plausible camera raw data, after Brooks et al. 2019 ("Unprocessing
Images for Learned Raw Denoising"): invert each step of a simple camera pipeline.

Conventions: images are float32 torch tensors shaped (N, C, H, W); C=3 for RGB, C=1 for a
Bayer mosaic. "Normalised" raw means 0 = black level, 1 = white level. Matrices are 3x3,
XYZ -> camera in the DNG ColorMatrix sense (rows camera R,G,B; columns X,Y,Z; D65).

Forward camera model and the function that inverts each step:
    camera raw = mosaic(gains_tint * exposure * xyz_to_cam @ XYZ_FROM_SRGB @ srgb_to_linear(srgb))
    srgb_to_linear <-> linear_to_srgb
    rgb_to_camera  <-> camera_to_rgb
    apply_gains(x, 1/wb_gains) undoes white balance (apply_gains(x, wb_gains) redoes it)
    mosaic         (CFA sampling; demosaicking is the learned inverse)
    to_sensor_counts <-> from_sensor_counts
Unlike Brooks we keep the camera matrix unnormalised, so a D65-white object lands on the
camera's real D65 neutral (camera_neutral) and the DNG's AsShotNeutral is physically right.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ispcli.io.dng import CFA_PATTERNS, XYZ_FROM_SRGB

# LibRaw adobe_coeff rgb_xyz_matrix (= Adobe DNG ColorMatrix for D65), checked against rawpy
# on the files in ../shared/data/raw and against LibRaw's table via Make/Model in tests.
CAMERA_MATRICES = {
    "Canon EOS 30D": ((0.6257, -0.0303, -0.1000), (-0.7880, 1.5621, 0.2396), (-0.1714, 0.1904, 0.7046)),
    "Canon EOS D30": ((0.9900, -0.2771, -0.1324), (-0.7072, 1.4229, 0.3140), (-0.2790, 0.3344, 0.8861)),
    "Sony ILCE-7RM3": ((0.6640, -0.1847, -0.0503), (-0.5238, 1.3010, 0.2474), (-0.0993, 0.1673, 0.6527)),
    "Fujifilm X-H1": ((1.1434, -0.4948, -0.1210), (-0.3746, 1.2042, 0.1903), (-0.0666, 0.1479, 0.5235)),
}

_SRGB_TO_XYZ = torch.tensor(XYZ_FROM_SRGB, dtype=torch.float32)
XYZ_D65 = _SRGB_TO_XYZ.sum(dim=1)  # sRGB white (1,1,1) in XYZ: (0.9505, 1.0000, 1.0888)


def srgb_to_linear(x: torch.Tensor) -> torch.Tensor:
    # Exact IEC 61966-2-1 curve; the clamp keeps pow() away from negatives in the unused branch.
    return torch.where(x <= 0.04045, x / 12.92, ((x.clamp(min=0.04045) + 0.055) / 1.055) ** 2.4)


def linear_to_srgb(x: torch.Tensor) -> torch.Tensor:
    # Same curve inverted; 0.0031308 is where the two pieces of the forward curve meet.
    return torch.where(x <= 0.0031308, x * 12.92, 1.055 * x.clamp(min=0.0031308) ** (1 / 2.4) - 0.055)


def xyz_camera_matrices() -> dict[str, torch.Tensor]:
    # Fresh tensors each call so callers can mutate them without touching the table.
    return {name: torch.tensor(m, dtype=torch.float32) for name, m in CAMERA_MATRICES.items()}


def _apply_matrix(m: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    # Per-pixel 3x3 product on (N,3,H,W) without reshaping the batch.
    return torch.einsum("ij,njhw->nihw", m.to(x), x)


def camera_neutral(xyz_to_cam: torch.Tensor) -> torch.Tensor:
    # Camera response to D65 white with G=1: the DNG AsShotNeutral for a D65 scene.
    n = xyz_to_cam.float() @ XYZ_D65
    return n / n[1]


def white_exposure(xyz_to_cam: torch.Tensor) -> float:
    # Largest camera value any sRGB colour in [0,1]^3 can reach; 1/that keeps every source
    # pixel unclipped (for these cameras it is the green response to white).
    cam_from_rgb = xyz_to_cam.float() @ _SRGB_TO_XYZ
    return 1.0 / float(cam_from_rgb.clamp(min=0).sum(dim=1).max())


@dataclass(frozen=True)
class Camera:
    """A (possibly mixed) camera: colour matrix plus the white-balance gains of its scene."""
    xyz_to_cam: torch.Tensor   # (3,3) DNG ColorMatrix, D65
    cam_to_xyz: torch.Tensor   # (3,3) inverse
    wb_gains: torch.Tensor     # (3,) R,G,B multipliers with G=1 that neutralise the scene light
    weights: torch.Tensor      # (len(CAMERA_MATRICES),) mixing weights, for provenance

    @property
    def as_shot_neutral(self) -> torch.Tensor:
        return 1.0 / self.wb_gains


def make_camera(xyz_to_cam: torch.Tensor, wb_gains: torch.Tensor | None = None,
                weights: torch.Tensor | None = None) -> Camera:
    # Default gains are the D65 ones, i.e. the scene is lit by the matrix's own illuminant.
    m = xyz_to_cam.float()
    gains = 1.0 / camera_neutral(m) if wb_gains is None else wb_gains.float()
    w = torch.zeros(len(CAMERA_MATRICES)) if weights is None else weights
    return Camera(m, torch.linalg.inv(m), gains, w)


def random_camera(generator: torch.Generator | None = None) -> Camera:
    """Random convex mix of the real matrices and a random scene illuminant.

    The illuminant moves the D65 gains along the warm/cool axis (log R gain down and log B
    gain up together; s in [-0.55, 0.15] spans roughly tungsten to shade) plus +-5% jitter,
    so gains stay in the range real cameras report (R ~1.2-3.2, B ~0.9-2.8).
    """
    mats = torch.stack(list(xyz_camera_matrices().values()))
    weights = torch.rand(len(mats), generator=generator)
    weights = weights / weights.sum()
    m = torch.einsum("k,kij->ij", weights, mats)
    s, e_r, e_b = torch.rand(3, generator=generator).tolist()
    s = -0.55 + 0.70 * s
    d65_gains = 1.0 / camera_neutral(m)
    tint = torch.tensor([math.exp(s + 0.1 * (e_r - 0.5)), 1.0, math.exp(-s + 0.1 * (e_b - 0.5))])
    return make_camera(m, d65_gains * tint, weights)


def rgb_to_camera(linear_srgb: torch.Tensor, xyz_to_cam: torch.Tensor) -> torch.Tensor:
    # Through XYZ with no white balance, so white keeps the camera's native colour cast.
    return _apply_matrix(xyz_to_cam.float() @ _SRGB_TO_XYZ, linear_srgb)


def camera_to_rgb(camera_rgb: torch.Tensor, xyz_to_cam: torch.Tensor) -> torch.Tensor:
    # Exact inverse of rgb_to_camera (the matrices are well conditioned).
    return _apply_matrix(torch.linalg.inv(xyz_to_cam.float() @ _SRGB_TO_XYZ), camera_rgb)


def apply_gains(x: torch.Tensor, gains: torch.Tensor) -> torch.Tensor:
    # Per-channel scaling: white balance with wb_gains, "unbalance" with 1/wb_gains.
    return x * gains.to(x).view(1, -1, 1, 1)


def illuminant_tint(camera: Camera) -> torch.Tensor:
    # Gains that move a D65-lit camera image to the scene light implied by camera.wb_gains.
    return camera.as_shot_neutral / camera_neutral(camera.xyz_to_cam)


def cfa_channels(cfa: str = "RGGB") -> torch.Tensor:
    # (2,2) channel index (0=R,1=G,2=B) of each site of the repeating tile.
    return torch.tensor(CFA_PATTERNS[cfa.upper()]).view(2, 2)


def mosaic(camera_rgb: torch.Tensor, cfa: str = "RGGB") -> torch.Tensor:
    # Keep one channel per site; (N,3,H,W) -> (N,1,H,W), odd sizes allowed.
    idx = cfa_channels(cfa)
    out = camera_rgb.new_empty(camera_rgb.shape[0], 1, *camera_rgb.shape[2:])
    for dy in range(2):
        for dx in range(2):
            out[:, 0, dy::2, dx::2] = camera_rgb[:, int(idx[dy, dx]), dy::2, dx::2]
    return out


def _black_map(black, like: torch.Tensor) -> torch.Tensor:
    # Scalar or one value per 2x2 site (write_dng's order), tiled over the mosaic.
    b = torch.as_tensor(black, dtype=torch.float32).reshape(-1)
    if b.numel() == 1:
        return b.view(1, 1, 1, 1).to(like)
    h, w = like.shape[-2:]
    return b.view(2, 2).repeat((h + 1) // 2, (w + 1) // 2)[:h, :w].to(like).view(1, 1, h, w)


def to_sensor_counts(x: torch.Tensor, black=512, white: int = 16383) -> torch.Tensor:
    # Normalised -> integer DN. Clip at 0 rather than at black so negative read noise survives,
    # at white as the ADC does. int32 result; `.numpy().astype(numpy.uint16)` is lossless.
    bl = _black_map(black, x)
    return torch.round(bl + x * (white - bl)).clamp(0, white).to(torch.int32)


def from_sensor_counts(counts: torch.Tensor, black=512, white: int = 16383) -> torch.Tensor:
    # Inverse of to_sensor_counts (up to rounding and clipping).
    c = counts.float()
    bl = _black_map(black, c)
    return (c - bl) / (white - bl)


def noise_std(x: torch.Tensor, shot, read) -> torch.Tensor:
    # Heteroscedastic Gaussian model: variance = shot * signal + read (both variances, Brooks' λ).
    return torch.sqrt(torch.as_tensor(shot).to(x) * x.clamp(min=0) + torch.as_tensor(read).to(x))


def add_shot_read_noise(x: torch.Tensor, shot, read, generator: torch.Generator | None = None) -> torch.Tensor:
    # shot/read: floats or tensors broadcastable to x, e.g. (N,1,1,1) for per-image levels.
    noise = torch.randn(x.shape, generator=generator, dtype=x.dtype, device=x.device)
    return x + noise * noise_std(x, shot, read)


def read_from_shot(shot: float) -> float:
    # Brooks' fit over real cameras: log(read) = 2.18 log(shot) + 1.20 (mean, no scatter).
    return math.exp(2.18 * math.log(shot) + 1.20)


def noise_levels_for_iso(iso: float, base_iso: float = 100.0, shot_at_base: float = 1e-4) -> tuple[float, float]:
    # Shot variance grows linearly with analogue gain; ISO 100..12800 spans Brooks' sampled
    # shot range [1e-4, 1.28e-2] (normalised units, white = 1).
    shot = shot_at_base * float(iso) / base_iso
    return shot, read_from_shot(shot)


def random_noise_levels(generator: torch.Generator | None = None) -> tuple[float, float]:
    # Brooks' training distribution: log-uniform shot, read from the fit plus N(0, 0.26) scatter.
    u, z = torch.rand(1, generator=generator).item(), torch.randn(1, generator=generator).item()
    log_shot = math.log(1e-4) + u * (math.log(0.012) - math.log(1e-4))
    return math.exp(log_shot), math.exp(2.18 * log_shot + 1.20 + 0.26 * z)


def unprocess(srgb: torch.Tensor, camera: Camera, cfa: str = "RGGB") -> torch.Tensor:
    """sRGB in [0,1] (N,3,H,W) -> clean normalised Bayer mosaic (N,1,H,W) for `camera`.

    Exposure puts sRGB white at the white level (white_exposure); the scene illuminant is
    camera.wb_gains, so the matching DNG AsShotNeutral is camera.as_shot_neutral.
    """
    cam = rgb_to_camera(srgb_to_linear(srgb), camera.xyz_to_cam)
    cam = apply_gains(cam * white_exposure(camera.xyz_to_cam), illuminant_tint(camera))
    return mosaic(cam.clamp(min=0), cfa)  # a sensor cannot report negative light
