"""Colour: white-balanced camera RGB → linear light in the chosen output primaries.

The camera matrix is normalised so that camera white (1, 1, 1) after white balance maps to
the output space's white (dcraw's convention): white balance has already adapted the scene
illuminant, so the matrix only has to change primaries.
"""

from __future__ import annotations

import numpy as np
import torch

from ispcli.isp import colorspaces

HALO = 0


def camera_to_output_matrix(xyz_to_cam: np.ndarray, space: str) -> np.ndarray:
    """3×3 matrix taking white-balanced camera RGB to linear `space` RGB."""
    cam_from_srgb = np.asarray(xyz_to_cam, np.float64) @ colorspaces.rgb_to_xyz_matrix(colorspaces.get("srgb"))
    cam_from_srgb = cam_from_srgb / cam_from_srgb.sum(axis=1, keepdims=True)
    srgb_from_cam = np.linalg.inv(cam_from_srgb)
    out_space = colorspaces.get(space)
    out_from_srgb = colorspaces.xyz_to_rgb_matrix(out_space) @ colorspaces.rgb_to_xyz_matrix(colorspaces.get("srgb"))
    return out_from_srgb @ srgb_from_cam


def apply_matrix(x: torch.Tensor, matrix: torch.Tensor) -> torch.Tensor:
    """(N, 3, H, W) pixels times a 3×3 matrix, per pixel."""
    return torch.einsum("ij,njhw->nihw", matrix.to(x.device, torch.float32), x)
