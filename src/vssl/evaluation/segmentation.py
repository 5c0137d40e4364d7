"""AVSBench-style segmentation metrics on mask ground truth (SPEC §4), over the whole set.

* mIoU: per-sample IoU of the binarised map with the mask; a sample whose mask is empty is scored by
  the IoU of the backgrounds (predicting nothing is right), then averaged over samples.
* F-measure (beta^2 = 0.3): precision and recall of ``map >= t`` for 255 thresholds t in [0, 1) on the
  unit-scale map, averaged over the **whole set** for each t (the reference averaged per batch, so
  its number depended on the batch size); F at each t, the maximum reported with its t. As in the
  reference, a sample with an empty mask has precision = recall = 0 (0 / 0 counts as 0).
"""

from __future__ import annotations

import torch

BETA2 = 0.3
F_THRESHOLDS = torch.linspace(0.0, 1.0 - 1e-10, 255, dtype=torch.float64)


def mask_iou(pred: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """``[N, S, S]`` bool prediction and mask -> ``[N]`` IoU; empty masks use the background IoU."""
    p, g = pred.flatten(1), mask.flatten(1) > 0
    empty = ~g.any(1)
    p = torch.where(empty[:, None], ~p, p)
    g = torch.where(empty[:, None], ~g, g)
    inter, union = (p & g).sum(1).double(), (p | g).sum(1).double()
    return torch.where(union > 0, inter / union.clamp(min=1), torch.ones_like(inter))


def precision_recall_curves(unit_maps: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-sample precision and recall ``[N, 255]`` of ``map >= t`` for every t of ``F_THRESHOLDS``.

    One pass per map: each pixel falls in the bin of the largest threshold it reaches; counts of
    pixels (and of mask pixels) at or above each threshold are suffix sums of the bin counts.
    """
    flat, g = unit_maps.flatten(1).double(), (mask.flatten(1) > 0).double()
    n, k = flat.shape[0], F_THRESHOLDS.numel()
    # bin b = number of thresholds <= value, minus 1 (-1: below every threshold)
    bins = torch.bucketize(flat, F_THRESHOLDS, right=True) - 1
    valid = bins >= 0
    idx = bins.clamp(min=0)
    counts = torch.zeros(n, k, dtype=torch.float64).scatter_add_(1, idx, valid.double())
    hits = torch.zeros(n, k, dtype=torch.float64).scatter_add_(1, idx, valid.double() * g)
    predicted = counts.flip(1).cumsum(1).flip(1)
    tp = hits.flip(1).cumsum(1).flip(1)
    precision = tp / predicted.clamp(min=1e-20)
    recall = tp / g.sum(1, keepdim=True).clamp(min=1e-20)
    return precision, recall


def f_measure(precision: torch.Tensor, recall: torch.Tensor) -> dict[str, float]:
    """Whole-set F-measure from per-sample curves ``[N, 255]``: max over thresholds of F_beta(mean P, mean R)."""
    p, r = precision.mean(0), recall.mean(0)
    f = (1 + BETA2) * p * r / (BETA2 * p + r).clamp(min=1e-20)
    best = int(f.argmax())
    return {"f_measure": float(f[best]), "f_threshold": float(F_THRESHOLDS[best])}
