"""The demo's headline over seeds: ``vssl demo`` (or ``--quick``) for seeds 0-4, every figure as mean +- std and
its worst seed, the CPU and thread count it ran on, and the headline targets of issue 19 checked one by one.

Each seed is a different benchmark (frames, sounds, split), image pretraining, initialisation and data order; the
two arms of one seed share all of them. Runs are kept under ``--out/seed_N`` and reused when finished (the demo
resumes its own steps), so an interrupted sweep continues where it stopped.
Usage: python benchmarks/demo_seeds.py [--out vssl-demo-seeds] [key=value ...] [--seeds 0 1 2 3 4] [--quick]
(``key=value``: overrides of the demo's config, as ``vssl demo`` takes them, e.g. the row with the training set's
inaudible and noisy pairs off: ``synth.inaudible_fraction=0 synth.noisy_fraction=0``; before ``--seeds``, whose
list would take them.)
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

import numpy as np
import torch
from machine import cpu_model
from PIL import Image

from vssl.audio import load_audio
from vssl.config import apply_overrides
from vssl.data.synth import read_synth
from vssl.demo import demo_config, run_demo
from vssl.inference import load_localizer
from vssl.inference.video import localize_video
from vssl.inference.video_writer import write_still_video

ARMS = ("baseline", "sslsan")
NEGATIVES = ("silence", "noise", "offscreen")


def figures(method: dict) -> dict[str, float | None]:
    """The headline figures of one arm of one seed, flat."""
    out = {
        "adaptive_ap50": method["adaptive_ap50"],
        "ap50 (maxq3)": method["ap50"],
        "ciou (maxq3)": method["ciou"],
        "f_pos_neg": method["f_pos_neg"],
        "pointing": method["pointing"],
    }
    for neg in NEGATIVES:
        out[f"separability {neg}"] = method["separability"][neg]
        out[f"tpr_at_5fpr {neg}"] = method["tpr_at_5fpr"][neg]
        out[f"hallucination {neg}"] = method["hallucination"][neg]
        out[f"pia {neg}"] = method["pia"][neg]
    for cond in ("positive", *NEGATIVES):
        out[f"below_half {cond}"] = method["below_half"][cond]
        out[f"median_peak {cond}"] = method["median_peak"][cond]
    for family, value in method["unseen"].items():
        out[f"unseen separability {family}"] = value
    return out | method["video"]


def half_silent_video(demo_dir: Path, arm: str) -> dict[str, float]:
    """(ours) The arm's released model, with its calibrated threshold, on a video of a test frame over 6 s of its
    object's sound then 6 s of silence, analysed at 1 fps: the share of the windows inside the sound (t < 5 s) that
    show a source, and of the windows inside the silence (t >= 8 s) that abstain. The item is fixed by the data alone:
    the loudest of the first eight test clips (sources range from loud to as faint as the room), never by a score.
    This was a test of the suite until 2026-12-06 (expected to fail while issue 19 is open); it is measured here,
    over seeds, on the demo's own models."""
    loc = load_localizer(demo_dir / "models" / arm)
    items = read_synth(demo_dir / "data", "test")[:8]
    item = max(items, key=lambda it: float(load_audio(it.audio, 16000).abs().max()))
    sound = load_audio(item.audio, 16000).numpy()
    wave = np.concatenate([sound, sound, np.zeros(2 * len(sound), np.float32)])
    video = write_still_video(demo_dir / f"half_silent_{arm}.mp4", Image.open(item.image).convert("RGB"), wave)
    timeline = localize_video(loc, video, None, fps=1, progress=False)
    decided = {round(f["time"]): f["abstain"] for f in timeline.frames}
    return {
        "half-silent video: sounding windows shown": sum(decided[t] is False for t in range(5)) / 5,
        "half-silent video: silent windows abstained": sum(decided[t] is True for t in range(8, 12)) / 4,
    }


def _stats(values: list[float], worst_is_low: bool) -> str:
    mean = statistics.fmean(values)
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    worst = min(values) if worst_is_low else max(values)
    return f"{mean:.3f} +- {std:.3f} (worst {worst:.3f})"


LOWER_IS_BETTER = ("hallucination", "pia", "below_half positive", "median_peak silence", "median_peak noise")


