"""Universal thresholds (ICASSP'25 protocol, SPEC §4), calibrated instead of hard-coded.

From the per-map maxima of negative-audio maps on a calibration split (on the absolute map scale):
``max`` = their mean, ``max10`` = 1.1 x ``max``, ``maxq3`` = their 75th percentile (linear interpolation).
"""

from __future__ import annotations

import torch

THRESHOLD_NAMES = ("max", "max10", "maxq3")


def thresholds_from_maxima(maxima: torch.Tensor) -> dict[str, float]:
    """Thresholds from per-map maxima ``[M]``."""
    if maxima.numel() == 0:
        raise ValueError("cannot calibrate universal thresholds from zero negative maps")
    maxima = maxima.double()
    mean = float(maxima.mean())
    return {"max": mean, "max10": 1.1 * mean, "maxq3": float(torch.quantile(maxima, 0.75))}


def calibrate(negative_maps: torch.Tensor) -> dict[str, float]:
    """Thresholds from negative maps ``[M, H, W]`` (absolute scale, at the resolution they binarise at)."""
    return thresholds_from_maxima(negative_maps.flatten(1).amax(dim=1))
