"""Learning-rate schedules: a pure function of the step, so a resumed run continues the same schedule."""

from __future__ import annotations

import math

import torch

LR_SCHEDULES = ("constant", "cosine")


def learning_rate(base: float, schedule: str, step: int, total: int) -> float:
    """The rate of update ``step`` (0-based) of ``total``: ``constant`` (the published recipes) or ``cosine``
    (half a cosine from ``base`` down to 0 over the run: the weights settle at the end, so the release, its
    BatchNorm moving averages included, depends less on where the last steps happened to land)."""
    if schedule == "constant" or total <= 0:
        return base
    return 0.5 * base * (1.0 + math.cos(math.pi * min(step, total) / total))


def set_learning_rate(optimizer: torch.optim.Optimizer, lr: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr
