"""Evaluation speed: vssl against the reference code's way of evaluating, same items, model and negatives.

1. Four-condition maps: vssl's ``compute_maps`` vs a loop that runs the whole model once per condition.
   vssl encodes each image once, every clip's audio once (positives double as offscreen partners), the
   silence and the noise clip once per run. The reference style runs image + audio encoders for each of
   positive, silence, noise and offscreen. Both must give the same maps; prints images/s and the ratio.

2. End to end: ``vssl eval`` (`run_eval`: maps, every metric, report.json/md, per_sample.csv, figures)
   against the ICASSP'25 evaluation as its code does it (written anew here, see `reference_eval`): for
   each repeat, for each item, decode the frame and the positive and offscreen clips, compute four scipy
   spectrograms (positive, noise, silence, offscreen), run the whole model (image and audio encoders)
   once per condition on the batch, then score every sample in numpy: maps upsampled to 224x224, cIoU
   under the median, fixed, adaptive and universal thresholds, pIA of each negative and IoU of each pair
   of conditions at each threshold; means, AP50, AUC, AOC and F from the lists at the end. Both read the
   same universal thresholds from the model folder (no calibration split; the reference hard-codes its
   thresholds), calibrated beforehand on n/4 items so that they bite on random weights, and use the same
   repeat seeds, noise clips and offscreen partners, so they compute the same numbers, printed side by
   side. As in vssl's run, the reference does no OGL, applies the log to silence and noise (its code
   skipped it, a bug) and loads in the main process (its code used 8 loader workers; vssl's
   ``compute_maps`` loads in the main process too). It reads only the central 3 s of a wav, as its
   PyAV seek does, and upsamples with one matrix product per map, as cheap as its cv2.resize; its
   per-item lookup of the item's class in a dict of file lists (linear in the set's size) is left out.
   vssl eval runs once before and twice after the reference (the median counts). Printed: both wall times with their
   network-forward share, the ratio, and projections of a VGG-SS evaluation (5158 items, ``--repeats``)
   on this CPU and on one GPU (an assumption, stated): the reference is linear in items x repeats; vssl's
   fixed cost and cost per item are fitted on n/4 and n items, and its two quadratic parts (offscreen
   partner draws, retrieval matrix) are timed at 5158 items.

Same synthetic items for both parts (``--image-size`` px frames, ``--duration`` s wavs: VGGSound's
shape by default; boxes without segmentation masks, as VGG-SS); random weights of ``--model`` (the speed
does not depend on them). On a shared machine, ``--threads 1`` is steadier (two-thread kernels stall on
a descheduled thread); the load average is printed.
Usage: python benchmarks/eval_speed.py [--model resnet18] [--n 32] [--batch 16] [--repeats 10]
"""

from __future__ import annotations

import argparse
import functools
import math
import os
import shutil
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf
import torch
import torch.nn.functional as F
from machine import cpu_model
from PIL import Image
from scipy import signal
from torchvision import transforms

from vssl.audio import AudioConfig
from vssl.data.dataset import AVDataset
from vssl.data.formats import read_items
from vssl.data.items import AVItem
from vssl.data.synth import SynthConfig, generate
from vssl.evaluation.maps import NEGATIVES, compute_maps, noise_clip, offscreen_partners, repeat_seeds
from vssl.evaluation.run import EvalConfig, run_eval
from vssl.maps import paired_maps, pairwise_maps
from vssl.models.localizer import AVLocalizer
from vssl.models.registry import create_model
from vssl.models.release import load_model, read_release_config, save_release, update_release_config
from vssl.negatives import silence
from vssl.vision import ImageConfig

CONDITIONS = ("positive", *NEGATIVES)
VGGSS_ITEMS = 5158
VGGSS_CLASSES = 220  # sound classes of VGG-SS (offscreen partners come from another class)
EVAL_SIZE = 224
# Pairs of conditions whose binarisations the reference compares (IoU), at every threshold but the median.
PAIRS = [("positive", n) for n in NEGATIVES] + [("silence", "noise"), ("silence", "offscreen"), ("noise", "offscreen")]
X_GRID = np.linspace(0.0, 1.0, 21)  # cIoU and pIA grids of AUC and AOC


