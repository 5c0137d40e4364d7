"""BatchNorm layers and their modes: which statistics normalise a pass, and which passes update them."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial

import torch
import torch.nn.functional as F


def batchnorms(module: torch.nn.Module) -> list[torch.nn.modules.batchnorm._BatchNorm]:
    """Every BatchNorm layer of ``module`` (SyncBatchNorm included)."""
    return [m for m in module.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]


Statistics = dict[torch.nn.Module, tuple[torch.Tensor, torch.Tensor]]


@contextmanager
def recording_statistics(module: torch.nn.Module, store: Statistics) -> Iterator[None]:
    """Inside the block, every BatchNorm layer of ``module`` that is in training mode records into ``store`` the
    batch statistics it normalises its input by (mean and biased variance per channel, detached); the layers
    compute and update their running statistics as usual."""

    def record(layer: torch.nn.Module, args: tuple[torch.Tensor, ...]) -> None:
        x = args[0].detach()
        x = x.float() if x.dtype in (torch.float16, torch.bfloat16) else x  # float32 or float64 statistics
        dims = [0, *range(2, x.dim())]
        store[layer] = (x.mean(dims), x.var(dims, unbiased=False))

    handles = [m.register_forward_pre_hook(record) for m in batchnorms(module) if m.training]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


@contextmanager
def recorded_statistics(module: torch.nn.Module, store: Statistics) -> Iterator[None]:
    """Inside the block, every BatchNorm layer of ``module`` with statistics in ``store`` normalises by them
    (constants: no gradient flows into the pass they came from) and updates nothing; other layers are unchanged."""
    layers = [m for m in batchnorms(module) if m in store]
    for m in layers:
        m.forward = partial(_normalise, m, *store[m])  # an instance attribute shadows the class's forward
    try:
        yield
    finally:
        for m in layers:
            del m.forward


def _normalise(
    layer: torch.nn.modules.batchnorm._BatchNorm, mean: torch.Tensor, var: torch.Tensor, x: torch.Tensor
) -> torch.Tensor:
    """``layer``'s affine normalisation of ``x`` by the given statistics."""
    return F.batch_norm(x, mean, var, layer.weight, layer.bias, training=False, momentum=0.0, eps=layer.eps)
