"""Universal thresholds (ICASSP'25 protocol, SPEC §4), calibrated instead of hard-coded.

From the per-map maxima of negative-audio maps on a calibration split (on the absolute map scale):
``max`` = their mean, ``max10`` = 1.1 x ``max``, ``maxq3`` = their 75th percentile.
"""

from __future__ import annotations

import torch

THRESHOLD_NAMES = ("max", "max10", "maxq3")


def calibrate(negative_maps: torch.Tensor) -> dict[str, float]:
    """Thresholds from negative maps ``[N, H, W]`` (absolute scale)."""
    if negative_maps.numel() == 0:
        raise ValueError("cannot calibrate universal thresholds from zero negative maps")
    maxima = negative_maps.flatten(1).amax(dim=1).double()
    mean = float(maxima.mean())
    return {"max": mean, "max10": 1.1 * mean, "maxq3": float(torch.quantile(maxima, 0.75))}
