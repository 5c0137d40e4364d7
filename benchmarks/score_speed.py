"""Scoring saved maps: vssl's scorer vs a straightforward per-sample numpy implementation.

All sides run in this process on the same seeded maps (positive + silence + noise + offscreen, 7x7
cosine, N samples with 1-3 boxes, VGG-SS and Flickr styles) and compute the same per-sample values
(cIoU under the median, universal, fixed and adaptive protocols, SLAVC confidence and cIoU, peak;
per negative: pIA, IoU with the positive binarisation, peak), which must agree. vssl: ``scoring.score``
(closed form, the default) plus the set-level summary; also timed: the same with ``fast=False``
(maps materialised in chunks). Each side is timed after one call on 50 other samples (first-call costs left
out); the vssl times include building its inputs from the lists. Prints samples/s and the ratios.
Usage: python benchmarks/score_speed.py [--n 2000]
"""

from __future__ import annotations

import argparse
import functools
import time
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F

from vssl.evaluation import fastmaps as fm
from vssl.evaluation.gt import GroundTruth
from vssl.evaluation.scoring import MapSet, PerSample, ScoreConfig, score
from vssl.evaluation.summary import summarise

NEGS = ("silence", "noise", "offscreen")
POSITIVE = ("ciou_median", "ciou_universal", "ciou_fixed", "ciou_adaptive", "confidence", "ciou_slavc", "peak")


def make_inputs(n: int, seed: int = 0) -> tuple[dict[str, np.ndarray], list, list]:
    rng = np.random.default_rng(seed)
    maps = {k: rng.uniform(-1, 1, (n, 7, 7)).astype(np.float32) for k in ("positive", *NEGS)}
    boxes = []
    for _ in range(n):
        sample = []
        for _ in range(rng.integers(1, 4)):
            x0, y0 = rng.integers(0, 180, 2)
            w, h = rng.integers(10, 224 - max(x0, y0), 2)
            sample.append((int(x0), int(y0), int(x0 + w), int(y0 + h)))
        boxes.append(sample)
    styles = ["flickr" if i % 3 == 0 else "vggss" for i in range(n)]
    return maps, boxes, styles


