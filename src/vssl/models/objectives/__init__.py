"""Training objectives, and the registry of methods (`METHODS`).

Adding a method = one module ending with a `vssl.models.method.Method` record + its line in `METHODS` (and the
import above it); its objective name, model sizes, OGL rule and checkpoint formats derive from the record.

``ObjectiveConfig.name`` is a method (``ezvsl``, ``slavc``, ``fnac``, ``lvs``) or SSL-SaN's negatives on top of
one, ``sslsan+<method>``; plain ``sslsan`` means ``sslsan+ezvsl``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from vssl.errors import ConfigError
from vssl.models.method import Method
from vssl.models.objectives.base import BaseObjective, Batch
from vssl.models.objectives.ezvsl import METHOD as EZVSL_METHOD
from vssl.models.objectives.fnac import METHOD as FNAC_METHOD
from vssl.models.objectives.fnac import FNACConfig
from vssl.models.objectives.lvs import METHOD as LVS_METHOD
from vssl.models.objectives.lvs import LVSConfig
from vssl.models.objectives.slavc import METHOD as SLAVC_METHOD
from vssl.models.objectives.slavc import SLAVCConfig
from vssl.models.objectives.sslsan import SSLSaN, SSLSaNConfig

SSLSAN = "sslsan"
DEFAULT_SSLSAN_BASE = "ezvsl"

METHODS: dict[str, Method] = {
    m.name: m
    for m in (
        EZVSL_METHOD,
        FNAC_METHOD,
        SLAVC_METHOD,
        LVS_METHOD,
    )
}
"""The registry: every base method by name (`vssl.models.registry.register_method` adds one at run time)."""


@dataclass(frozen=True)
class ObjectiveConfig:
    """Which objective trains the model, and its parameters (a method's section is named after it)."""

    name: str = "sslsan"
    """ezvsl, slavc, fnac, lvs (positive-only) or sslsan+<one of them> (sslsan = sslsan+ezvsl)"""
    sslsan: SSLSaNConfig = field(default_factory=SSLSaNConfig)
    """used by sslsan and sslsan+<base>"""
    slavc: SLAVCConfig = field(default_factory=SLAVCConfig)
    """used by slavc (needs a slavc_* model size)"""
    fnac: FNACConfig = field(default_factory=FNACConfig)
    """used by fnac"""
    lvs: LVSConfig = field(default_factory=LVSConfig)
    """used by lvs (meant for an lvs_* model size)"""


def objective_names() -> tuple[str, ...]:
    """Every valid ``objective.name``: the registered methods, ``sslsan`` and ``sslsan+<method>``."""
    return (*METHODS, SSLSAN, *(f"{SSLSAN}+{name}" for name in METHODS))


OBJECTIVES = objective_names()
"""`objective_names` of the methods registered in vssl."""


def _base(name: str, cfg: ObjectiveConfig) -> BaseObjective:
    if name not in METHODS:
        raise ConfigError(f"unknown objective {cfg.name!r}; known: {list(objective_names())}")
    return METHODS[name].create(cfg)


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


__all__ = ["METHODS", "OBJECTIVES", "Batch", "Method", "ObjectiveConfig", "create_objective", "objective_names"]
