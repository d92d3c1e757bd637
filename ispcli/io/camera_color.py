"""Choosing a camera's XYZ→camera matrix from what a file actually says.

DNG files carry up to two ColorMatrix tags, each calibrated under an illuminant; the right
matrix for a shot lies between them, weighted by inverse colour temperature of the as-shot
white (DNG specification, "Mapping Camera Color Space to CIE XYZ Space"). Numpy only.
"""

from __future__ import annotations

import numpy as np

# EXIF LightSource codes (as used by CalibrationIlluminant) → correlated colour temperature.
ILLUMINANT_CCT = {
    1: 5500.0, 2: 4150.0, 3: 2850.0, 4: 5500.0, 9: 5500.0, 10: 6500.0, 11: 7500.0,
    12: 6430.0, 13: 5000.0, 14: 4150.0, 15: 3450.0, 17: 2856.0, 18: 4874.0, 19: 6774.0,
    20: 5503.0, 21: 6504.0, 22: 7504.0, 23: 5003.0, 24: 3200.0,
}


def xy_to_cct(x: float, y: float) -> float:
    """McCamy's cubic: good to a few kelvin between 2000 K and 12500 K."""
    n = (x - 0.3320) / (0.1858 - y)
    return float(449.0 * n**3 + 3525.0 * n**2 + 6823.3 * n + 5520.33)


def is_usable_matrix(m: np.ndarray | None) -> bool:
    """A matrix LibRaw left all-zero, or one holding NaN, is as good as absent."""
    if m is None:
        return False
    m = np.asarray(m, dtype=np.float64)
    return m.shape == (3, 3) and bool(np.all(np.isfinite(m))) and abs(np.linalg.det(m)) > 1e-8


def _xy_of_neutral(cm: np.ndarray, neutral: np.ndarray) -> tuple[float, float]:
    xyz = np.linalg.solve(cm, neutral)
    s = xyz.sum()
    if not np.isfinite(s) or s <= 0:
        return 0.3127, 0.3290  # D65: the safest guess for an unphysical neutral
    return float(xyz[0] / s), float(xyz[1] / s)


def interpolate_color_matrix(
    cm1: np.ndarray,
    illuminant1: int | None,
    cm2: np.ndarray | None,
    illuminant2: int | None,
    as_shot_neutral: np.ndarray | None,
) -> np.ndarray:
    """The XYZ→camera matrix for the shot, blended between two calibrations by 1/CCT."""
    cm1 = np.asarray(cm1, dtype=np.float64).reshape(3, 3)
    if cm2 is None or not is_usable_matrix(cm2):
        return cm1
    cm2 = np.asarray(cm2, dtype=np.float64).reshape(3, 3)
    t1 = ILLUMINANT_CCT.get(int(illuminant1 or 0))
    t2 = ILLUMINANT_CCT.get(int(illuminant2 or 0))
    if t1 is None or t2 is None or t1 == t2:
        return cm2
    if as_shot_neutral is None or np.any(np.asarray(as_shot_neutral) <= 0):
        return cm2 if t2 > t1 else cm1  # no neutral: the daylight-side calibration
    neutral = np.asarray(as_shot_neutral, dtype=np.float64)
    lo, hi = (cm1, t1), (cm2, t2)
    if t1 > t2:
        lo, hi = hi, lo
    # The shot's temperature depends on the matrix and the matrix on the temperature:
    # a few fixed-point rounds converge (DNG SDK does the same).
    cm = 0.5 * (cm1 + cm2)
    for _ in range(8):
        cct = xy_to_cct(*_xy_of_neutral(cm, neutral))
        if cct <= lo[1]:
            w = 1.0
        elif cct >= hi[1]:
            w = 0.0
        else:
            w = (1.0 / cct - 1.0 / hi[1]) / (1.0 / lo[1] - 1.0 / hi[1])
        cm = w * lo[0] + (1.0 - w) * hi[0]
    return cm