def reference(maps: dict[str, np.ndarray], boxes: list, styles: list, t: float) -> dict[str, np.ndarray]:
    """One sample at a time, the way the reference evaluators are written."""
    out: dict[str, list[float]] = {key: [] for key in POSITIVE}
    for neg in NEGS:
        out[f"{neg}_pia"], out[f"{neg}_iou"], out[f"{neg}_peak"] = [], [], []

    def up(a: np.ndarray) -> np.ndarray:
        x = torch.from_numpy(a.astype(np.float64))[None, None]
        return F.interpolate(x, size=(224, 224), mode="bilinear", align_corners=True)[0, 0].numpy()

    def ciou(pred: np.ndarray, gt: np.ndarray) -> float:
        return float(np.sum(pred * gt) / (np.sum(gt) + np.sum(pred * (gt == 0))))

    for i in range(len(boxes)):
        gt = np.zeros((224, 224))
        for x0, y0, x1, y1 in boxes[i]:
            gt[y0:y1, x0:x1] += 1
        gt = np.minimum(gt / 2, 1) if styles[i] == "flickr" else (gt > 0).astype(float)
        pos = (up(maps["positive"][i]) + 1) / 2
        norm = (pos - pos.min()) / (pos.max() - pos.min())
        thr = np.sort(norm.flatten())[224 * 224 // 2]
        out["ciou_median"].append(ciou((norm >= thr).astype(float), gt))
        pos_bin = pos > t
        out["ciou_universal"].append(ciou(pos_bin.astype(float), gt))
        out["confidence"].append(float(np.sort(pos.flatten())[-(224 * 224 // 4) :].mean()))
        out["ciou_slavc"].append(ciou((norm >= 0.5).astype(float), gt))
        out["ciou_fixed"].append(ciou((pos >= 0.5).astype(float), gt))
        area = int((gt > 0).sum())
        top = np.partition(pos.flatten(), -area)[-area] if area else np.inf  # the area-th largest value
        out["ciou_adaptive"].append(ciou((pos >= top).astype(float), gt))
        out["peak"].append(float(pos.max()))
        for neg in NEGS:
            nmap = (up(maps[neg][i]) + 1) / 2
            nb = nmap > t
            out[f"{neg}_peak"].append(float(nmap.max()))
            out[f"{neg}_pia"].append(float(nb.mean()))
            union = np.logical_or(pos_bin, nb).sum()
            out[f"{neg}_iou"].append(1.0 if union == 0 else float(np.logical_and(pos_bin, nb).sum() / union))
    return {k: np.array(v) for k, v in out.items()}


def breakdown(run: Callable[[], object]) -> tuple[float, dict[str, float]]:
    """Seconds of ``run()`` and those spent in each fastmaps entry point (outermost calls only)."""
    spent: dict[str, float] = {}
    depth = [0]

    def timed(name: str, fn: Callable) -> Callable:
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            depth[0] += 1
            t0 = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                depth[0] -= 1
                if not depth[0]:
                    spent[name] = spent.get(name, 0.0) + time.perf_counter() - t0

        return wrapper

    names = ("value_range", "kth_smallest", "sum_top_k", "ciou_above", "pair_counts_above")
    saved = {name: getattr(fm, name) for name in names}
    init, from_lists = fm.Maps.__init__, fm.Boxes.from_lists.__func__
    try:
        for name in names:
            setattr(fm, name, timed(name, saved[name]))
        fm.Maps.__init__ = timed("Maps (preparation)", init)
        fm.Boxes.from_lists = classmethod(timed("Boxes.from_lists", from_lists))
        t0 = time.perf_counter()
        run()
        return time.perf_counter() - t0, spent
    finally:
        for name in names:
            setattr(fm, name, saved[name])
        fm.Maps.__init__, fm.Boxes.from_lists = init, classmethod(from_lists)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--threshold", type=float, default=0.6)
    parser.add_argument("--breakdown", action="store_true", help="time each fastmaps entry point of one more run")
    args = parser.parse_args()
    t = args.threshold

    def vssl(maps: dict[str, np.ndarray], boxes: list, styles: list, cfg: ScoreConfig) -> tuple[float, PerSample]:
        t0 = time.perf_counter()
        gt = GroundTruth(boxes=boxes, styles=styles, masks=[None] * len(boxes))
        negatives = {k: torch.from_numpy(maps[k]) for k in NEGS}
        mapset = MapSet(positive=torch.from_numpy(maps["positive"]), negatives=negatives)
        per = score(mapset, gt, t, cfg)
        summarise(per, gt, t, "given", cfg.protocol())
        return time.perf_counter() - t0, per

    warm = make_inputs(50, seed=1)  # first calls (caches, allocator, thread pool) are left out on every side
    reference(*warm, t)
    for cfg in (ScoreConfig(), ScoreConfig(fast=False)):
        vssl(*warm, cfg)

    maps, boxes, styles = make_inputs(args.n)
    t0 = time.perf_counter()
    ref = reference(maps, boxes, styles, t)
    t_ref = time.perf_counter() - t0
    t_fast, per = vssl(maps, boxes, styles, ScoreConfig())
    t_dense, dense = vssl(maps, boxes, styles, ScoreConfig(fast=False))

    worst = 0.0
    for ours in (per, dense):
        for k in POSITIVE:
            worst = max(worst, float(np.abs(ours.positive[k].numpy() - ref[k]).max()))
        for neg in NEGS:
            for key, name in (("pia", "pia"), ("iou_with_positive", "iou"), ("peak", "peak")):
                worst = max(worst, float(np.abs(ours.negatives[neg][key].numpy() - ref[f"{neg}_{name}"]).max()))
    print(f"N = {args.n} samples x 4 conditions, torch threads = {torch.get_num_threads()}")
    print(f"per-sample numpy reference:   {t_ref:7.2f} s  {args.n / t_ref:8.1f} samples/s")
    print(f"vssl, maps materialised:      {t_dense:7.2f} s  {args.n / t_dense:8.1f} samples/s (fast=False)")
    print(f"vssl scorer (closed form):    {t_fast:7.2f} s  {args.n / t_fast:8.1f} samples/s (with the summary)")
    print(f"speed-up vs reference: {t_ref / t_fast:.1f}x (materialised: {t_ref / t_dense:.1f}x)")
    print(f"max |difference| of per-sample values from the reference: {worst:.2e}")
    if args.breakdown:
        total, spent = breakdown(lambda: vssl(maps, boxes, styles, ScoreConfig()))
        print(f"one more closed-form run: {total:.2f} s, of which (outermost fastmaps calls):")
        for name, seconds in sorted(spent.items(), key=lambda item: -item[1]):
            print(f"  {name:22s} {seconds:6.3f} s  {100 * seconds / total:5.1f} %")
        print(f"  {'everything else':22s} {total - sum(spent.values()):6.3f} s")


if __name__ == "__main__":
    main()
