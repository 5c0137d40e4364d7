"""Localization metrics on batched tensors (SPEC §4). Maps are compared at 224x224.

Conventions: ``maps`` are ``[N, H, W]`` absolute maps on a named scale; ``gt`` are ``[N, 224, 224]``
ground-truth maps in [0, 1]; a binarised prediction is a bool tensor of the same shape.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

EVAL_SIZE = 224
CIOU_GRID = torch.linspace(0.0, 1.0, 21, dtype=torch.float64)  # x = 0, 0.05, ..., 1 (AUC and AOC)


def upsample(maps: torch.Tensor, size: int = EVAL_SIZE) -> torch.Tensor:
    """``[N, h, w] -> [N, size, size]``, bilinear with align_corners=True (the reference test code)."""
    return F.interpolate(maps[:, None].float(), size=(size, size), mode="bilinear", align_corners=True)[:, 0]


def peak(maps: torch.Tensor) -> torch.Tensor:
    """Per-map maximum at the evaluation resolution, ``[N, h, w] -> [N]`` (what a threshold compares with)."""
    return upsample(maps).flatten(1).amax(dim=1)


def to_unit_scale(cosine: torch.Tensor) -> torch.Tensor:
    """Cosine in [-1, 1] -> (cos + 1) / 2 in [0, 1], the EZ-VSL family's absolute scale."""
    return (cosine + 1.0) / 2.0


def box_gt_maps(boxes: list[list[tuple[float, float, float, float]]], size: int = EVAL_SIZE) -> torch.Tensor:
    """VGG-SS style ground truth: union of each sample's boxes (normalised xyxy) as a binary map ``[N, S, S]``."""
    gt = torch.zeros(len(boxes), size, size)
    for i, sample_boxes in enumerate(boxes):
        for x0, y0, x1, y1 in sample_boxes:
            gt[i, int(y0 * size) : int(y1 * size), int(x0 * size) : int(x1 * size)] = 1.0
    return gt


def minmax(maps: torch.Tensor) -> torch.Tensor:
    """Per-map min-max normalisation of ``[N, H, W]`` (a flat map becomes all zeros)."""
    flat = maps.flatten(1)
    lo = flat.min(dim=1, keepdim=True).values
    hi = flat.max(dim=1, keepdim=True).values
    return ((flat - lo) / (hi - lo).clamp(min=1e-12)).view_as(maps)


def median_binarize(maps: torch.Tensor) -> torch.Tensor:
    """EZ-VSL protocol: min-max each map, keep pixels >= the value at sorted index floor(H*W/2)."""
    norm = minmax(maps).flatten(1)
    thr = norm.sort(dim=1).values[:, norm.shape[1] // 2]
    return (norm >= thr[:, None]).view_as(maps)


def ciou(pred: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
    """Consensus IoU per sample: sum(P*G) / (sum(G) + sum(P*[G=0])). ``[N, S, S] -> [N]``."""
    p = pred.flatten(1).double()
    g = gt.flatten(1).double()
    inter = (p * g).sum(1)
    return inter / (g.sum(1) + (p * (g == 0)).sum(1)).clamp(min=1e-12)


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
    """P(score_pos > score_neg) + P(=)/2: the threshold-free ROC-AUC of two score sets."""
    pos = positive.double()[:, None]
    neg = negative.double()[None, :]
    return float(((pos > neg).double() + 0.5 * (pos == neg).double()).mean())
