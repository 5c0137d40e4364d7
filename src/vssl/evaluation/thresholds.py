"""Universal thresholds (ICASSP'25 protocol, SPEC §4), calibrated instead of hard-coded.

From the per-map maxima of negative-audio maps on a calibration split (on the absolute map scale):
``max`` = their mean, ``max10`` = 1.1 x ``max``, ``maxq3`` = their 75th percentile (linear interpolation).
"""

from __future__ import annotations

import torch

from vssl.errors import ConfigError

THRESHOLD_NAMES = ("max", "max10", "maxq3")

PUBLISHED_THRESHOLDS: dict[str, tuple[str, dict[str, float]]] = {
    "ezvsl": ("unit", {"max": 0.6041, "max10": 0.6645, "maxq3": 0.6382}),
    "slavc": ("unit", {"max": 0.5201, "max10": 0.5721, "maxq3": 0.5450}),
    "fnac": ("unit", {"max": 0.5311, "max10": 0.5842, "maxq3": 0.5538}),
    "lvs": ("cosine", {"max": 0.5527, "max10": 0.6080, "maxq3": 0.6077}),
    "ssltie": ("cosine", {"max": 0.2641, "max10": 0.2906, "maxq3": 0.3338}),
    "sslalign": ("cosine", {"max": 0.2660, "max10": 0.2926, "maxq3": 0.3175}),
}
"""The ICASSP'25 code's hard-coded universal thresholds per published model (SPEC §4): (threshold scale, values);
``unit`` = (cos+1)/2 (EZ-VSL family), ``cosine`` = raw cosine (LVS family)."""
PUBLISHED_PREFIX = "published:"


def published_thresholds(spec: str) -> tuple[str, dict[str, float]]:
    """``published:<model>`` -> (threshold scale, thresholds) of that model in the ICASSP'25 code."""
    name = spec.removeprefix(PUBLISHED_PREFIX)
    if not spec.startswith(PUBLISHED_PREFIX) or name not in PUBLISHED_THRESHOLDS:
        known = ", ".join(PUBLISHED_PREFIX + k for k in PUBLISHED_THRESHOLDS)
        raise ConfigError(f"threshold {spec!r} unknown; give one of {known}")
    scale, values = PUBLISHED_THRESHOLDS[name]
    return scale, dict(values)


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
