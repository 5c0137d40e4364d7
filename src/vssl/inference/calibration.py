"""The calibrated "no visible source" threshold a model folder carries, and the scale it applies on.

``vssl eval --write-calibration`` and ``vssl demo`` store in the model's ``config.json``::

    "calibration": {"thresholds": {"max": .., "max10": .., "maxq3": ..}, "map_scale": "(cos+1)/2", "data": ..}

The thresholds were calibrated on the per-map maxima of negative-audio maps (silence, noise, offscreen)
upsampled to 224x224, so a decision compares the 224x224 map's maximum, on the same scale, with the
threshold: above it a source is visible; at or below it the localizer abstains. A model without this
entry is *uncalibrated*: its results carry ``abstain = None`` (no decision), never a guessed threshold.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from vssl.errors import ConfigError, VsslError
from vssl.maps import MapScale
from vssl.models.release import read_release_config

UNIT_SCALE = MapScale.UNIT.label  # thresholds and stored calibrations name their scale by its label
COSINE_SCALE = MapScale.COSINE.label
THRESHOLD_SCALES = (UNIT_SCALE, COSINE_SCALE)
DEFAULT_RULE = "maxq3"  # the headline rule of vssl eval and the demo
GIVEN_RULE = "given"  # a threshold set by hand (``--threshold``), not calibrated


class UncalibratedModelWarning(UserWarning):
    """A model folder without a stored calibration: results carry no abstain decision, box or mask."""


def to_scale(cosine: torch.Tensor, scale: str) -> torch.Tensor:
    """Cosine maps -> ``scale`` (``"(cos+1)/2"``/``"unit"`` or ``"cosine"``; `vssl.maps.MapScale`)."""
    return MapScale.COSINE.convert(cosine, scale)


@dataclass(frozen=True)
class Threshold:
    """One absolute threshold: a map shows a visible source where, on ``scale``, it exceeds ``value``."""

    value: float
    scale: str = UNIT_SCALE
    rule: str = GIVEN_RULE
    """Which calibrated threshold this is (``max``, ``max10``, ``maxq3``) or ``given``."""
    source: str | None = None
    """Where the calibration came from (the calibration data), when known."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "scale", MapScale.of(self.scale).label)  # "unit" or "(cos+1)/2": one name
        if not math.isfinite(self.value):
            raise ConfigError(f"threshold {self.rule!r} must be a finite number, got {self.value}")

    @property
    def cosine(self) -> float:
        """The threshold expressed as a cosine (for drawing it on a cosine colour scale)."""
        return 2.0 * self.value - 1.0 if self.scale == UNIT_SCALE else self.value

    def to_json(self) -> dict[str, Any]:
        return {"threshold": self.value, "threshold_scale": self.scale, "rule": self.rule}


@dataclass(frozen=True)
class Calibration:
    """The universal thresholds stored with a model (``config.json`` -> ``calibration``)."""

    thresholds: dict[str, float]
    map_scale: str = UNIT_SCALE
    data: str | None = None

    def threshold(self, rule: str = DEFAULT_RULE) -> Threshold:
        """The threshold of one rule, e.g. ``maxq3``."""
        if rule not in self.thresholds:
            raise VsslError(f"calibration has no threshold {rule!r}; it has {sorted(self.thresholds)}")
        return Threshold(float(self.thresholds[rule]), self.map_scale, rule, self.data)

    @classmethod
    def from_json(cls, entry: Any, where: str) -> Calibration:
        """Parse a ``calibration`` entry; ``where`` names the file in errors."""
        if not isinstance(entry, dict) or not isinstance(entry.get("thresholds"), dict) or not entry["thresholds"]:
            raise VsslError(f"{where}: 'calibration' must hold a non-empty 'thresholds' mapping")
        scale = entry.get("map_scale", UNIT_SCALE)
        if scale not in THRESHOLD_SCALES:
            raise VsslError(f"{where}: calibration map_scale {scale!r} unknown; known: {list(THRESHOLD_SCALES)}")
        try:
            thresholds = {str(k): float(v) for k, v in entry["thresholds"].items()}
        except (TypeError, ValueError) as exc:
            raise VsslError(f"{where}: calibration thresholds must be numbers ({exc})") from None
        return cls(thresholds, scale, entry.get("data"))


def read_calibration(folder: str | Path) -> Calibration | None:
    """The calibration stored in a model folder's ``config.json``, or None when it has none."""
    entry = read_release_config(folder).get("calibration")
    if entry is None:
        return None
    return Calibration.from_json(entry, str(Path(folder) / "config.json"))