def targets(runs: dict[int, dict]) -> list[tuple[str, bool, str]]:
    """Issue 19's done-when, each with its measured value."""
    b = {s: r["methods"]["baseline"] for s, r in runs.items()}
    o = {s: r["methods"]["sslsan"] for s, r in runs.items()}

    def mean(values) -> float:
        return statistics.fmean(list(values))

    out = []
    ours_ap, base_ap = mean(m["adaptive_ap50"] for m in o.values()), mean(m["adaptive_ap50"] for m in b.values())
    out.append(("both adaptive AP50 >= 0.50 (mean)", min(ours_ap, base_ap) >= 0.5, f"{base_ap:.3f} / {ours_ap:.3f}"))
    out.append(("SSL-SaN adaptive AP50 >= baseline - 0.02", ours_ap >= base_ap - 0.02, f"{ours_ap - base_ap:+.3f}"))
    for neg in ("silence", "noise"):
        worst = min(m["separability"][neg] for m in o.values())
        out.append((f"SSL-SaN separability {neg} >= 0.98 every seed", worst >= 0.98, f"worst {worst:.3f}"))
        tpr = mean(m["tpr_at_5fpr"][neg] for m in o.values())
        out.append((f"SSL-SaN TPR@5%FPR {neg} >= 0.90 (mean)", tpr >= 0.9, f"{tpr:.3f}"))
    hall = [m["hallucination"]["silence"] for m in b.values()]
    out.append(("baseline hallucination silence >= 0.60 (mean)", mean(hall) >= 0.6, f"{mean(hall):.3f}"))
    gap = min(o[s]["f_pos_neg"] - b[s]["f_pos_neg"] for s in runs)
    out.append(("F_pos_neg SSL-SaN >= baseline + 0.10 every seed", gap >= 0.1, f"worst gap {gap:+.3f}"))
    unseen = mean(v for m in o.values() for v in m["unseen"].values())
    base_unseen = mean(v for m in b.values() for v in m["unseen"].values())
    out.append(
        ("SSL-SaN unseen separability >= 0.95 (mean)", unseen >= 0.95, f"{unseen:.3f} (baseline {base_unseen:.3f})")
    )
    video = min(m["video"]["half-silent video: silent windows abstained"] for m in o.values())
    out.append(("SSL-SaN abstains on every silent window of the half-silent video, every seed", video == 1, f"{video}"))
    for cond, bound, op in (("silence", 0.9, ">="), ("noise", 0.9, ">="), ("positive", 0.2, "<=")):
        value = mean(m["below_half"][cond] for m in o.values())
        ok = value >= bound if op == ">=" else value <= bound
        out.append((f"SSL-SaN below_half {cond} {op} {bound} (mean)", ok, f"{value:.3f}"))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="vssl-demo-seeds", help="folder of the runs (one per seed)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--quick", action="store_true", help="the quick demo")
    parser.add_argument("overrides", nargs="*", help="key=value overrides of the demo's config")
    args = parser.parse_args()
    runs: dict[int, dict] = {}
    seconds: dict[int, float] = {}
    for seed in args.seeds:
        started = time.perf_counter()
        out = Path(args.out) / f"seed_{seed}"
        cfg = apply_overrides(demo_config(quick=args.quick, seed=seed), args.overrides)
        runs[seed] = run_demo(cfg, out, progress=False)
        for arm in ARMS:
            runs[seed]["methods"][arm]["video"] = half_silent_video(out, arm)
        seconds[seed] = time.perf_counter() - started
        print(f"seed {seed}: {seconds[seed]:.0f} s", flush=True)
    threads, wall = torch.get_num_threads(), _stats(list(seconds.values()), worst_is_low=False)
    print(
        f"\n{'vssl demo --quick' if args.quick else 'vssl demo'}, seeds {args.seeds}: {cpu_model()}, "
        f"{os.cpu_count()} cores, {threads} torch threads; wall time per seed {wall} s; overrides: "
        f"{' '.join(args.overrides) or 'none'}\n"
    )
    per_arm = {arm: {s: figures(runs[s]["methods"][arm]) for s in runs} for arm in ARMS}
    print(f"| figure | {' | '.join(ARMS)} |\n|---|---|---|")
    for key in per_arm["sslsan"][args.seeds[0]]:
        low = any(key.startswith(prefix) for prefix in LOWER_IS_BETTER)
        cells = []
        for arm in ARMS:
            values = [v for v in (per_arm[arm][s][key] for s in runs) if v is not None]
            cells.append(_stats(values, worst_is_low=not low) if values else "n/a")
        print(f"| {key} | {' | '.join(cells)} |")
    print("\nTargets (issue 19):")
    for name, ok, value in targets(runs):
        print(f"  [{'met' if ok else 'NOT met'}] {name}: {value}")
    summary = {"cpu": cpu_model(), "threads": threads, "seconds": seconds, "figures": per_arm, "quick": args.quick}
    summary["overrides"] = args.overrides
    (Path(args.out) / "summary.json").write_text(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
