"""Training objectives, registered by name. Adding a method = one module + one line in `BASE_OBJECTIVES`.

``ObjectiveConfig.name`` is a base objective (``ezvsl``, ``slavc``, ``fnac``, ``lvs``) or SSL-SaN's
negatives on top of one, ``sslsan+<base>``; plain ``sslsan`` means ``sslsan+ezvsl``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from vssl.errors import ConfigError
from vssl.models.objectives.base import BaseObjective, Batch
from vssl.models.objectives.ezvsl import EZVSL
from vssl.models.objectives.fnac import FNAC, FNACConfig
from vssl.models.objectives.lvs import LVS, LVSConfig
from vssl.models.objectives.slavc import SLAVC, SLAVCConfig
from vssl.models.objectives.sslsan import SSLSaN, SSLSaNConfig

SSLSAN = "sslsan"
DEFAULT_SSLSAN_BASE = "ezvsl"


@dataclass(frozen=True)
class ObjectiveConfig:
    """Which objective trains the model, and its parameters."""

    name: str = "sslsan"  # ezvsl, slavc, fnac, lvs (positive-only) or sslsan+<one of them> (sslsan = sslsan+ezvsl)
    sslsan: SSLSaNConfig = field(default_factory=SSLSaNConfig)  # used by sslsan and sslsan+<base>
    slavc: SLAVCConfig = field(default_factory=SLAVCConfig)  # used by slavc (needs a slavc_* model size)
    fnac: FNACConfig = field(default_factory=FNACConfig)  # used by fnac
    lvs: LVSConfig = field(default_factory=LVSConfig)  # used by lvs (meant for an lvs_* model size)


BASE_OBJECTIVES: dict[str, Callable[[ObjectiveConfig], BaseObjective]] = {
    "ezvsl": lambda cfg: EZVSL(),
    "slavc": lambda cfg: SLAVC(cfg.slavc),
    "fnac": lambda cfg: FNAC(cfg.fnac),
    "lvs": lambda cfg: LVS(cfg.lvs),
}
OBJECTIVES = (*BASE_OBJECTIVES, SSLSAN, *(f"{SSLSAN}+{name}" for name in BASE_OBJECTIVES))


def _base(name: str, cfg: ObjectiveConfig) -> BaseObjective:
    if name not in BASE_OBJECTIVES:
        raise ConfigError(f"unknown objective {cfg.name!r}; known: {list(OBJECTIVES)}")
    return BASE_OBJECTIVES[name](cfg)


def create_objective(cfg: ObjectiveConfig, num_samples: int, seed: int) -> torch.nn.Module:
    """The objective module; ``num_samples`` and ``seed`` set up reproducible negative audio."""
    method, plus, base = cfg.name.partition("+")
    if method == SSLSAN:
        if plus and not base:
            raise ConfigError(f"objective {cfg.name!r}: name a base after '+', e.g. sslsan+slavc")
        return SSLSaN(cfg.sslsan, _base(base or DEFAULT_SSLSAN_BASE, cfg), num_samples=num_samples, seed=seed)
    if plus:
        raise ConfigError(f"unknown objective {cfg.name!r}; only sslsan composes with a base: sslsan+{method}")
    return _base(method, cfg)


__all__ = ["BASE_OBJECTIVES", "OBJECTIVES", "Batch", "ObjectiveConfig", "create_objective"]
