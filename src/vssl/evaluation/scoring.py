"""Score absolute heatmaps under positive and negative audio: the one implementation behind
``vssl score`` (maps from any framework), ``vssl eval`` and the demo.

Data flow: maps ``[N, h, w]`` on a named scale -> per-sample values (``PerSample``) of their 224x224 float64
upsampling (bilinear, align_corners=True) -> set-level summary (``summarise``). Two equal paths to the
per-sample values: ``fastmaps`` computes the counts, order statistics and box-weighted sums of the upsampled
maps in closed form without materialising them (the default; exact, see that module), the dense path
upsamples chunks of maps and is used for mask ground truth (AVSBench metrics) and with ``fast=False``.
Protocols, each named in the result:
* ``median`` (EZ-VSL): min-max map, pixels >= the value at sorted index 224*224/2;
* ``universal`` (ICASSP'25): one absolute threshold t, pixels > t; calibrated from negative maps;
* ``fixed``: pixels >= 0.5 on the absolute scale; ``adaptive``: the top-|G| pixels (uses object size);
* ``slavc``: confidence = mean of the top quarter of the map, prediction = min-max map >= 0.5.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from vssl.errors import ConfigError, VsslError
from vssl.evaluation import fastmaps as fm
from vssl.evaluation import metrics as M
from vssl.evaluation import segmentation as seg
from vssl.evaluation import slavc
from vssl.evaluation.gt import GroundTruth
from vssl.evaluation.thresholds import THRESHOLD_NAMES, thresholds_from_maxima
from vssl.maps import EVAL_SIZE, SCALE_NAMES, MapScale, minmax, peak, upsample

MAP_SCALES = SCALE_NAMES
NEGATIVE_TYPES = ("silence", "noise", "offscreen")
POSITIVE_PROTOCOLS = ("median", "universal", "fixed", "adaptive")


NEGATIVE_POOLS = ("equal", "maps")
MAX_POOLED = 50_000_000  # pooled maxima (float64) the equal weighting may build: 400 MB


@dataclass
class ScoreConfig:
    """How maps are read and binarised."""

    map_scale: str = "cosine"
    """scale of the given maps: "cosine" in [-1, 1] or "unit" in [0, 1]"""
    threshold_scale: str = "unit"
    """absolute scale of thresholds: "unit" = (cos+1)/2 (EZ-VSL family), "cosine" (LVS)"""
    rule: str = "maxq3"
    """universal threshold used for the headline: max | max10 | maxq3"""
    fixed_threshold: float = 0.5
    """the `fixed` protocol's threshold on the absolute scale"""
    chunk: int = 64
    """maps upsampled at a time on the dense path (memory: chunk x 224 x 224 x 8 bytes)"""
    fast: bool = True
    """closed-form statistics (fastmaps) where the ground truth is boxes; False: all dense"""
    negative_pool: str = "equal"
    """how negative types weigh in calibration: equal (each type alike, as the ICASSP'25 code, which repeats silence
    over its 10 seeds) or maps (every map weighs one)"""

    def __post_init__(self) -> None:
        for name, value in (("map_scale", self.map_scale), ("threshold_scale", self.threshold_scale)):
            if value not in MAP_SCALES:
                raise VsslError(f"{name} {value!r} unknown; choose one of {list(MAP_SCALES)}")
        if self.negative_pool not in NEGATIVE_POOLS:
            raise VsslError(f"negative_pool {self.negative_pool!r} unknown; choose one of {list(NEGATIVE_POOLS)}")
        if self.rule not in THRESHOLD_NAMES:
            raise VsslError(f"threshold rule {self.rule!r} unknown; choose one of {list(THRESHOLD_NAMES)}")

    def absolute(self, maps: torch.Tensor) -> torch.Tensor:
        """Given-scale maps -> the threshold scale."""
        return MapScale.of(self.map_scale).convert(maps, self.threshold_scale)

    @property
    def post(self) -> fm.Post | None:
        """``absolute`` as fastmaps' ``post`` (None: the scales agree)."""
        return None if self.map_scale == self.threshold_scale else self.absolute

    def cosine(self, maps: torch.Tensor) -> torch.Tensor:
        """Given-scale maps -> cosine similarity."""
        return MapScale.of(self.map_scale).convert(maps, MapScale.COSINE)

    def protocol(self) -> dict[str, str]:
        return {
            "map_scale": MapScale.of(self.threshold_scale).label,
            "input_map_scale": self.map_scale,
            "map_size": f"{EVAL_SIZE}x{EVAL_SIZE}, bilinear, align_corners=True, float64",
            "universal": f"map > t, t = {self.rule} of negative-map maxima unless given",
            "calibration_pool": "each negative type weighs alike (ICASSP'25 code)"
            if self.negative_pool == "equal"
            else "every negative map weighs one (ours; types with more maps weigh more)",
            "median": "min-max map >= value at sorted index 224*224/2 (EZ-VSL)",
            "fixed": f"map >= {self.fixed_threshold}",
            "adaptive": "top-k pixels, k = ground-truth area",
            "slavc": "confidence = mean of top quarter of the map; prediction = min-max map >= 0.5",
            "gt": "vggss: union of boxes; flickr: sum of annotators / 2 capped at 1; masks: non-zero pixels",
            "negatives": "pooled over repeats; IoU(pos, neg) between map > t binarisations",
            "ogl": "no",
        }


