"""SLAVC extended-set metrics (SPEC §4): detection of *whether* a visible source sounds, and where.

Every sample gets a confidence (mean of the top quarter of its 224x224 map) and a cIoU (of the
min-max map >= 0.5). At a confidence threshold t a sample is detected when confidence >= t:
true positive if detected with cIoU >= 0.5; false positive if detected with cIoU < 0.5 or with no
visible source; false negative if not detected but visible. Undefined precision/recall count as 1.
All functions are vectorised over thresholds: ``[T]`` thresholds x ``[N]`` samples.
"""

from __future__ import annotations

import torch

from vssl.evaluation import metrics as M

# Object-size bins on the ground-truth area in 224-pixel units (SLAVC's COCO-like bins).
SIZE_BINS = {"small": (0, 32**2), "medium": (32**2, 96**2), "large": (96**2, 144**2), "huge": (144**2, 10_000**2)}


def confidence(maps: torch.Tensor) -> torch.Tensor:
    """Mean of the top quarter of each map, ``[N, S, S] -> [N]`` (any monotone scale ranks the same).

    Selection instead of a sort: the values above the k-th largest, plus as many copies of it as ties need.
    """
    flat = maps.flatten(1)
    k = flat.shape[1] // 4
    kth = flat.kthvalue(flat.shape[1] - k + 1, dim=1, keepdim=True).values
    above = flat > kth
    total = torch.where(above, flat, torch.zeros_like(flat)).sum(1) + (k - above.sum(1)) * kth[:, 0]
    return total / k


def precision_recall(
    visible: torch.Tensor, cious: torch.Tensor, conf: torch.Tensor, thresholds: torch.Tensor, iou_thr: float = 0.5
) -> tuple[torch.Tensor, torch.Tensor]:
    """Precision and recall ``[T]`` at each confidence threshold."""
    detected = conf.double()[None, :] >= thresholds.double()[:, None]
    good = (visible & (cious >= iou_thr))[None, :]
    tp = (detected & good).sum(1).double()
    fp = (detected & ~good).sum(1).double()
    fn = (~detected & visible[None, :]).sum(1).double()
    precision = torch.where(tp + fp > 0, tp / (tp + fp).clamp(min=1), torch.ones_like(tp))
    recall = torch.where(tp + fn > 0, tp / (tp + fn).clamp(min=1), torch.ones_like(tp))
    return precision, recall


def average_precision(visible: torch.Tensor, cious: torch.Tensor, conf: torch.Tensor, iou_thr: float = 0.5) -> float:
    """AP over descending sorted confidences (every max(1, N//200)-th, the largest dropped), precision envelope."""
    stride = max(1, conf.numel() // 200)
    thresholds = conf.double().sort().values[:-1].flip(0)[::stride]
    if thresholds.numel() < 2:
        return 0.0
    precision, recall = precision_recall(visible, cious, conf, thresholds, iou_thr)
    envelope = precision.flip(0).cummax(0).values.flip(0)
    return float((envelope[:-1] * (recall[1:] - recall[:-1])).sum())


def f1_curve(visible: torch.Tensor, cious: torch.Tensor, conf: torch.Tensor, iou_thr: float = 0.5) -> torch.Tensor:
    """F1 at every (N//10)-th ascending sorted confidence, ``[~10]``."""
    thresholds = conf.double().sort().values[:: max(1, conf.numel() // 10)]
    p, r = precision_recall(visible, cious, conf, thresholds, iou_thr)
    return torch.where(p + r > 0, 2 * p * r / (p + r).clamp(min=1e-300), torch.zeros_like(p))


def subset_metrics(visible: torch.Tensor, cious: torch.Tensor, conf: torch.Tensor) -> dict[str, float]:
    """Precision (everything detected), AP, AUC (visible samples) of one subset."""
    everything = torch.tensor([-torch.inf], dtype=torch.float64)
    precision, _ = precision_recall(visible, cious, conf, everything)
    vis_cious = cious[visible]
    return {
        "precision": float(precision[0]),
        "ap": average_precision(visible, cious, conf),
        "auc_visible": M.auc(vis_cious) if vis_cious.numel() else float("nan"),
    }


def slavc_metrics(visible: torch.Tensor, cious: torch.Tensor, conf: torch.Tensor, area: torch.Tensor) -> dict:
    """All SLAVC extended-set metrics; ``area`` = ground-truth pixel count at 224 (for the size bins)."""
    f1 = f1_curve(visible, cious, conf)
    out = subset_metrics(visible, cious, conf)
    out["f1"] = [float(v) for v in f1]
    out["max_f1"] = float(f1.max())
    vis = subset_metrics(visible[visible], cious[visible], conf[visible]) if visible.any() else {}
    out["visible"] = vis
    out["by_size"] = {}
    for name, (lo, hi) in SIZE_BINS.items():
        keep = visible & (area >= lo) & (area < hi)
        out["by_size"][name] = {
            "n": int(keep.sum()),
            **(subset_metrics(visible[keep], cious[keep], conf[keep]) if keep.any() else {}),
        }
    return out
