"""Localization metrics on batched tensors (SPEC §4). Maps are compared at 224x224.

Maps are compared at ``vssl.maps.EVAL_SIZE`` after ``vssl.maps.upsample`` (the map layer).
Conventions: ``maps`` are ``[N, H, W]`` absolute maps on a named scale; ``gt`` are ``[N, 224, 224]``
ground-truth maps in [0, 1]; a binarised prediction is a bool tensor of the same shape. Functions keep
the floating dtype they are given: the reference evaluators work in float64, and a pixel that lies
exactly on a threshold can flip between float32 and float64.
"""

from __future__ import annotations

import torch

CIOU_GRID = torch.linspace(0.0, 1.0, 21, dtype=torch.float64)  # x = 0, 0.05, ..., 1 (AUC and AOC)


def median_binarize(maps: torch.Tensor) -> torch.Tensor:
    """EZ-VSL protocol: min-max each map, keep pixels >= the value at sorted index floor(H*W/2).

    Min-max is monotone, so the kept pixels are those >= the raw map's value of the same rank.
    """
    flat = maps.flatten(1)
    thr = flat.kthvalue(flat.shape[1] // 2 + 1, dim=1).values  # the (k+1)-th smallest = sorted index k
    return (flat >= thr[:, None]).view_as(maps)


def adaptive_binarize(maps: torch.Tensor, area: torch.Tensor) -> torch.Tensor:
    """Top-k protocol: keep pixels >= the k-th largest value, k = ``area[i]`` (ground-truth pixel count).

    Uses the object's size as a prior; ``area`` 0 keeps nothing.
    """
    flat = maps.flatten(1)
    size = flat.shape[1]
    thr = torch.full((flat.shape[0], 1), torch.inf, dtype=flat.dtype)
    for i, k in enumerate(area.tolist()):
        if k > 0:  # k-th largest = (size - k + 1)-th smallest; k varies per map, so one selection per map
            thr[i] = flat[i].kthvalue(size - min(int(k), size) + 1).values
    return (flat >= thr).view_as(maps)


def ciou(pred: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
    """Consensus IoU per sample: sum(P*G) / (sum(G) + sum(P*[G=0])). ``[N, S, S] -> [N]`` (0 when both empty)."""
    p = pred.flatten(1).double()
    g = gt.flatten(1).double()
    inter = (p * g).sum(1)
    denom = g.sum(1) + (p * (g == 0)).sum(1)
    return torch.where(denom > 0, inter / denom.clamp(min=1e-300), torch.zeros_like(inter))


def iou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """IoU of two binarised maps per sample, ``[N, S, S] -> [N]``; both empty -> 1, one empty -> 0."""
    a, b = a.flatten(1), b.flatten(1)
    inter = (a & b).sum(1).double()
    union = (a | b).sum(1).double()
    return torch.where(union > 0, inter / union.clamp(min=1), torch.ones_like(inter))


def fraction_at_least(values: torch.Tensor, grid: torch.Tensor = CIOU_GRID) -> torch.Tensor:
    """For each x of ``grid``, the fraction of ``values`` >= x."""
    return (values.double()[None, :] >= grid[:, None]).double().mean(dim=1)


def ap50(cious: torch.Tensor) -> float:
    """Fraction of samples with cIoU >= 0.5."""
    return float((cious >= 0.5).double().mean())


def auc(cious: torch.Tensor) -> float:
    """Trapezoid area of x -> fraction with cIoU >= x over x = 0, 0.05, ..., 1."""
    return float(torch.trapezoid(fraction_at_least(cious), CIOU_GRID))


def pia(maps: torch.Tensor, threshold: float) -> torch.Tensor:
    """Proportion of image area above ``threshold`` per map, ``[N, S, S] -> [N]`` (lower is better)."""
    return (maps > threshold).flatten(1).double().mean(dim=1)


def aoc(pias: torch.Tensor) -> float:
    """Trapezoid area over t = 0..1 of the fraction of samples with pIA <= t (higher is better)."""
    fractions = (pias.double()[None, :] <= CIOU_GRID[:, None]).double().mean(dim=1)
    return float(torch.trapezoid(fractions, CIOU_GRID))


def harmonic_mean(a: float, b: float) -> float:
    return 0.0 if a + b <= 0 else 2 * a * b / (a + b)


def roc_auc(positive: torch.Tensor, negative: torch.Tensor) -> float:
    """P(score_pos > score_neg) + P(=)/2: the threshold-free ROC-AUC of two score sets (rank formula)."""
    pos, neg = positive.double().flatten(), negative.double().flatten()
    scores = torch.cat([pos, neg])
    order = scores.argsort()
    ranks = torch.empty_like(scores)
    ranks[order] = torch.arange(1, scores.numel() + 1, dtype=torch.float64)
    # average the ranks of ties so that equal scores count one half
    uniq, inverse = scores.unique(return_inverse=True)
    sums = torch.zeros_like(uniq).index_add_(0, inverse, ranks)
    counts = torch.zeros_like(uniq).index_add_(0, inverse, torch.ones_like(ranks))
    ranks = (sums / counts)[inverse]
    n_pos, n_neg = pos.numel(), neg.numel()
    return float((ranks[:n_pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))
