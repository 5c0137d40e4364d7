"""Precise BatchNorm statistics: recompute the running statistics of a trained model before it is released.

During training, BatchNorm normalises by each batch's statistics and keeps an exponential moving average
(momentum 0.1: the last ~10 batches, taken while the weights were still moving) for inference. Where the
two differ, a model behaves differently at inference than it learned to: SSL-SaN's silent clip, an outlier
in every training batch, is the case in point (see ``models/objectives/sslsan.py``). Recomputing the
statistics with the final weights, as the plain average over ``N`` batches composed exactly as in training
(the objective's forward, negatives included), removes the lag (Wu & Johnson, "Rethinking 'Batch' in
BatchNorm", 2021, "PreciseBN").

Only the running statistics of the BatchNorm layers that are in training mode change (layers frozen by
``TrainConfig.freeze_audio_norm_at`` keep theirs); every other parameter and buffer is restored, so side
effects of the objective's forward (a SLAVC momentum step) do not persist. Under DDP every process
averages its own batches and the statistics are then averaged over the processes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch
import torch.distributed as dist
from torch import nn

_STATS = ("running_mean", "running_var", "num_batches_tracked")


def _recomputed(model: nn.Module) -> dict[str, nn.modules.batchnorm._BatchNorm]:
    """The BatchNorm layers in training mode (the ones whose statistics are recomputed), by name."""
    return {
        name: m
        for name, m in model.named_modules()
        if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.training and m.track_running_stats
    }


@torch.no_grad()
def precise_batchnorm(model: nn.Module, forward: Callable[[object], object], batches: Iterable[object]) -> int:
    """Recompute ``model``'s BatchNorm running statistics as the average over ``batches``.

    ``model`` must already be in the mode it trains in (``train()``, frozen layers in ``eval()``);
    ``forward(batch)`` runs one training forward pass (its output is discarded). Returns the number of
    batches used (0: nothing to do, the model is unchanged).
    """
    norms = _recomputed(model)
    if not norms:
        return 0
    keep = {f"{name}.{stat}" for name in norms for stat in _STATS}
    saved = {key: value.clone() for key, value in model.state_dict().items() if key not in keep}
    momenta = {name: m.momentum for name, m in norms.items()}
    for m in norms.values():
        m.reset_running_stats()
        m.momentum = None  # cumulative average over the batches seen
    used = 0
    try:
        for batch in batches:
            forward(batch)
            used += 1
    finally:
        for name, m in norms.items():
            m.momentum = momenta[name]
    if not used:
        raise ValueError("precise BatchNorm got no batch")
    if dist.is_available() and dist.is_initialized():
        for m in norms.values():
            for stat in (m.running_mean, m.running_var):
                dist.all_reduce(stat)
                stat /= dist.get_world_size()
    model.load_state_dict(saved, strict=False)
    return used
