"""(ours) Does a model abstain on negative audio, or light up what is visible? Measures beyond the field's.

* ``hallucination``: per negative type, the share of negative maps whose peak falls inside the box of any
  object of the frame, sounding or silent (needs datasets that know every object: the synthetic benchmark). A
  model that learned "what is salient" points at objects whatever it hears;
* ``tpr_at_5fpr``: per negative type, the share of positive maps whose maximum exceeds the 95th percentile of
  that type's maxima: how many real sources survive a threshold that lets 5 % of those negatives through;
* ``below_half``: per condition, the share of maps whose maximum is at most 0.5 on (cos+1)/2 (cosine 0): what a
  user without calibration data sees with the fixed threshold 0.5;
* ``median_peak``: per condition, the median map maximum on (cos+1)/2;
* ``pointing``: the share of visible positive maps whose peak falls inside the sounding object's box;
* ``unseen``: per noise family never used in training, the separability (ROC-AUC of map maxima) against the
  positives.

A map's peak is the location of its largest value on the model's own grid: the largest value of the bilinear
224x224 upsampling lies at that grid node (a bilinear patch takes its extremes at its corners), mapped into the
frame as ``align_corners=True`` places it.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from vssl.maps import EVAL_SIZE

Box = tuple[float, float, float, float]
FPR = 0.05
HALF = 0.5


def peak_points(maps: torch.Tensor) -> torch.Tensor:
    """``[N, h, w]`` maps -> ``[N, 2]`` (x, y) of each map's largest value, in [0, 1] frame coordinates."""
    n, h, w = maps.shape
    flat = maps.flatten(1).argmax(dim=1)
    rows, cols = flat // w, flat % w
    return torch.stack([_node(cols, w), _node(rows, h)], dim=1)


def _node(index: torch.Tensor, size: int) -> torch.Tensor:
    """Grid node ``index`` of ``size`` nodes spread over the frame as ``align_corners=True`` does: the pixel
    ``index * (S - 1) / (size - 1)`` of S = 224, its centre as a fraction of the frame."""
    pixel = index.double() * (EVAL_SIZE - 1) / max(size - 1, 1)
    return (pixel + 0.5) / EVAL_SIZE


def inside_any(points: torch.Tensor, boxes: Sequence[Sequence[Box]]) -> torch.Tensor:
    """``[N]`` bool: point i lies in one of ``boxes[i]`` (normalised ``(x0, y0, x1, y1)``, max exclusive)."""
    hits = [
        any(x0 <= float(x) < x1 and y0 <= float(y) < y1 for x0, y0, x1, y1 in frame_boxes)
        for (x, y), frame_boxes in zip(points.tolist(), boxes, strict=True)
    ]
    return torch.tensor(hits, dtype=torch.bool)


def tpr_at_fpr(positive: torch.Tensor, negative: torch.Tensor, fpr: float = FPR) -> float | None:
    """Share of ``positive`` maxima above the ``1 - fpr`` quantile of the ``negative`` maxima."""
    if not positive.numel() or not negative.numel():
        return None
    bar = torch.quantile(negative.double(), 1.0 - fpr)
    return float((positive.double() > bar).double().mean())


def _share(x: torch.Tensor) -> float | None:
    return float(x.double().mean()) if x.numel() else None


def abstention_metrics(
    peaks: dict[str, torch.Tensor],
    maps: dict[str, torch.Tensor],
    owners: dict[str, torch.Tensor],
    objects: Sequence[Sequence[Box]],
    sources: Sequence[Sequence[Box]],
    visible: torch.Tensor,
) -> dict[str, object]:
    """The measures of the module doc for one evaluated split.

    ``peaks``: map maxima on (cos+1)/2 per condition (``positive`` ``[N]``, each negative type ``[M]``);
    ``maps``: the cosine maps of the same conditions (their peak locations); ``owners``: the item of each
    negative map; ``objects``: every item's object boxes (empty when unknown); ``sources``: every item's
    sounding boxes; ``visible``: the items whose own audio counts as positive.
    """
    negatives = [name for name in peaks if name != "positive"]
    positive = peaks["positive"][visible]
    known = torch.tensor([bool(boxes) for boxes in objects], dtype=torch.bool)
    hallucination: dict[str, float | None] = {}
    for name in negatives:
        owned = known[owners[name]]
        hits = inside_any(peak_points(maps[name][owned]), [objects[int(i)] for i in owners[name][owned]])
        hallucination[name] = _share(hits)
    pointing = inside_any(
        peak_points(maps["positive"][visible]), [b for b, v in zip(sources, visible, strict=True) if v]
    )
    return {
        "hallucination": hallucination,
        "tpr_at_5fpr": {name: tpr_at_fpr(positive, peaks[name]) for name in negatives},
        "below_half": {"positive": _share(positive <= HALF)} | {n: _share(peaks[n] <= HALF) for n in negatives},
        "median_peak": {"positive": _median(positive)} | {n: _median(peaks[n]) for n in negatives},
        "pointing": _share(pointing),
    }


def _median(x: torch.Tensor) -> float | None:
    return float(x.double().median()) if x.numel() else None
