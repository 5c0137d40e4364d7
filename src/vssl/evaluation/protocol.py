"""The positive + negative evaluation protocol of the demo and of ``vssl eval`` (SPEC §4).

Protocol, stated in every report:
* maps are cosine maps at the model's native resolution, upsampled to 224x224 (bilinear,
  align_corners=True); absolute scale (cos + 1) / 2;
* universal thresholds calibrated on the calibration split from the pooled negative maps
  (silence, noise, offscreen); binarisation ``map > threshold``; the headline uses ``maxq3``;
* ``median`` protocol (EZ-VSL): min-max map, pixels >= the value at sorted index 224*224/2;
* ground truth: union of the sounding object's boxes (VGG-SS style), binary;
* ``separability`` (ours): ROC-AUC of the per-map maximum (at 224x224), positive maps vs each negative type.
"""

from __future__ import annotations

from typing import Any

import torch

from vssl.evaluation import metrics as M
from vssl.evaluation.maps import NEGATIVES, EvalMaps
from vssl.evaluation.thresholds import calibrate

HEADLINE_THRESHOLD = "maxq3"
PROTOCOL = {
    "map_scale": "(cos+1)/2",
    "map_size": M.EVAL_SIZE,
    "upsampling": "bilinear, align_corners=True",
    "threshold": f"universal {HEADLINE_THRESHOLD}, calibrated on the calibration split (silence+noise+offscreen)",
    "binarise": "map > threshold",
    "median_protocol": "min-max map >= value at sorted index 224*224/2",
    "gt": "union of boxes (VGG-SS style)",
    "ogl": False,
    "separability": "ours: ROC-AUC of per-map maxima, positive vs negative",
}


def calibrate_from(cal: EvalMaps) -> dict[str, float]:
    """Universal thresholds on the (cos+1)/2 scale from all negative maps of a calibration run, at 224x224
    (the resolution at which they binarise maps: upsampling can lower a 7x7 map's maximum)."""
    negatives = torch.cat([cal.maps[n] for n in NEGATIVES])
    return calibrate(M.upsample(M.to_unit_scale(negatives)))


def evaluate(test: EvalMaps, thresholds: dict[str, float]) -> dict[str, Any]:
    """All headline metrics of one model on a test run; every value a fraction in [0, 1]."""
    t = thresholds[HEADLINE_THRESHOLD]
    visible = [i for i, item in enumerate(test.items) if item.boxes]
    gt = M.box_gt_maps([list(test.items[i].boxes) for i in visible])
    pos = M.upsample(M.to_unit_scale(test.maps["positive"][visible]))
    cious = M.ciou(pos > t, gt)
    median_cious = M.ciou(M.median_binarize(pos), gt)
    pos_peak = M.peak(test.maps["positive"])
    result: dict[str, Any] = {
        "thresholds": dict(thresholds),
        "ciou": float(cious.mean()),
        "ap50": M.ap50(cious),
        "auc": M.auc(cious),
        "median_ap50": M.ap50(median_cious),
        "median_auc": M.auc(median_cious),
        "pia": {},
        "aoc": {},
        "separability": {},
    }
    for neg in NEGATIVES:
        neg_maps = M.upsample(M.to_unit_scale(test.maps[neg]))
        pias = M.pia(neg_maps, t)
        result["pia"][neg] = float(pias.mean())
        result["aoc"][neg] = M.aoc(pias)
        result["separability"][neg] = M.roc_auc(pos_peak, M.peak(test.maps[neg]))
    mean_clear = sum(1.0 - result["pia"][n] for n in NEGATIVES) / len(NEGATIVES)
    result["f_pos_neg"] = M.harmonic_mean(result["ciou"], mean_clear)
    result["n"] = {"test": len(test.items), "visible": len(visible)}
    return result
