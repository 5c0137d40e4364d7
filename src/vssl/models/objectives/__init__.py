"""Training objectives, registered by name. Adding a method = one module + one line in ``create_objective``."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from vssl.errors import ConfigError
from vssl.models.objectives.ezvsl import EZVSL, Batch
from vssl.models.objectives.sslsan import SSLSaN, SSLSaNConfig

OBJECTIVES = ("ezvsl", "sslsan")


@dataclass(frozen=True)
class ObjectiveConfig:
    """Which objective trains the model, and its parameters."""

    name: str = "sslsan"  # one of: ezvsl (positive-only baseline), sslsan (EZ-VSL + silence/noise negatives)
    sslsan: SSLSaNConfig = field(default_factory=SSLSaNConfig)  # used when name == "sslsan"


def create_objective(cfg: ObjectiveConfig, num_samples: int, seed: int) -> torch.nn.Module:
    """The objective module; ``num_samples`` and ``seed`` set up reproducible negative audio."""
    if cfg.name == "ezvsl":
        return EZVSL()
    if cfg.name == "sslsan":
        return SSLSaN(cfg.sslsan, num_samples=num_samples, seed=seed)
    raise ConfigError(f"unknown objective {cfg.name!r}; known: {list(OBJECTIVES)}")


__all__ = ["OBJECTIVES", "Batch", "ObjectiveConfig", "create_objective"]
