"""The configs of the inference commands: which model decides at which threshold (`LocalizerConfig`, shared by
``vssl localize`` and ``vssl serve``), and how ``vssl localize`` analyses videos, streams and noise
(`LocalizeConfig`).

    cfg = LocalizeConfig(model="vssl-demo/models/sslsan", rule="max", fps=2)
    loc = cfg.load()                                                   # a `Localizer`

Each field's docstring is its ``--help`` text; a bad value is a `ConfigError` naming its key.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

from vssl.devices import check_device, require_device
from vssl.errors import ConfigError
from vssl.evaluation.thresholds import THRESHOLD_NAMES
from vssl.inference.calibration import DEFAULT_RULE, UncalibratedModelWarning
from vssl.inference.live import STALL_TIMEOUT
from vssl.inference.localizer import Localizer, load_localizer
from vssl.inference.video import ANALYSED_FPS
from vssl.maps import SCALE_NAMES, MapScale

SEED_RANGE = (-(2**63), 2**64)
"""Seeds a torch generator takes (``manual_seed``): ``[low, high)``."""


def _positive(key: str, value: float) -> None:
    if not (math.isfinite(value) and value > 0):
        raise ConfigError(f"{key} must be a positive number, got {value}")


@dataclass(frozen=True)
class LocalizerConfig:
    """The model that localizes, where it runs, and the threshold of its "no visible source" decision."""

    model: str = ""
    """model folder (vssl train / convert / demo), hf-hub:ORG/NAME[/SUBFOLDER][@REVISION], or a size name (random
    weights, for smoke tests)"""
    rule: str = DEFAULT_RULE
    """calibrated threshold that decides (max | max10 | maxq3), stored with the model by vssl eval --write-calibration
    or vssl demo"""
    threshold: float | None = None
    """threshold to use instead of the model's calibration, on threshold_scale; none: the calibrated rule"""
    threshold_scale: str = MapScale.UNIT.value
    """scale of threshold: unit = (cos+1)/2 (EZ-VSL family), or cosine (LVS family)"""
    device: str = "cpu"
    """torch device: cpu, cuda, cuda:1, ..."""
    batch_size: int = 16
    """frames (or audio windows) encoded at a time"""

    def __post_init__(self) -> None:
        if self.rule not in THRESHOLD_NAMES:
            raise ConfigError(f"rule {self.rule!r} unknown; choose one of {list(THRESHOLD_NAMES)}")
        if self.threshold is not None and not math.isfinite(self.threshold):
            raise ConfigError(f"threshold must be a finite number, got {self.threshold}")
        if self.threshold_scale not in SCALE_NAMES:
            raise ConfigError(f"threshold_scale {self.threshold_scale!r} unknown; choose one of {list(SCALE_NAMES)}")
        check_device(self.device)
        if self.batch_size < 1:
            raise ConfigError(f"batch_size must be >= 1, got {self.batch_size}")

    def load(self) -> Localizer:
        """The `Localizer` this config names. An uncalibrated model (without ``threshold``) loads without a
        warning: its results carry ``abstain = None``; check ``localizer.threshold is None`` to say so."""
        require_device(self.device)  # a device this machine lacks fails here in one line, not in loading
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UncalibratedModelWarning)
            return load_localizer(
                self.model, self.device, self.rule, self.threshold, self.threshold_scale, self.batch_size
            )


@dataclass(frozen=True)
class LocalizeConfig(LocalizerConfig):
    """``vssl localize``: the localizer, and how videos and live streams are analysed."""

    fps: float = ANALYSED_FPS
    """video and live: frames analysed a second (times 0, 1/fps, 2/fps, ...)"""
    timeout: float = STALL_TIMEOUT
    """live: seconds to wait for the stream's first data, each read and each new frame before it counts as ended"""
    seed: int = 0
    """seed of the white noise of --noise"""

    def __post_init__(self) -> None:
        super().__post_init__()
        _positive("fps", self.fps)
        _positive("timeout", self.timeout)
        if not SEED_RANGE[0] <= self.seed < SEED_RANGE[1]:
            raise ConfigError(f"seed {self.seed} out of range: torch seeds are integers in [-2**63, 2**64)")
