"""Statistics of upsampled maps: ``vssl.evaluation.fastmaps`` (closed form) vs materialising 224x224 maps.

Both sides compute, on the same seeded maps (N positive and N negative 7x7 cosine maps, 1-3 boxes per sample,
VGG-SS and Flickr styles), the statistics the scorer needs, on the unit scale (cos + 1) / 2:
pIA count at a universal threshold t, IoU(pos > t, neg > t), cIoU of ``> t`` (universal), of the EZ-VSL median
protocol, of the SLAVC min-max ``>= 0.5`` prediction, the SLAVC confidence (mean of the top quarter) and the peak.
The dense side upsamples in chunks of 64 maps (float64, as ``scoring.py``). Each side runs ``--repeat`` times and
the fastest run counts (the machine may be shared); the values must agree exactly (confidence: to 1e-12).
Usage: python benchmarks/fastmaps_speed.py [--n 2000] [--repeat 5] [--threads 0]
"""

from __future__ import annotations

import argparse
import time

import torch

from vssl.evaluation import fastmaps as fm
from vssl.evaluation import metrics as M
from vssl.evaluation.gt import GroundTruth

CHUNK = 64


def make_inputs(n: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, list, list]:
    g = torch.Generator().manual_seed(seed)
    pos, neg = (torch.rand(n, 7, 7, generator=g) * 2 - 1 for _ in range(2))
    boxes = []
    for _ in range(n):
        sample = []
        for _ in range(int(torch.randint(1, 4, (1,), generator=g))):
            x0, y0 = (int(v) for v in torch.randint(0, 180, (2,), generator=g))
            w, h = (int(v) for v in torch.randint(10, 224 - max(x0, y0), (2,), generator=g))
            sample.append((x0, y0, x0 + w, y0 + h))
        boxes.append(sample)
    return pos, neg, boxes, ["flickr" if i % 3 == 0 else "vggss" for i in range(n)]


def unit(v: torch.Tensor) -> torch.Tensor:
    return (v + 1.0) / 2.0


def dense(pos: torch.Tensor, neg: torch.Tensor, gt: torch.Tensor, t: float) -> dict[str, torch.Tensor]:
    """Materialise each chunk of maps at 224x224 and compute the statistics pixel by pixel."""
    out: dict[str, list[torch.Tensor]] = {}
    for s in range(0, len(pos), CHUNK):
        up, down = (unit(M.upsample(m[s : s + CHUNK].double())) for m in (pos, neg))
        g = gt[s : s + CHUNK]
        values = {
            "pia": (down > t).flatten(1).sum(1),
            "pair": ((up > t) & (down > t)).flatten(1).sum(1),
            "ciou_universal": M.ciou(up > t, g),
            "ciou_median": M.ciou(M.median_binarize(up), g),
            "ciou_slavc": M.ciou(M.minmax(up) >= 0.5, g),
            "confidence": up.flatten(1).topk(fm.PIXELS // 4, dim=1).values.mean(1),
            "peak": up.flatten(1).amax(1),
        }
        for key, value in values.items():
            out.setdefault(key, []).append(value)
    return {key: torch.cat(parts) for key, parts in out.items()}


def fast(pos: torch.Tensor, neg: torch.Tensor, gt: fm.Boxes, t: float) -> dict[str, torch.Tensor]:
    """The same statistics in closed form (maps prepared once per set)."""
    p, q = fm.Maps(pos), fm.Maps(neg)
    lo, hi = (unit(v) for v in fm.value_range(p))
    span = hi - lo

    def minmax(v: torch.Tensor) -> torch.Tensor:
        return torch.where(span > 0, (unit(v) - lo) / span.clamp(min=torch.finfo(torch.float64).tiny), unit(v))

    median = unit(fm.kth_smallest(p, fm.PIXELS // 2))
    return {
        "pia": fm.count_above(q, t, post=unit),
        "pair": fm.pair_count_above(p, q, t, post=unit),
        "ciou_universal": fm.ciou_above(p, t, gt, post=unit),
        "ciou_median": fm.ciou_above(p, median, gt, strict=False, post=unit),
        "ciou_slavc": fm.ciou_above(p, 0.5, gt, strict=False, post=minmax),
        "confidence": unit(fm.sum_top_k(p, fm.PIXELS // 4) / (fm.PIXELS // 4)),
        "peak": hi,
    }


def best_of(repeat: int, fn, *args) -> tuple[float, float, dict[str, torch.Tensor]]:
    """Fastest wall-clock and CPU (process) times over ``repeat`` runs, and the last output."""
    wall, cpu, out = [], [], {}
    for _ in range(repeat):
        t0, c0 = time.perf_counter(), time.process_time()
        out = fn(*args)
        wall.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    return min(wall), min(cpu), out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--threshold", type=float, default=0.6)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    pos, neg, boxes, styles = make_inputs(args.n)
    t0 = time.perf_counter()
    gt_dense = GroundTruth(boxes=boxes, styles=styles, masks=[None] * args.n).maps(range(args.n))
    t_gt_dense = time.perf_counter() - t0
    t0 = time.perf_counter()
    gt_fast = fm.Boxes.from_lists(boxes, styles)
    t_gt_fast = time.perf_counter() - t0
    fm.emulation_matches_torch()  # one-off check of the kernel emulation, outside the timings

    t_fast, c_fast, ours = best_of(args.repeat, fast, pos, neg, gt_fast, args.threshold)
    t_dense, c_dense, ref = best_of(args.repeat, dense, pos, neg, gt_dense, args.threshold)
    for key, value in ref.items():
        diff = (ours[key].double() - value.double()).abs().max().item()
        assert diff <= (1e-12 if key == "confidence" else 0.0), (key, diff)
    print(
        f"N = {args.n} positive + {args.n} negative 7x7 maps, torch threads = {torch.get_num_threads()}, "
        f"best of {args.repeat}"
    )
    print(f"ground truth: dense maps {t_gt_dense:6.2f} s   fastmaps.Boxes {t_gt_fast:6.3f} s (not in the timings)")
    print(f"materialised 224x224: {t_dense:7.3f} s wall {c_dense:7.3f} s CPU")
    print(f"fastmaps:             {t_fast:7.3f} s wall {c_fast:7.3f} s CPU (fastmaps runs on one thread)")
    print(
        f"speed-up: {t_dense / t_fast:.1f}x wall, {c_dense / c_fast:.1f}x CPU   "
        f"(all {len(ref)} statistics identical; confidence to 1e-12)"
    )


if __name__ == "__main__":
    main()
