"""``vssl eval``: run a model over a dataset under positive, silence, noise and offscreen audio, and report.

Evaluation never leaves an item out on its own: the dataset reader's exclusions (annotation defects,
missing files of a training-style format; see :mod:`vssl.data.formats`) are stated in the report with
their count and reason (``items``), and an unreadable image or audio file stops the evaluation with a
`MediaError` naming it (`compute_maps`): metrics over a silently smaller split are not that split's.

Writes into ``OUT``: ``report.json`` (every metric, protocol, seeds, counts), ``report.md``,
``per_sample.csv`` and ``figures/`` (maxima histogram, pIA- and cIoU-vs-threshold curves with the
calibrated thresholds marked, example grid). Universal thresholds come from the dataset's calibration
split when it has one (``calibration_split``), else from the model folder's stored calibration; with
``write_calibration`` the thresholds calibrated here are stored back into the model folder.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from vssl.config import to_dict
from vssl.data.formats import read_items
from vssl.data.items import AVItem
from vssl.devices import require_device
from vssl.errors import ConfigError, VsslError
from vssl.evaluation import report as R
from vssl.evaluation.maps import REFERENCE_SEEDS, EvalMaps, NegativeAudio, compute_maps
from vssl.evaluation.ogl_maps import object_maps, with_ogl
from vssl.evaluation.protocol import calibrate_from, full_result, protocol_of
from vssl.evaluation.scoring import ScoreConfig
from vssl.evaluation.thresholds import PUBLISHED_PREFIX, published_thresholds
from vssl.models.localizer import AVLocalizer
from vssl.models.release import load_model, read_release_config, update_release_config

log = logging.getLogger(__name__)


@dataclass
class EvalConfig:
    """What to evaluate and how."""

    model: str = ""
    """model folder (vssl train / convert) or a size name (random weights, for smoke tests)"""
    data: str = ""
    """data spec FORMAT:ROOT, e.g. synth:./vssl-demo/data or vggss:/data/vggss"""
    split: str = "test"
    """the evaluated split"""
    calibration_split: str | None = "calibration"
    """split calibrating the universal thresholds (disjoint from the evaluated one); none: the model folder's stored
    calibration"""
    repeats: int = 10
    """negative draws (noise clip, offscreen partners) pooled, as the reference's 10 seeds"""
    seed: int = 0
    """seed of the negative draws (each repeat's seed is recorded in the report)"""
    batch_size: int = 32
    """images encoded at a time"""
    device: str = "cpu"
    """torch device: cpu, cuda, cuda:1, ..."""
    write_calibration: bool = False
    """store the thresholds calibrated here in the model folder"""
    examples: int = 4
    """rows of the example grid"""
    ogl: str | None = None
    """also report with OGL: "imagenet" (torchvision weights) or a resnet18 weights file"""
    ogl_method: str = "ezvsl"
    """OGL mixing rule: ezvsl | fnac (min-max, alpha 0.4), slavc (fixed scales, 0.9) or icassp25 (raw maps, 0.4 AV +
    0.6 OBJ, as the ICASSP'25 code)"""
    protocol: str = "vssl"
    """vssl, or icassp25: the ICASSP'25 code's evaluation (10 reference seeds, unclipped noise, (cos+1)/2 for the
    EZ-VSL family and raw cosine for the LVS family, its OGL rule); the log on negative spectrograms stays"""
    threshold: str = ""
    """empty: calibrated on calibration_split (or stored with the model); published:<model>: the ICASSP'25 code's
    hard-coded thresholds of that model (ezvsl, slavc, fnac, lvs, ssltie, sslalign), on the scale they were published
    on"""
    negatives: NegativeAudio = field(default_factory=NegativeAudio)
    score: ScoreConfig = field(default_factory=ScoreConfig)


PROTOCOLS = ("vssl", "icassp25")


def resolve(cfg: EvalConfig, model: AVLocalizer) -> EvalConfig:
    """``cfg`` with its protocol's settings applied: ``icassp25`` pins the repeats (10), the reference seeds,
    unclipped noise, the map scale of the model's family and the OGL rule; ``published:<model>`` thresholds pin
    the threshold scale they were published on. The log on silence and noise spectrograms stays (ours: the
    ICASSP'25 code skipped it, a bug) unless ``negatives.log`` is False."""
    if cfg.protocol not in PROTOCOLS:
        raise ConfigError(f"eval: protocol {cfg.protocol!r} unknown; choose one of {list(PROTOCOLS)}")
    if cfg.protocol == "icassp25":
        lvs_family = model.cfg.heads == 0  # LVS, SSL-Align, SSL-TIE: raw cosine; EZ-VSL, SLAVC, FNAC: (cos+1)/2
        cfg = replace(
            cfg,
            repeats=len(REFERENCE_SEEDS),
            negatives=replace(cfg.negatives, seeds="reference", noise="unclipped"),
            score=replace(cfg.score, map_scale="cosine", threshold_scale="cosine" if lvs_family else "unit"),
            ogl_method="icassp25",
        )
    if cfg.threshold:
        scale, _ = published_thresholds(cfg.threshold)
        cfg = replace(cfg, score=replace(cfg.score, threshold_scale=scale))
    return cfg


