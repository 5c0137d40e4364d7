"""The positive + negative evaluation protocol of ``vssl eval`` and the demo (SPEC §4).

A model's cosine maps are scored on the (cos+1)/2 scale at 224x224 (``scoring``); universal thresholds
are calibrated on a calibration split from the pooled negative maps (silence, noise, offscreen) and
the headline binarisation is ``map > maxq3``. ``headline`` reduces the full result to the demo's
contract (``report.json`` -> methods -> M); ``separability`` (ours) is the ROC-AUC of per-map maxima,
positive vs each negative type.
"""

from __future__ import annotations

from typing import Any

from vssl.evaluation import gt as G
from vssl.evaluation import metrics as M
from vssl.evaluation.abstention import abstention_metrics
from vssl.evaluation.maps import NEGATIVES, EvalMaps, offscreen_rule
from vssl.evaluation.retrieval import recall_at_k
from vssl.evaluation.scoring import ScoreConfig, calibrate_maps, negative_maxima, score
from vssl.evaluation.summary import summarise

# The demo's protocol: every negative map weighs one in calibration (ours), as when its README figures were
# measured over seeds; `vssl eval` weighs each negative type alike by default (ScoreConfig.negative_pool).
DEFAULT = ScoreConfig(negative_pool="maps")
HEADLINE_THRESHOLD = DEFAULT.rule


def protocol_of(cfg: ScoreConfig) -> dict[str, str]:
    """The protocol statement of an evaluation with calibrated universal thresholds."""
    return {
        **cfg.protocol(),
        "threshold": f"universal {cfg.rule}, calibrated on the calibration split (silence+noise+offscreen)",
        "separability": "ours: ROC-AUC of per-map maxima, positive vs negative",
    }


PROTOCOL = protocol_of(DEFAULT)


def calibrate_from(cal: EvalMaps, cfg: ScoreConfig = DEFAULT) -> dict[str, float]:
    """Universal thresholds from all negative maps of a calibration run, at 224x224 (the resolution at
    which maps are binarised: upsampling can lower a 7x7 map's maximum)."""
    return calibrate_maps({n: cal.maps[n] for n in NEGATIVES}, cfg)


def full_result(run: EvalMaps, thresholds: dict[str, float], cfg: ScoreConfig = DEFAULT) -> dict[str, Any]:
    """Every metric of one model on one evaluated split, plus retrieval and the negatives' seeds."""
    gt = G.from_items(run.items)
    t = thresholds[cfg.rule]
    per = score(run.map_set(), gt, t, cfg)
    result = summarise(per, gt, t, f"calibrated ({cfg.rule})", protocol_of(cfg))
    result["thresholds"] = dict(thresholds)
    result["negative_seeds"] = list(run.seeds)
    result["offscreen_rule"] = offscreen_rule(run.items)
    if run.similarity is not None:
        result["retrieval"] = recall_at_k(run.similarity)
    peaks = {"positive": per.positive["peak"]} | {name: v["peak"] for name, v in per.negatives.items()}
    objects, sources = [item.objects for item in run.items], [item.boxes for item in run.items]
    audible = gt.audible
    result["abstention"] = abstention_metrics(peaks, run.maps, run.owners, objects, sources, audible)
    positive = per.positive["peak"][audible]
    result["abstention"]["unseen"] = {
        family: M.roc_auc(positive, negative_maxima({family: maps}, cfg)) for family, maps in run.unseen.items()
    }
    result["_per_sample"] = per  # dropped before writing JSON; used for CSV and figures
    return result


def headline(result: dict[str, Any]) -> dict[str, Any]:
    """The demo contract M: thresholds, ciou, ap50, auc, pia/aoc/separability per negative, f_pos_neg, and
    (ours, `vssl.evaluation.abstention`) hallucination, tpr_at_5fpr, below_half, median_peak, pointing, unseen."""
    pos, negs = result["positive"], result["negatives"]
    return {
        "thresholds": result["thresholds"],
        "ciou": pos["universal_ciou_mean"],
        "ap50": pos["universal_ap50"],
        "auc": pos["universal_auc"],
        "adaptive_ap50": pos["adaptive_ap50"],
        "median_ap50": pos["median_ap50"],
        "median_auc": pos["median_auc"],
        "pia": {n: negs[n]["pia"] for n in NEGATIVES},
        "aoc": {n: negs[n]["aoc"] for n in NEGATIVES},
        "separability": {n: negs[n]["separability"] for n in NEGATIVES},
        "f_pos_neg": result["f_pos_neg"],
        **result["abstention"],
        "n": {"test": result["n"]["samples"], "visible": result["n"]["visible"]},
    }


def evaluate(test: EvalMaps, thresholds: dict[str, float]) -> dict[str, Any]:
    """The demo's headline metrics of one model on a test run; every value a fraction in [0, 1]."""
    return headline(full_result(test, thresholds))
