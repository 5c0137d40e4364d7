"""Set-level results from per-sample values (``scoring.PerSample``): the RESULT.json of ``vssl score``.

Every value is a fraction in [0, 1] (the reference code prints some x100). Positive metrics use the
visible samples only; negative metrics pool every negative map (all repeats) of every sample.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import torch

from vssl.evaluation import metrics as M
from vssl.evaluation import segmentation as seg
from vssl.evaluation import slavc
from vssl.evaluation.gt import GroundTruth
from vssl.evaluation.scoring import POSITIVE_PROTOCOLS, PerSample


def _mean(x: torch.Tensor) -> float | None:
    return float(x.double().mean()) if x.numel() else None


def positive_metrics(values: dict[str, torch.Tensor], visible: torch.Tensor) -> dict[str, float | None]:
    """``<protocol>_ciou_mean``, ``<protocol>_ap50``, ``<protocol>_auc`` over visible samples."""
    out: dict[str, float | None] = {}
    for protocol in POSITIVE_PROTOCOLS:
        cious = values[f"ciou_{protocol}"][visible]
        out[f"{protocol}_ciou_mean"] = _mean(cious)
        out[f"{protocol}_ap50"] = M.ap50(cious) if cious.numel() else None
        out[f"{protocol}_auc"] = M.auc(cious) if cious.numel() else None
    return out


def similarity_stats(pos: torch.Tensor, neg: torch.Tensor) -> dict[str, float | None]:
    """(ours) mean/std of max-pooled cosine similarity and d' = (mean_pos - mean_neg) / pooled std."""
    pos, neg = pos.double(), neg.double()
    if not pos.numel() or not neg.numel():
        return {"mean": _mean(neg), "std": None, "d_prime": None}
    pooled = ((pos.var(unbiased=False) + neg.var(unbiased=False)) / 2).sqrt()
    return {
        "mean": float(neg.mean()),
        "std": float(neg.std(unbiased=False)),
        "d_prime": float((pos.mean() - neg.mean()) / pooled) if pooled > 0 else 0.0,
    }


def grouped_metrics(cious: torch.Tensor, groups: list[str | None], visible: torch.Tensor) -> dict[str, Any] | None:
    """IS3: per image group (two sources), the pair's min cIoU; iIoU = mean of [min >= 0.5], iAUC its AUC."""
    members: dict[str, list[int]] = defaultdict(list)
    for i, group in enumerate(groups):
        if group is not None and bool(visible[i]):
            members[group].append(i)
    if not members:
        return None
    worst = torch.stack([cious[idx].min() for idx in members.values()])
    return {"iiou": M.ap50(worst), "iauc": M.auc(worst), "groups": len(members)}


def summarise(
    per: PerSample, gt: GroundTruth, threshold: float, threshold_source: str, protocol: dict[str, str]
) -> dict[str, Any]:
    """The full result dictionary (see module doc)."""
    visible = gt.visible
    pos = per.positive
    result: dict[str, Any] = {
        "n": {"samples": len(gt), "visible": int(visible.sum()), "non_visible": int((~visible).sum())},
        "threshold": threshold,
        "threshold_source": threshold_source,
        "protocol": protocol,
        "positive": positive_metrics(pos, visible),
        "negatives": {},
    }
    result["n"]["negatives"] = {name: int(v["pia"].numel()) for name, v in per.negatives.items()}
    audible = gt.audible  # positives compared with negatives
    pos_peak = pos["peak"][audible]
    for name, neg in per.negatives.items():
        result["negatives"][name] = {
            "pia": _mean(neg["pia"]),
            "aoc": M.aoc(neg["pia"]),
            "iou_with_positive": _mean(neg["iou_with_positive"]),
            "separability": M.roc_auc(pos_peak, neg["peak"]) if pos_peak.numel() else None,
            "similarity": similarity_stats(pos["similarity"][audible], neg["similarity"]),
        }
    result["positive"]["similarity"] = {
        "mean": _mean(pos["similarity"][audible]),
        "std": float(pos["similarity"][audible].double().std(unbiased=False)) if pos_peak.numel() else None,
    }
    negs = result["negatives"].values()
    ciou_mean, auc = result["positive"]["universal_ciou_mean"], result["positive"]["universal_auc"]
    result["f_pos_neg"] = result["f_auc_aoc"] = None
    if negs and ciou_mean is not None:
        clear = sum(1.0 - n["pia"] for n in negs) / len(negs)
        result["f_pos_neg"] = M.harmonic_mean(ciou_mean, clear)
        result["f_auc_aoc"] = M.harmonic_mean(auc, sum(n["aoc"] for n in negs) / len(negs))
    result["slavc"] = slavc.slavc_metrics(visible, pos["ciou_slavc"], pos["confidence"], pos["area"])
    is3 = {p: grouped_metrics(pos[f"ciou_{p}"], gt.groups, visible) for p in ("universal", "median")}
    if any(is3.values()):
        result["is3"] = is3
    if "mask_iou" in pos:
        masked = ~torch.isnan(pos["mask_iou"])
        result["avsbench"] = {
            "miou": _mean(pos["mask_iou"][masked]),
            **seg.f_measure(pos["mask_precision"][masked], pos["mask_recall"][masked]),
            "n": int(masked.sum()),
        }
    result["gt_issues"] = list(gt.issues)
    return result