@dataclass
class MapSet:
    """Maps to score: ``positive`` ``[N, h, w]``; each negative type ``[M, h, w]`` with ``owners[type]``
    ``[M]`` = the positive sample each negative map belongs to (repeats pool several maps per sample)."""

    positive: torch.Tensor
    negatives: dict[str, torch.Tensor] = field(default_factory=dict)
    owners: dict[str, torch.Tensor] = field(default_factory=dict)

    def __post_init__(self) -> None:
        n = self.positive.shape[0]
        for name, maps in self.negatives.items():
            owners = self.owners.setdefault(name, torch.arange(maps.shape[0]))
            if maps.shape[0] != owners.shape[0] or (owners.numel() and int(owners.max()) >= n):
                raise VsslError(f"negative maps {name!r}: {maps.shape[0]} maps do not match the {n} positive maps")


def _chunks(n: int, size: int) -> list[slice]:
    return [slice(s, min(s + size, n)) for s in range(0, n, size)]


def check_maps(name: str, maps: torch.Tensor) -> None:
    if maps.ndim != 3 or min(maps.shape[1:]) < 1:
        raise VsslError(f"maps {name!r}: expected shape [N, H, W], got {list(maps.shape)}")
    bad = ~torch.isfinite(maps)
    if bad.any():
        first = int(bad.flatten(1).any(1).nonzero()[0])
        raise VsslError(f"maps {name!r}: {int(bad.sum())} NaN/Inf values (first in map {first})")


def negative_maxima(negatives: dict[str, torch.Tensor], cfg: ScoreConfig) -> torch.Tensor:
    """Per-map maxima ``[sum M]`` at 224x224 on the threshold scale, pooled over negative types."""
    if cfg.fast:
        out = [cfg.absolute(fm.kth_smallest(maps, fm.PIXELS - 1)) for maps in negatives.values()]
    else:
        out = [
            peak(cfg.absolute(maps[sl].double())) for maps in negatives.values() for sl in _chunks(len(maps), cfg.chunk)
        ]
    if not out:
        raise VsslError("no negative maps to calibrate a universal threshold from")
    return torch.cat(out)