# ---------------------------------------------------------------- 1. four-condition maps


@torch.no_grad()
def per_condition_loop(model, items, batch: int, seed: int) -> dict[str, torch.Tensor]:
    """The whole model (image and audio encoders) once per condition and batch."""
    dataset = AVDataset(items, model.cfg.image, model.cfg.audio, train=False)
    n_samples = model.cfg.audio.num_samples
    (s,) = repeat_seeds(seed, 1)
    partners = offscreen_partners(items, s)
    noise = noise_clip(s, n_samples)
    out: dict[str, list[torch.Tensor]] = {c: [] for c in CONDITIONS}
    for start in range(0, len(items), batch):
        idx = list(range(start, min(start + batch, len(items))))
        images = torch.stack([dataset.load_image(i) for i in idx])
        waves = {
            "positive": torch.stack([dataset.load_wave(i) for i in idx]),
            "silence": silence(len(idx), n_samples),
            "noise": noise.expand(len(idx), -1),
            "offscreen": torch.stack([dataset.load_wave(partners[i]) for i in idx]),
        }
        for cond, w in waves.items():
            out[cond].append(paired_maps(*model(images, w)))
    return {c: torch.cat(v) for c, v in out.items()}


def compare_maps(model: AVLocalizer, items: list[AVItem], args: argparse.Namespace) -> None:
    """Part 1: prints images/s of both and the largest map difference."""
    t0 = time.perf_counter()
    ref = per_condition_loop(model, items, args.batch, seed=0)
    t_ref = time.perf_counter() - t0
    t0 = time.perf_counter()
    ours = compute_maps(model, items, args.batch, seed=0, progress=False, repeats=1, retrieval=False)
    t_ours = time.perf_counter() - t0
    worst = max(float((ref[c] - ours.maps[c]).abs().max()) for c in ref)
    print(f"model {args.model}, {args.n} images x 4 conditions, torch threads = {torch.get_num_threads()}")
    print(f"whole model per condition: {t_ref:7.2f} s  {args.n / t_ref:7.2f} images/s")
    print(f"vssl compute_maps:         {t_ours:7.2f} s  {args.n / t_ours:7.2f} images/s")
    print(f"speed-up: {t_ref / t_ours:.2f}x   max |map difference|: {worst:.1e}")


# ---------------------------------------------------------------- 2. end to end: the reference's way


