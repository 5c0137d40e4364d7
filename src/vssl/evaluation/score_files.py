"""``vssl score``: evaluate heatmaps saved by any model or framework.

MAPS.npz holds ``positive`` ``[N, H, W]`` absolute maps and optionally ``silence``, ``noise``,
``offscreen`` of the same shape; GT.json the ground truth (``gt.load_gt_json``). The universal
threshold is, in order of precedence: the value given; calibrated from the negative maps of a
calibration MAPS file; calibrated from the scored file's own negatives (the result says so: that is
optimistic, calibration and test data being the same).
"""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vssl.errors import VsslError
from vssl.evaluation.gt import load_gt_json
from vssl.evaluation.scoring import NEGATIVE_TYPES, MapSet, ScoreConfig, calibrate_maps, score
from vssl.evaluation.summary import summarise

MAP_KEYS = ("positive", *NEGATIVE_TYPES)


def load_maps(path: str | Path, require_positive: bool = True) -> dict[str, torch.Tensor]:
    """The map arrays of a MAPS.npz, validated: known keys, 3-D, same shape, finite."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {key: npz[key] for key in npz.files}
    except FileNotFoundError:
        raise VsslError(f"{path}: maps file not found") from None
    except (ValueError, OSError, zipfile.BadZipFile, EOFError) as exc:
        raise VsslError(f"{path}: not a readable .npz of numeric arrays ({exc})") from exc
    unknown = sorted(set(arrays) - set(MAP_KEYS))
    if unknown:
        raise VsslError(f"{path}: unknown arrays {unknown}; expected {list(MAP_KEYS)}")
    if require_positive and "positive" not in arrays:
        raise VsslError(f"{path}: no 'positive' array (the maps under each sample's own audio)")
    shape = None
    maps = {}
    for key in MAP_KEYS:
        if key not in arrays:
            continue
        array = arrays[key]
        if array.ndim != 3 or not np.issubdtype(array.dtype, np.number):
            raise VsslError(f"{path}: '{key}' must be a numeric [N, H, W] array, got {array.dtype} {list(array.shape)}")
        if shape is not None and array.shape != shape:
            raise VsslError(f"{path}: '{key}' has shape {list(array.shape)}, the other maps {list(shape)}")
        shape = array.shape
        bad = ~np.isfinite(array)
        if bad.any():
            first = int(np.flatnonzero(bad.reshape(len(array), -1).any(1))[0])
            raise VsslError(f"{path}: '{key}' holds {int(bad.sum())} NaN/Inf values (first in map {first})")
        maps[key] = torch.from_numpy(np.ascontiguousarray(array, dtype=np.float64))
    return maps


def score_files(
    maps_path: str | Path,
    gt_path: str | Path,
    cfg: ScoreConfig,
    threshold: float | None = None,
    calibration_path: str | Path | None = None,
) -> tuple[dict[str, Any], Any]:
    """The RESULT dict (and the per-sample values) of one MAPS.npz against one GT.json."""
    arrays = load_maps(maps_path)
    gt = load_gt_json(gt_path)
    n = arrays["positive"].shape[0]
    if len(gt) != n:
        raise VsslError(f"{maps_path} holds {n} maps but {gt_path} has {len(gt)} entries: they must match one to one")
    maps = MapSet(positive=arrays["positive"], negatives={k: v for k, v in arrays.items() if k != "positive"})
    thresholds: dict[str, float] | None = None
    if threshold is not None:
        source = "given"
    elif calibration_path is not None:
        cal = load_maps(calibration_path, require_positive=False)
        negatives = {k: v for k, v in cal.items() if k != "positive"}
        if not negatives:
            raise VsslError(f"{calibration_path}: no negative maps (silence, noise, offscreen) to calibrate from")
        thresholds = calibrate_maps(negatives, cfg)
        source = f"calibrated ({cfg.rule}) from the negative maps of {calibration_path}"
    elif maps.negatives:
        thresholds = calibrate_maps(maps.negatives, cfg)
        source = f"calibrated ({cfg.rule}) from the scored file's own negatives (optimistic: same data)"
    else:
        raise VsslError(f"{maps_path}: no threshold: give --threshold or --calibration, or include negative maps")
    t = float(threshold) if threshold is not None else thresholds[cfg.rule]
    per = score(maps, gt, t, cfg)
    result = summarise(per, gt, t, source, cfg.protocol())
    if thresholds is not None:
        result["thresholds"] = thresholds
    return result, per
