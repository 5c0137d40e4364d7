"""BatchNorm layers and their modes: which statistics normalise a pass, and which passes update them."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch


def batchnorms(module: torch.nn.Module) -> list[torch.nn.modules.batchnorm._BatchNorm]:
    """Every BatchNorm layer of ``module`` (SyncBatchNorm included)."""
    return [m for m in module.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]


@contextmanager
def running_statistics(module: torch.nn.Module) -> Iterator[None]:
    """Inside the block, ``module``'s BatchNorm layers normalise by their running statistics and do not update
    them, as at inference; gradients flow as usual. The layers' modes are restored on exit."""
    training = [m for m in batchnorms(module) if m.training]
    for m in training:
        m.train(False)
    try:
        yield
    finally:
        for m in training:
            m.train(True)