def check_disjoint(cfg: EvalConfig, items: list[AVItem], cal_items: list[AVItem]) -> None:
    """Refuse a calibration split that shares items with the evaluated split: its thresholds would have seen
    the test items (one line naming both splits and a few shared ids)."""
    ids = {item.id for item in items}
    shared = [item.id for item in cal_items if item.id in ids]
    if shared:
        raise VsslError(
            f"{cfg.data}: calibration split {cfg.calibration_split!r} shares {len(shared)} of its "
            f"{len(cal_items)} items with the evaluated split {cfg.split!r} (e.g. {', '.join(shared[:3])}): "
            "thresholds calibrated there would leak into the test; use disjoint splits"
        )


def stored_thresholds(model_dir: str, cfg: EvalConfig) -> tuple[dict[str, float], dict[str, Any]]:
    """Thresholds stored with a model, checked to be on the scale this evaluation binarises, and their provenance."""
    if not Path(model_dir).is_dir():
        raise VsslError(f"{model_dir}: no calibration split given and no model folder to read a calibration from")
    calibration = read_release_config(model_dir).get("calibration")
    if not calibration or "thresholds" not in calibration:
        raise VsslError(f"{model_dir}: the model has no stored calibration; evaluate with a calibration split")
    expected = cfg.score.protocol()["map_scale"]
    if calibration.get("map_scale") != expected:
        raise VsslError(
            f"{model_dir}: stored thresholds are on scale {calibration.get('map_scale')!r}, not {expected!r}"
        )
    provenance = {"source": "model folder", "folder": str(model_dir), "calibrated_on": calibration.get("data")}
    return {k: float(v) for k, v in calibration["thresholds"].items()}, provenance


def ogl_result(cfg: EvalConfig, run: EvalMaps, cal_run: EvalMaps | None, progress: bool) -> dict[str, Any]:
    """The full result with OGL: maps mixed with the object prior, thresholds calibrated on mixed negatives."""
    if cal_run is None:
        raise VsslError("evaluation with OGL needs a calibration split (thresholds of mixed maps are not stored)")
    score = replace(cfg.score, map_scale="unit", threshold_scale="unit")

    def mixed(r: EvalMaps) -> EvalMaps:
        return with_ogl(r, object_maps(cfg.ogl, r, cfg.batch_size, cfg.device, progress), cfg.ogl_method)

    result = full_result(mixed(run), calibrate_from(mixed(cal_run), score), score)
    result.pop("_per_sample")
    result["protocol"] = {**result["protocol"], "ogl": f"{cfg.ogl_method} rule, prior from {cfg.ogl}"}
    return result


def thresholds_of(
    cfg: EvalConfig, cal_items: list[AVItem] | None, cal_run: EvalMaps | None
) -> tuple[dict[str, float], dict[str, Any]]:
    """The universal thresholds and where they came from: published values, a calibration split (its item
    count, pooling and negative seeds) or the model folder's stored calibration."""
    rule = cfg.score.rule
    if cfg.threshold:
        scale, values = published_thresholds(cfg.threshold)
        name = cfg.threshold.removeprefix(PUBLISHED_PREFIX)
        statement = f"{rule} published for {name} (ICASSP'25 code, hard-coded; {scale} scale)"
        return values, {"source": "published", "model": name, "scale": scale, "statement": statement}
    if cal_run is not None and cal_items is not None:
        pool = cfg.score.protocol()["calibration_pool"]
        detail = (
            f"{cfg.data} split {cfg.calibration_split} ({len(cal_items)} items; {pool}; negative seeds {cal_run.seeds})"
        )
        provenance = {
            "source": "calibration split",
            "data": cfg.data,
            "split": cfg.calibration_split,
            "items": len(cal_items),
            "pool": pool,
            "negative_seeds": list(cal_run.seeds),
            "detail": detail,
            "statement": f"{rule} calibrated on {detail}",
        }
        return calibrate_from(cal_run, cfg.score), provenance
    thresholds, provenance = stored_thresholds(cfg.model, cfg)
    provenance["statement"] = f"{rule} stored with {cfg.model} (calibrated on {provenance['calibrated_on']})"
    return thresholds, provenance