class ForwardClock:
    """Seconds spent in the networks (`AVLocalizer.encode_image`, `encode_audio`) while `active`."""

    NAMES = ("encode_image", "encode_audio")

    def __init__(self) -> None:
        self.seconds = 0.0

    def _timed(self, method: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(method)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return method(*args, **kwargs)
            finally:
                self.seconds += time.perf_counter() - start

        return wrapper

    @contextmanager
    def active(self) -> Iterator[ForwardClock]:
        saved = {name: getattr(AVLocalizer, name) for name in self.NAMES}
        for name, method in saved.items():
            setattr(AVLocalizer, name, self._timed(method))
        try:
            yield self
        finally:
            for name, method in saved.items():
                setattr(AVLocalizer, name, method)


def reference_clip(path: Path, num_samples: int) -> np.ndarray:
    """The central window ``[num_samples]`` float64 of a wav as the reference reads it: only the window is
    decoded, channels averaged, a short clip tiled (the same start sample as vssl's `center_window`)."""
    frames = sf.info(str(path)).frames
    start = int(max(0.0, frames / 2 - num_samples / 2))
    wave = sf.read(str(path), start=start, frames=num_samples, dtype="float64", always_2d=True)[0].mean(axis=1)
    if len(wave) < num_samples:
        wave = np.tile(wave, num_samples // len(wave) + 1)[:num_samples]
    return wave


def reference_spectrogram(wave: np.ndarray, cfg: AudioConfig) -> torch.Tensor:
    """scipy's spectrogram (Tukey window, density), log, / 12: ``[1, 257, 200]`` float32."""
    _, _, spec = signal.spectrogram(wave, cfg.sample_rate, nperseg=cfg.nperseg, noverlap=cfg.noverlap)
    return torch.from_numpy(np.log(spec + cfg.log_eps) / cfg.log_divisor).float()[None]


def reference_image_transform(cfg: ImageConfig) -> transforms.Compose:
    """The reference's test transform: bicubic resize of the whole frame, ToTensor, ImageNet normalisation."""
    bicubic = transforms.InterpolationMode.BICUBIC
    return transforms.Compose(
        [
            transforms.Resize((cfg.size, cfg.size), interpolation=bicubic),
            transforms.ToTensor(),
            transforms.Normalize(cfg.mean, cfg.std),
        ]
    )


def interpolation_matrix(n_in: int, n_out: int = EVAL_SIZE) -> np.ndarray:
    """``[n_out, n_in]`` weights of bilinear upsampling with align_corners=True: ``W @ m @ W.T`` upsamples ``m``."""
    pos = np.linspace(0.0, n_in - 1, n_out)
    lo = np.minimum(np.floor(pos).astype(int), n_in - 2)
    frac = pos - lo
    weights = np.zeros((n_out, n_in))
    weights[np.arange(n_out), lo] = 1.0 - frac
    weights[np.arange(n_out), lo + 1] += frac
    return weights


def gt_map(boxes: tuple[tuple[float, float, float, float], ...]) -> np.ndarray:
    """VGG-SS ground truth as the reference builds it: union of boxes (clipped, x224, truncated), ``[224, 224]``."""
    out = np.zeros((EVAL_SIZE, EVAL_SIZE))
    for box in boxes:
        x0, y0, x1, y1 = (np.clip(np.array(box), 0, 1) * EVAL_SIZE).astype(int)
        out[y0:y1, x0:x1] = 1
    return out


def ciou(pred: np.ndarray, gt: np.ndarray) -> float:
    denom = gt.sum() + (pred * (gt == 0)).sum()
    return float((pred * gt).sum() / denom) if denom > 0 else 0.0  # the reference appends 0 for NaN


def iou(a: np.ndarray, b: np.ndarray) -> float:
    """IoU of two binary maps; both empty -> 1, one empty -> 0 (the reference's rule)."""
    if not a.any() and not b.any():
        return 1.0
    return float(np.logical_and(a, b).sum() / np.logical_or(a, b).sum())


def trapezoid(y: np.ndarray, x: np.ndarray = X_GRID) -> float:
    return float(((y[1:] + y[:-1]) / 2 * np.diff(x)).sum())


class ReferenceScores:
    """Per-sample numpy metrics of the ICASSP'25 code (no OGL), accumulated in lists and summarised at the end."""

    def __init__(self, universal: dict[str, float], map_size: int):
        self.universal = universal
        self.up = interpolation_matrix(map_size)
        self.values: dict[str, list[float]] = defaultdict(list)

    def add(self, heat: dict[str, np.ndarray], gt: np.ndarray) -> None:
        """One sample: ``heat[condition]`` ``[h, w]`` on the (cos+1)/2 scale, ``gt`` ``[224, 224]``."""
        for cond, m in heat.items():
            self.values[f"max/{cond}"].append(float(m.max()))
            self.values[f"min/{cond}"].append(float(m.min()))
        up = {cond: self.up @ m @ self.up.T for cond, m in heat.items()}
        pos = up["positive"]
        ranked = np.sort(pos, axis=None)
        area = int((gt != 0).sum()) or pos.size // 2
        thresholds = {"median": ranked[pos.size // 2], "fixed": 0.5, "adaptive": ranked[pos.size - area]}
        for name, t in {**thresholds, **self.universal}.items():
            above = {cond: m > t for cond, m in up.items()}  # every binarisation of the ICASSP'25 code: map > t
            # cIoU: universal thresholds map > t; median, fixed and adaptive map >= t (the EZ-VSL protocols, SPEC 4)
            self.values[f"ciou/{name}"].append(ciou(above["positive"] if name in self.universal else pos >= t, gt))
            for neg in NEGATIVES:
                self.values[f"pia/{neg}/{name}"].append(float(above[neg].mean()))
            if name != "median":
                for a, b in PAIRS:
                    self.values[f"iou/{a}-{b}/{name}"].append(iou(above[a], above[b]))

    def summary(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for key, values in self.values.items():
            v = np.asarray(values)
            out[key] = float(v.mean())
            if key.startswith("ciou/"):
                out[f"{key}/ap50"] = float((v >= 0.5).mean())
                out[f"{key}/auc"] = trapezoid((v[None, :] >= X_GRID[:, None]).mean(axis=1))
            elif key.startswith("pia/"):
                out[f"{key}/aoc"] = trapezoid((v[None, :] <= X_GRID[:, None]).mean(axis=1))
            else:
                out[f"{key}/median"] = float(np.median(v))
        for name in self.universal:
            clear = np.mean([100 - 100 * out[f"pia/{neg}/{name}"] for neg in NEGATIVES])
            c = 100 * out[f"ciou/{name}"]
            out[f"f/{name}"] = 2 * c * clear / (c + clear) if c + clear > 0 else 0.0
        return out


@torch.no_grad()
def reference_eval(
    model: AVLocalizer, items: list[AVItem], batch: int, repeats: int, universal: dict[str, float]
) -> dict[str, float]:
    """The ICASSP'25 evaluation loop (see the module doc), with vssl's repeat seeds, noise clips and partners."""
    audio_cfg, n_samples = model.cfg.audio, model.cfg.audio.num_samples
    image = reference_image_transform(model.cfg.image)
    gts = [gt_map(item.boxes) for item in items]
    scores: ReferenceScores | None = None
    for seed in repeat_seeds(0, repeats):  # the reference rebuilds its dataset and loader per seed
        partners = offscreen_partners(items, seed)
        noise = noise_clip(seed, n_samples).double().numpy()
        for start in range(0, len(items), batch):
            idx = range(start, min(start + batch, len(items)))
            frames, specs = [], {cond: [] for cond in CONDITIONS}
            for i in idx:
                frames.append(image(Image.open(items[i].image).convert("RGB")))
                clip = reference_clip(items[i].audio, n_samples)
                waves = {
                    "positive": clip,
                    "silence": np.zeros_like(clip),
                    "noise": noise,
                    "offscreen": reference_clip(items[partners[i]].audio, n_samples),
                }
                for cond, wave in waves.items():
                    specs[cond].append(reference_spectrogram(wave, audio_cfg))
            images = torch.stack(frames)
            heat = {}
            for cond in CONDITIONS:  # the whole model per condition
                maps = paired_maps(model.encode_image(images), model.encode_audio(torch.stack(specs[cond])))
                heat[cond] = ((maps.double() + 1) / 2).numpy()  # (cos+1)/2, the EZ-VSL family's absolute scale
            if scores is None:
                scores = ReferenceScores(universal, heat["positive"].shape[-1])
            for k, i in enumerate(idx):
                scores.add({cond: heat[cond][k] for cond in CONDITIONS}, gts[i])
    assert scores is not None
    return scores.summary()


# ---------------------------------------------------------------- 2. end to end: measuring and projecting


@dataclass
class Timed:
    seconds: float
    forward: float  # seconds in the networks' forwards

    @property
    def host(self) -> float:
        return self.seconds - self.forward


def timed(run: Callable[[], Any]) -> tuple[Any, Timed]:
    clock = ForwardClock()
    with clock.active():
        start = time.perf_counter()
        out = run()
        seconds = time.perf_counter() - start
    return out, Timed(seconds, clock.seconds)


def vssl_eval(release: Path, spec: str, out: Path, args: argparse.Namespace) -> tuple[dict[str, Any], Timed]:
    cfg = EvalConfig(model=str(release), data=spec, calibration_split=None, repeats=args.repeats, batch_size=args.batch)
    return timed(lambda: run_eval(cfg, out, progress=False))


def agreement(ref: dict[str, float], report: dict[str, Any]) -> list[tuple[str, float, float]]:
    """(name, reference, vssl) of the figures both compute."""
    pos, negs = report["result"]["positive"], report["result"]["negatives"]
    rows = [
        ("cIoU maxq3", ref["ciou/maxq3"], pos["universal_ciou_mean"]),
        ("AUC maxq3", ref["ciou/maxq3/auc"], pos["universal_auc"]),
        ("cIoU median", ref["ciou/median"], pos["median_ciou_mean"]),
        ("cIoU fixed 0.5", ref["ciou/fixed"], pos["fixed_ciou_mean"]),
        ("cIoU adaptive", ref["ciou/adaptive"], pos["adaptive_ciou_mean"]),
    ]
    for neg in NEGATIVES:
        rows.append((f"pIA {neg}", ref[f"pia/{neg}/maxq3"], negs[neg]["pia"]))
        rows.append((f"AOC {neg}", ref[f"pia/{neg}/maxq3/aoc"], negs[neg]["aoc"]))
        rows.append((f"IoU(pos, {neg})", ref[f"iou/positive-{neg}/maxq3"], negs[neg]["iou_with_positive"]))
    return rows


def partner_draw_seconds(n: int) -> float:
    """One repeat's offscreen draw (`offscreen_partners`) over ``n`` labelled items: quadratic in ``n``."""
    items = [
        AVItem(id=str(k), image=Path("f.jpg"), audio=Path("a.wav"), label=f"c{k % VGGSS_CLASSES}") for k in range(n)
    ]
    start = time.perf_counter()
    offscreen_partners(items, 0)
    return time.perf_counter() - start


@torch.no_grad()
def retrieval_seconds(model: AVLocalizer, n: int, batch: int) -> float:
    """vssl's image-to-every-audio similarity matrix over ``n`` items (quadratic): one batch timed, x batches."""
    size = model.cfg.image.size
    dim, h, w = model.encode_image(torch.zeros(1, 3, size, size)).shape[1:]
    img, aud = torch.randn(batch, dim, h, w), torch.randn(n, dim)
    pairwise_maps(img, aud[:batch])  # warm-up
    start = time.perf_counter()
    pairwise_maps(img, aud).flatten(2).amax(2)
    return (time.perf_counter() - start) * math.ceil(n / batch)


def duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.1f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.2f} h"


def load() -> str:
    return ", ".join(f"{x:.2f}" for x in os.getloadavg())


def fmt_thresholds(thresholds: dict[str, float]) -> str:
    return ", ".join(f"{k} {v:.4f}" for k, v in thresholds.items())


def end_to_end(release: Path, spec: str, small_spec: str, n_small: int, tmp: Path, args: argparse.Namespace) -> None:
    """Part 2: prints wall times, the ratio, the agreement of the figures and the VGG-SS projections."""
    model = load_model(release)
    thresholds = read_release_config(release)["calibration"]["thresholds"]
    items = read_items(spec, "test")
    n, r = len(items), args.repeats
    print(f"\nend to end: {n} items x {r} repeats x 4 conditions; load average at the start {load()}")
    runs = [vssl_eval(release, spec, tmp / "eval-0", args)]  # one run before the reference, two after
    ref, t_ref = timed(lambda: reference_eval(model, items, args.batch, r, thresholds))
    runs += [vssl_eval(release, spec, tmp / f"eval-{k}", args) for k in (1, 2)]
    report, t_vssl = median_run(runs)
    _, t_small = median_run([vssl_eval(release, small_spec, tmp / f"small-{k}", args) for k in range(3)])
    print(f"universal thresholds (both read them from the model folder): {fmt_thresholds(thresholds)}")
    print(
        f"reference style (decode, scipy, whole model per condition, numpy per sample): {t_ref.seconds:8.2f} s"
        f"  (network forwards {t_ref.forward:.2f} s)"
    )
    print(
        f"vssl eval (run_eval: maps, metrics, report, per-sample csv, figures):         {t_vssl.seconds:8.2f} s"
        f"  (network forwards {t_vssl.forward:.2f} s; median of a run before the reference and two after: "
        f"{', '.join(f'{t.seconds:.2f}' for _, t in runs)} s)"
    )
    print(f"ratio: {t_ref.seconds / t_vssl.seconds:.1f}x (goal >= 10x); load average at the end {load()}")
    rows = agreement(ref, report)
    print("same figures: " + "; ".join(f"{name} {a:.4f} / {b:.4f}" for name, a, b in rows))
    print(f"max |reference - vssl| over these: {max(abs(a - b) for _, a, b in rows):.1e}")

    # vssl: host work and network forwards each fitted as fixed + per item x n on two runs, plus its two
    # quadratic parts timed at VGG-SS size; the reference is linear in items x repeats.
    host_fixed, host_item = fit(t_small.host, t_vssl.host, n_small, n)
    net_fixed, net_item = fit(t_small.forward, t_vssl.forward, n_small, n)
    draws, retrieval = r * partner_draw_seconds(VGGSS_ITEMS), retrieval_seconds(model, VGGSS_ITEMS, args.batch)
    scale = VGGSS_ITEMS / n

    def vssl_projection(k: float) -> float:  # network forwards k times faster
        return host_fixed + net_fixed / k + (host_item + net_item / k) * VGGSS_ITEMS + draws + retrieval

    def ref_projection(k: float) -> float:
        return (t_ref.host + t_ref.forward / k) * scale

    print(
        f"\nprojection, VGG-SS ({VGGSS_ITEMS} items x {r} repeats) on this CPU ({cpu_model()}, "
        f"{len(os.sched_getaffinity(0))} cores, {torch.get_num_threads()} torch threads):"
    )
    per = 1000 / (n * r)
    print(
        f"  reference style: {duration(ref_projection(1))} ({t_ref.host * per:.0f} ms host + "
        f"{t_ref.forward * per:.0f} ms network per item and repeat)"
    )
    print(
        f"  vssl eval:       {duration(vssl_projection(1))} (fixed {host_fixed + net_fixed:.1f} s; per item "
        f"{1000 * host_item:.0f} ms host + {1000 * net_item:.0f} ms network, fitted on {n_small} and {n} items; "
        f"offscreen draws {draws:.1f} s and retrieval matrix {retrieval:.1f} s timed at {VGGSS_ITEMS} items)"
    )
    print(f"  ratio: {ref_projection(1) / vssl_projection(1):.1f}x")
    k = args.gpu_speedup
    print(
        f"one GPU: not measured (no GPU used here). Projection, not a measurement: network forwards {k:g}x faster "
        "than on this CPU (--gpu-speedup), all other work as measured here:"
    )
    print(
        f"  reference style: {duration(ref_projection(k))}; vssl eval: {duration(vssl_projection(k))}; "
        f"ratio {ref_projection(k) / vssl_projection(k):.1f}x"
    )


def median_run(runs: list[tuple[dict[str, Any], Timed]]) -> tuple[dict[str, Any], Timed]:
    """The run of median wall time (a loaded machine slows some runs down)."""
    return sorted(runs, key=lambda run: run[1].seconds)[len(runs) // 2]


def fit(small: float, large: float, n_small: int, n: int) -> tuple[float, float]:
    """(fixed, per item) of a cost measured at ``n_small`` and ``n`` items. When timing noise leaves no positive
    slope, the whole cost counts per item (an upper bound at larger sizes)."""
    per_item = (large - small) / (n - n_small)
    if per_item <= 0 or large - per_item * n < 0:
        return 0.0, large / n
    return large - per_item * n, per_item


@torch.no_grad()
def calibrate(model: AVLocalizer, items: list[AVItem], batch: int) -> dict[str, float]:
    """Universal thresholds from these items' negative maps (one draw), so that they bite on this model's maps:
    the published EZ-VSL values (max 0.6041, max10 0.6645, maxq3 0.6382) lie above every map of random weights."""
    run = compute_maps(model, items, batch, progress=False, repeats=1, retrieval=False)
    up = torch.cat(
        [
            (
                (
                    F.interpolate(
                        run.maps[n][:, None].double(), size=(EVAL_SIZE, EVAL_SIZE), mode="bilinear", align_corners=True
                    )
                    + 1
                )
                / 2
            )
            .flatten(1)
            .amax(1)
            for n in NEGATIVES
        ]
    )
    mean = float(up.mean())
    return {"max": mean, "max10": 1.1 * mean, "maxq3": float(torch.quantile(up, 0.75))}


def vggss_like(root: Path) -> Path:
    """The synthetic set without its segmentation masks: boxes only, as VGG-SS (vssl then scores every sample on
    its closed-form path, as it would VGG-SS; with masks it also computes AVSBench's mask metrics)."""
    shutil.rmtree(root / "masks")
    return root


@torch.no_grad()
def warm_up(model: AVLocalizer, batch: int) -> None:
    """One forward of each network at the batch size first (oneDNN builds its kernels on the first call of a
    shape), so that neither side of a comparison pays for it."""
    size = model.cfg.image.size
    model(torch.zeros(batch, 3, size, size), torch.zeros(batch, model.cfg.audio.num_samples))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="resnet18", help="registered size (resnet18 = the real architecture)")
    parser.add_argument("--n", type=int, default=32, help="images evaluated")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=10, help="negative draws of the end-to-end comparison")
    parser.add_argument("--image-size", type=int, default=360, help="side of the synthetic frames (px)")
    parser.add_argument("--duration", type=float, default=10.0, help="length of the synthetic wavs (s)")
    parser.add_argument("--gpu-speedup", type=float, default=100.0, help="assumed GPU/CPU ratio of forward speed")
    parser.add_argument("--maps-only", action="store_true", help="part 1 only")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (default: torch's)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.n < 16:
        parser.error("--n must be at least 16 (vssl's fixed cost is fitted on n and n/4 >= 8 items)")
    n_small = max(8, args.n // 4)
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        release = save_release(create_model(args.model), tmp / "model")
        model = load_model(release)
        synth = SynthConfig(
            n_train=1, n_calibration=1, n_test=args.n, image_size=args.image_size, duration=args.duration
        )
        spec, small_spec = (
            f"synth:{vggss_like(generate(cfg, tmp / name, progress=False))}"
            for cfg, name in ((synth, "data"), (replace(synth, n_test=n_small), "small"))
        )
        print(f"data: {args.n} synthetic test items, {args.image_size} px frames, {args.duration:g} s wavs")
        print(f"CPU {cpu_model()}, {len(os.sched_getaffinity(0))} cores, torch threads {torch.get_num_threads()}")
        warm_up(model, args.batch)
        compare_maps(model, read_items(spec, "test"), args)
        if not args.maps_only:
            thresholds = calibrate(model, read_items(small_spec, "test"), args.batch)
            calibration = {"thresholds": thresholds, "map_scale": "(cos+1)/2", "data": f"{n_small} benchmark items"}
            update_release_config(release, calibration=calibration)
            end_to_end(release, spec, small_spec, n_small, tmp, args)


if __name__ == "__main__":
    main()