def pooled_maxima(negatives: dict[str, torch.Tensor], cfg: ScoreConfig) -> torch.Tensor:
    """`negative_maxima` pooled as ``cfg.negative_pool`` says: ``equal`` repeats each type's maxima to a common
    count (the least common multiple of the counts), so every type weighs alike in mean and quantile."""
    per_type = [negative_maxima({name: maps}, cfg) for name, maps in negatives.items() if len(maps)]
    if not per_type:
        return negative_maxima(negatives, cfg)  # no map at all: its error, or an empty pool
    if cfg.negative_pool == "maps" or len(per_type) < 2:
        return torch.cat(per_type)
    common = math.lcm(*(len(m) for m in per_type))
    if common > MAX_POOLED:
        raise VsslError(
            f"negative map counts {[len(m) for m in per_type]} have no common multiple under {MAX_POOLED}; "
            "calibrate with negative_pool=maps"
        )
    return torch.cat([m.repeat(common // len(m)) for m in per_type])


def calibrate_maps(negatives: dict[str, torch.Tensor], cfg: ScoreConfig) -> dict[str, float]:
    """Universal thresholds (max, max10, maxq3) on the threshold scale from negative maps (`pooled_maxima`)."""
    return thresholds_from_maxima(pooled_maxima(negatives, cfg))


@dataclass
class PerSample:
    """Per-sample values: ``positive[key]`` ``[N]``; ``negatives[type][key]`` ``[M]`` (with ``owners``)."""

    positive: dict[str, torch.Tensor]
    negatives: dict[str, dict[str, torch.Tensor]]
    owners: dict[str, torch.Tensor]


_FILL = {"mask_iou": torch.nan}  # value of a per-sample key for samples whose path does not compute it (else 0)


def score_positive(
    maps: torch.Tensor, gt: GroundTruth, t: float, cfg: ScoreConfig, prepared: fm.Maps | None = None
) -> dict[str, torch.Tensor]:
    """Per-sample cIoU under each protocol, SLAVC confidence/cIoU, peak and gt area, ``[N]`` each (mask samples
    add the AVSBench values). Box and no-source samples take the closed-form path unless ``cfg.fast`` is off;
    ``prepared``: ``fm.Maps(maps)`` if already made."""
    dense = torch.tensor([m is not None or not cfg.fast for m in gt.masks], dtype=torch.bool)
    fast_rows, dense_rows = (~dense).nonzero()[:, 0], dense.nonzero()[:, 0]
    parts: list[tuple[torch.Tensor, dict[str, torch.Tensor]]] = []
    if len(fast_rows):
        fast = prepared if prepared is not None and not len(dense_rows) else fm.Maps(maps[fast_rows])
        parts.append((fast_rows, _positive_fast(fast, gt.select(fast_rows.tolist()), t, cfg)))
    if len(dense_rows):
        parts.append((dense_rows, _positive_dense(maps[dense_rows], gt.select(dense_rows.tolist()), t, cfg)))
    keys = {key: value for _, values in parts for key, value in values.items()}
    out = {key: value.new_full((len(maps), *value.shape[1:]), _FILL.get(key, 0)) for key, value in keys.items()}
    for rows, values in parts:
        for key, value in values.items():
            out[key][rows] = value
    return out


def _raw(t: float, strict: bool, cfg: ScoreConfig) -> torch.Tensor:
    """A scalar threshold on the threshold scale as fastmaps' raw threshold (``>=`` on the given scale), found
    once for every map (``post`` is the same elementwise function for all)."""
    return fm.raw_threshold(t, 1, strict, cfg.post)


def _positive_fast(maps: fm.Maps, gt: GroundTruth, t: float, cfg: ScoreConfig) -> dict[str, torch.Tensor]:
    """``score_positive`` of box (or no) ground truth in closed form (fastmaps): the same values, exactly
    (the confidence up to float64 rounding)."""
    boxes, post, unit = fm.Boxes.from_lists(gt.boxes, gt.styles), cfg.post, cfg.absolute
    lo, hi = (unit(v) for v in fm.value_range(maps))
    span = hi - lo

    def minmax(v: torch.Tensor) -> torch.Tensor:  # minmax of each absolute map, value by value
        u = unit(v)
        return torch.where(span > 0, (u - lo) / span.clamp(min=torch.finfo(u.dtype).tiny), u)

    area = boxes.sums[:, 2]
    kth_largest = unit(fm.kth_smallest(maps, (fm.PIXELS - area.long()).clamp(max=fm.PIXELS - 1)))
    quarter = fm.PIXELS // 4
    return {
        "ciou_median": fm.ciou_above(maps, unit(fm.kth_smallest(maps, fm.PIXELS // 2)), boxes, False, post),
        "ciou_universal": fm.ciou_above(maps, _raw(t, True, cfg), boxes, False),
        "ciou_fixed": fm.ciou_above(maps, _raw(cfg.fixed_threshold, False, cfg), boxes, False),
        "ciou_adaptive": fm.ciou_above(maps, torch.where(area > 0, kth_largest, torch.inf), boxes, False, post),
        "ciou_slavc": fm.ciou_above(maps, 0.5, boxes, False, minmax),
        "confidence": unit(fm.sum_top_k(maps, quarter) / quarter),
        "peak": hi,
        "similarity": cfg.cosine(maps.x).flatten(1).amax(1),
        "area": area,
    }


def _positive_dense(maps: torch.Tensor, gt: GroundTruth, t: float, cfg: ScoreConfig) -> dict[str, torch.Tensor]:
    """``score_positive`` on upsampled maps, chunk by chunk (any ground truth, masks included)."""
    cols: dict[str, list[torch.Tensor]] = {}
    masked = torch.tensor([m is not None for m in gt.masks], dtype=torch.bool)
    for sl in _chunks(len(maps), cfg.chunk):
        up = cfg.absolute(upsample(maps[sl].double()))
        g = gt.maps(range(sl.start, sl.stop))
        area = (g > 0).flatten(1).sum(1)
        norm = minmax(up)
        values = {
            "ciou_median": M.ciou(M.median_binarize(up), g),
            "ciou_universal": M.ciou(up > t, g),
            "ciou_fixed": M.ciou(up >= cfg.fixed_threshold, g),
            "ciou_adaptive": M.ciou(M.adaptive_binarize(up, area), g),
            "ciou_slavc": M.ciou(norm >= 0.5, g),
            "confidence": slavc.confidence(up),
            "peak": up.flatten(1).amax(1),
            "similarity": cfg.cosine(maps[sl].double()).flatten(1).amax(1),
            "area": area.double(),
        }
        if masked.any():
            values.update(_segmentation(up, gt.mask_maps(range(sl.start, sl.stop)), masked[sl], t, cfg))
        for key, value in values.items():
            cols.setdefault(key, []).append(value)
    return {key: torch.cat(parts) for key, parts in cols.items()}


def _segmentation(up: torch.Tensor, g: torch.Tensor, masked: torch.Tensor, t: float, cfg: ScoreConfig):
    """AVSBench values of mask samples (NaN / zeros elsewhere): IoU of ``map > t``, P/R curves ``[n, 255]``."""
    unit = MapScale.of(cfg.threshold_scale).convert(up, MapScale.UNIT)
    precision, recall = seg.precision_recall_curves(unit, g)
    keep = masked[:, None]
    return {
        "mask_iou": torch.where(
            masked, seg.mask_iou(up > t, g), torch.full_like(masked, torch.nan, dtype=torch.float64)
        ),
        "mask_precision": torch.where(keep, precision, torch.zeros_like(precision)),
        "mask_recall": torch.where(keep, recall, torch.zeros_like(recall)),
    }


def score_negative(
    maps: torch.Tensor,
    owners: torch.Tensor,
    positive: torch.Tensor,
    t: float,
    cfg: ScoreConfig,
    prepared: fm.Maps | None = None,
) -> dict[str, torch.Tensor]:
    """Per-map pIA, IoU with the owner's positive binarisation, peak and max cosine, ``[M]`` each;
    ``prepared``: ``fm.Maps(positive)`` if already made."""
    if cfg.fast:
        aligned = len(owners) == len(positive) and torch.equal(owners, torch.arange(len(positive)))
        owned = prepared if prepared is not None and aligned else fm.Maps(positive[owners])
        return _negative_fast(fm.Maps(maps), owned, t, cfg)
    cols: dict[str, list[torch.Tensor]] = {"pia": [], "iou_with_positive": [], "peak": [], "similarity": []}
    for sl in _chunks(len(maps), cfg.chunk):
        up = cfg.absolute(upsample(maps[sl].double()))
        pos = cfg.absolute(upsample(positive[owners[sl]].double()))
        cols["pia"].append(M.pia(up, t))
        cols["iou_with_positive"].append(M.iou(pos > t, up > t))
        cols["peak"].append(up.flatten(1).amax(1))
        cols["similarity"].append(cfg.cosine(maps[sl].double()).flatten(1).amax(1))
    return {key: torch.cat(parts) for key, parts in cols.items()}


def _negative_fast(maps: fm.Maps, positive: fm.Maps, t: float, cfg: ScoreConfig) -> dict[str, torch.Tensor]:
    """``score_negative`` in closed form; ``positive`` = the owners' positive maps, one per negative map."""
    positive_above, above, both = fm.pair_counts_above(positive, maps, _raw(t, True, cfg), False).unbind(1)
    union = (above + positive_above - both).double()
    return {
        "pia": above.double() / fm.PIXELS,
        "iou_with_positive": torch.where(union > 0, both.double() / union.clamp(min=1), torch.ones_like(union)),
        "peak": cfg.absolute(fm.kth_smallest(maps, fm.PIXELS - 1)),
        "similarity": cfg.cosine(maps.x).flatten(1).amax(1),
    }


def score(maps: MapSet, gt: GroundTruth, threshold: float, cfg: ScoreConfig) -> PerSample:
    """Every per-sample value of a map set at universal ``threshold`` (on the threshold scale)."""
    if not math.isfinite(threshold):
        raise ConfigError(f"threshold must be a finite number, got {threshold}")
    check_maps("positive", maps.positive)
    if len(gt) != maps.positive.shape[0]:
        raise VsslError(f"{maps.positive.shape[0]} positive maps but {len(gt)} ground-truth entries")
    for name, neg in maps.negatives.items():
        check_maps(name, neg)
        if neg.shape[1:] != maps.positive.shape[1:]:
            raise VsslError(f"maps {name!r} are {list(neg.shape[1:])}, positive maps {list(maps.positive.shape[1:])}")
    prepared = fm.Maps(maps.positive) if cfg.fast else None
    positive = score_positive(maps.positive, gt, threshold, cfg, prepared)
    negatives = {
        name: score_negative(neg, maps.owners[name], maps.positive, threshold, cfg, prepared)
        for name, neg in maps.negatives.items()
    }
    return PerSample(positive=positive, negatives=negatives, owners=dict(maps.owners))


def threshold_curves(maps: MapSet, gt: GroundTruth, grid: torch.Tensor, cfg: ScoreConfig) -> dict[str, torch.Tensor]:
    """Mean cIoU of visible positives and mean pIA of each negative type at every ``map > t``, t in ``grid``
    (threshold scale): ``{"positive_ciou": [T], "<type>_pia": [T]}``. One histogram pass per map."""
    grid = grid.double()
    visible = gt.visible

    def suffix_counts(up: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        # pixels strictly above grid[j] = pixels whose bin (number of grid values < value) exceeds j
        bins = torch.bucketize(up.flatten(1), grid, right=False)
        hist = torch.zeros(up.shape[0], grid.numel() + 1, dtype=torch.float64).scatter_add_(1, bins, weight)
        return hist.flip(1).cumsum(1).flip(1)[:, 1:]

    curves: dict[str, torch.Tensor] = {"positive_ciou": torch.zeros(grid.numel(), dtype=torch.float64)}
    for sl in _chunks(len(maps.positive), cfg.chunk):
        keep = visible[sl]
        if not keep.any():
            continue
        up = cfg.absolute(upsample(maps.positive[sl][keep].double()))
        g = gt.maps([i for i in range(sl.start, sl.stop) if visible[i]]).flatten(1)
        inter = suffix_counts(up, g)
        outside = suffix_counts(up, (g == 0).double())
        curves["positive_ciou"] += (inter / (g.sum(1, keepdim=True) + outside).clamp(min=1e-300)).sum(0)
    curves["positive_ciou"] /= max(int(visible.sum()), 1)
    pixels = EVAL_SIZE**2
    for name, neg in maps.negatives.items():
        total = torch.zeros(grid.numel(), dtype=torch.float64)
        for sl in _chunks(len(neg), cfg.chunk):
            up = cfg.absolute(upsample(neg[sl].double()))
            total += suffix_counts(up, torch.ones(up.shape[0], pixels, dtype=torch.float64)).sum(0) / pixels
        curves[f"{name}_pia"] = total / max(len(neg), 1)
    return curves