def protocol_statement(cfg: EvalConfig, provenance: dict[str, Any], result: dict[str, Any]) -> dict[str, Any]:
    """Every protocol choice of this evaluation (``result``: its `full_result`), for the report."""
    negatives = cfg.negatives.describe()
    return {
        "protocol": "ICASSP'25 code (vssl eval --protocol icassp25)" if cfg.protocol == "icassp25" else "vssl",
        **protocol_of(cfg.score),
        "threshold": f"universal {provenance['statement']}",
        "negative_silence": negatives["silence"],
        "negative_noise": negatives["noise"],
        "negative_seeds": f"{negatives['seeds']}: {result['negative_seeds']}",
        "negative_repeats": str(cfg.repeats),
        "offscreen": result["offscreen_rule"],
        "ogl": f"{cfg.ogl_method} rule, prior from {cfg.ogl}" if cfg.ogl else "no (give --ogl imagenet|FILE)",
    }


def item_accounting(items: list[AVItem]) -> dict[str, Any]:
    """How many items of a split are evaluated, how many its reader excluded and why (``items.report``)."""
    report = getattr(items, "report", None)
    excluded = [issue for issue in (report.issues if report is not None else []) if issue.excluded]
    reasons = Counter(kind for kind, _ in dict.fromkeys((i.kind, i.item) for i in excluded))
    return {
        "evaluated": len(items),
        "excluded": len({i.item for i in excluded}),
        "excluded_by_reason": dict(sorted(reasons.items())),
        "excluded_items": [{"id": i.item, "reason": i.kind, "detail": i.detail} for i in excluded],
        "unreadable": "none skipped: an unreadable image or audio file stops the evaluation",
    }


def run_eval(cfg: EvalConfig, out: str | Path, progress: bool = True) -> dict[str, Any]:
    """Evaluate, write the report folder, return the report dict."""
    out = Path(out)
    t0 = time.perf_counter()
    require_device(cfg.device, "eval: device")
    model = load_model(cfg.model, device=cfg.device)
    cfg = resolve(cfg, model)
    if cfg.write_calibration and (cfg.threshold or not cfg.calibration_split):
        source = "published" if cfg.threshold else "model folder"
        raise VsslError(f"--write-calibration stores thresholds calibrated here; these come from the {source}")
    items = read_items(cfg.data, cfg.split)

    def maps_of(split_items):
        return compute_maps(
            model, split_items, cfg.batch_size, cfg.device, cfg.seed, progress, cfg.repeats, negatives=cfg.negatives
        )

    needs_calibration = not cfg.threshold or cfg.ogl  # published thresholds need none (OGL's mixed maps do)
    cal_items = read_items(cfg.data, cfg.calibration_split) if cfg.calibration_split and needs_calibration else None
    if cal_items is not None:
        check_disjoint(cfg, items, cal_items)
    cal_run = maps_of(cal_items) if cal_items is not None else None
    thresholds, provenance = thresholds_of(cfg, cal_items, cal_run)
    run = maps_of(items)
    result = full_result(run, thresholds, cfg.score)
    per = result.pop("_per_sample")
    result["threshold_source"] = provenance["statement"]
    if cfg.ogl:
        result["ogl"] = ogl_result(cfg, run, cal_run, progress)
    seconds = time.perf_counter() - t0
    report = {
        "title": f"vssl eval: {cfg.model} on {cfg.data} ({cfg.split})",
        "model": cfg.model,
        "data": cfg.data,
        "split": cfg.split,
        "result": result,
        "items": {cfg.split: item_accounting(items)},
        "protocol": protocol_statement(cfg, provenance, result),
        "thresholds": provenance,
        "config": to_dict(cfg),
        "timing": {"seconds": seconds, "images_per_s": len(items) / seconds},
    }
    if cal_items is not None and cfg.calibration_split != cfg.split:
        report["items"][cfg.calibration_split] = item_accounting(cal_items)
    R.write_json(out / "report.json", report)
    R.write_eval_markdown(out / "report.md", report)
    R.write_per_sample_csv(out / "per_sample.csv", run, per)
    name = Path(cfg.model).name or cfg.model
    shown = R.unit_thresholds(thresholds, cfg.score.threshold_scale)  # the scale of the maxima and example maps
    R.maxima_histogram(run, shown, name, out / "figures" / "maxima.png")
    R.threshold_curves_figure(run, thresholds, cfg.score, name, out / "figures" / "threshold_curves.png")
    R.example_grid(run, name, out / "figures" / "examples.png", count=cfg.examples, threshold=shown[cfg.score.rule])
    if cfg.write_calibration:
        calibration = {
            "thresholds": thresholds,
            "map_scale": cfg.score.protocol()["map_scale"],
            "data": provenance["detail"],
        }
        update_release_config(cfg.model, calibration=calibration)
        log.info("calibration written to %s/config.json", cfg.model)
    return report
