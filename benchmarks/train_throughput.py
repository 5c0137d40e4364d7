"""Training throughput: vssl's trainer on a shard cache vs a per-sample loop in the style of the reference code.

The reference style (as the EZ-VSL family's training scripts do it, written anew here): per sample, PIL
decodes the JPEG, torchvision resizes it (bicubic), crops and flips it, soundfile reads the whole wav,
scipy computes the spectrogram of its central 3 s; samples are stacked, the model trains in fp32 with
the default memory layout and PyTorch's default Adam. vssl: ``vssl.train.train`` on ``data=cache:...``
(``vssl cache``: no decoding per epoch, uint8 frames normalised per batch, spectrograms batched) with
``channels_last``, ``fused_adam`` and the chosen ``amp`` (``--plain``: without those three). Same model,
objective (EZ-VSL), batch and synthetic clips (square frames, 10 s wavs like VGGSound's); one process,
all torch threads.

Timing on a shared machine (``--threads 1`` is steadier there: a two-thread kernel waits for its
descheduled thread): the two loops are interleaved step by step — after each step of vssl's
trainer (its ``on_log`` hook) the reference takes one step — so both see the same load; the first
``--warmup`` pairs are dropped. Printed: every pair with the 1-minute load average, each side's best
and median, and the median of the per-pair ratios. ``--reference-amp`` also runs the reference under
vssl's autocast (a third loop, same interleaving), to tell precision from pipeline.
GFLOP/s = model FLOPs per sample (torch's FlopCounterMode, forward + backward) x samples/s, against the
machine's matmul peak: cores x the best one-thread 2048^2 matmul, measured before and after (the matmul
on the threads in use is printed too).
Usage: python benchmarks/train_throughput.py [--model resnet18] [--batch 16] [--steps 8] [--amp none|bf16]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from contextlib import nullcontext
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
from PIL import Image
from scipy import signal
from torch.utils.flop_counter import FlopCounterMode
from torchvision import transforms

from vssl.data.cache import CacheConfig, build_cache
from vssl.data.formats import read_items
from vssl.data.synth import SynthConfig, generate
from vssl.models.objectives import Batch, ObjectiveConfig, create_objective
from vssl.models.registry import create_model, model_config
from vssl.train.config import AMP_DTYPES
from vssl.train.loop import TrainConfig, train


class ReferenceLoop:
    """Per-sample decoding as the reference loaders do it (PIL + torchvision, soundfile + scipy), then a step."""

    def __init__(self, model_name: str, items, batch: int, amp: str = "none"):
        torch.manual_seed(0)
        self.model = create_model(model_name).train()
        cfg = self.model.cfg
        self.items, self.batch, self.audio, self.amp = items, batch, cfg.audio, AMP_DTYPES[amp]
        self.image = transforms.Compose(
            [
                transforms.Resize(cfg.image.train_short_side, interpolation=transforms.InterpolationMode.BICUBIC),
                transforms.RandomCrop(cfg.image.size),
                transforms.RandomHorizontalFlip(),
                transforms.ToTensor(),
                transforms.Normalize(cfg.image.mean, cfg.image.std),
            ]
        )
        self.objective = create_objective(ObjectiveConfig(name="ezvsl"), cfg.audio.num_samples, seed=0)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=1e-4)
        self.done = 0

    def sample(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        item, a = self.items[i % len(self.items)], self.audio
        image = self.image(Image.open(item.image).convert("RGB"))
        samples, rate = sf.read(item.audio, dtype="float32")
        start = max(0, len(samples) // 2 - a.num_samples // 2)
        window = samples[start : start + a.num_samples]
        _, _, spec = signal.spectrogram(window, rate, nperseg=a.nperseg, noverlap=a.noverlap)
        return image, torch.from_numpy(np.log(spec + a.log_eps) / a.log_divisor).float()[None]

    def step(self, size: int | None = None) -> float:
        """One training step on the next ``size`` (default: batch) samples; returns its samples/s."""
        started, size = time.perf_counter(), size or self.batch
        indices = range(self.done, self.done + size)
        images, specs = (torch.stack(x) for x in zip(*(self.sample(i) for i in indices), strict=True))
        batch = Batch(images=images, waves=torch.zeros(size, 0), step=self.done // size, specs=specs)
        autocast = torch.autocast("cpu", dtype=self.amp) if self.amp is not None else nullcontext()
        with autocast:
            loss = self.objective(self.model, batch)["loss"]
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()
        self.done += size
        return size / (time.perf_counter() - started)

    def flops_per_sample(self) -> float:
        with FlopCounterMode(display=False) as flops:
            self.step(size=2)
        return flops.get_total_flops() / 2


CORES = len(os.sched_getaffinity(0))


def matmul_peak(dtype: torch.dtype, threads: int, n: int = 2048, repeats: int = 10) -> float:
    """Best GFLOP/s of an n x n matmul in ``dtype`` on ``threads`` torch threads."""
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    a @ b
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t)
    torch.set_num_threads(before)
    return 2 * n**3 / best / 1e9


def measure_peaks(dtypes: dict[str, torch.dtype], peaks: dict[str, tuple[float, float]]) -> dict:
    """``{name: (machine peak = cores x one-thread peak, matmul on the torch threads)}``, best of these and
    ``peaks``."""
    threads = torch.get_num_threads()
    for name, dtype in dtypes.items():
        now = (CORES * matmul_peak(dtype, 1), matmul_peak(dtype, threads))
        peaks[name] = tuple(max(a, b) for a, b in zip(peaks.get(name, (0.0, 0.0)), now, strict=True))
    return peaks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="resnet18", help="registered size (resnet18 = the published architecture)")
    parser.add_argument("--batch", type=int, default=16, help="pairs per step")
    parser.add_argument("--steps", type=int, default=8, help="timed step pairs")
    parser.add_argument("--warmup", type=int, default=2, help="untimed first step pairs (kernel selection)")
    parser.add_argument("--amp", default="none", choices=list(AMP_DTYPES), help="vssl's autocast (reference: fp32)")
    parser.add_argument("--reference-amp", action="store_true", help="also time the reference under --amp")
    parser.add_argument("--plain", action="store_true", help="vssl without channels_last and fused_adam")
    parser.add_argument("--workers", type=int, default=0, help="vssl's loader worker processes")
    parser.add_argument("--image-size", type=int, default=360, help="side of the stored square frames")
    parser.add_argument("--threads", type=int, default=0, help="torch threads for both sides (default: torch's)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    dtypes = {"fp32": torch.float32, **({"bf16": torch.bfloat16} if args.amp == "bf16" else {})}
    peaks = measure_peaks(dtypes, {})
    rates: dict[str, list[float]] = {"vssl": [], "reference": []}
    waits: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        n = args.batch * (args.warmup + args.steps)
        synth = SynthConfig(n_train=n, n_calibration=0, n_test=0, image_size=args.image_size, duration=10.0)
        spec = f"synth:{generate(synth, Path(tmp) / 'data', progress=False)}"
        size = model_config(args.model)
        cache = build_cache(
            spec, Path(tmp) / "cache", CacheConfig(model=args.model), size.image, size.audio, progress=False
        )
        items = read_items(spec, "train")
        loops = {"reference": ReferenceLoop(args.model, items, args.batch)}
        if args.reference_amp:
            loops[f"reference {args.amp}"] = ReferenceLoop(args.model, items, args.batch, args.amp)
            rates[f"reference {args.amp}"] = []
        flops_per_sample = loops["reference"].flops_per_sample()

        def interleave(step: int, values: dict[str, float]) -> None:
            load = os.getloadavg()[0]
            pair = {"vssl": values["samples_per_s"], **{name: loop.step() for name, loop in loops.items()}}
            timed = step > args.warmup
            for name, rate in pair.items():
                if timed:
                    rates[name].append(rate)
            if timed:
                waits.append(values["data_wait"])
            shown = "  ".join(f"{k} {v:6.2f}" for k, v in pair.items())
            print(f"step {step:2d} {'' if timed else '(warm-up) '}samples/s: {shown}  (load {load:.2f})", flush=True)

        fast = not args.plain
        cfg = TrainConfig(
            data=f"cache:{cache}",
            model=args.model,
            objective=ObjectiveConfig(name="ezvsl"),
            epochs=1,
            batch_size=args.batch,
            amp=args.amp,
            channels_last=fast,
            fused_adam=fast,
            num_workers=args.workers,
            checkpoint_every=10**9,
            log_every=1,
            progress=False,
        )
        train(cfg, Path(tmp) / "run", on_log=interleave)
    peaks = measure_peaks(dtypes, peaks)
    threads = torch.get_num_threads()
    print(f"\nmodel {args.model}, batch {args.batch}, {args.image_size} px frames, {len(rates['vssl'])} timed steps")
    options = "channels_last, fused_adam, " if fast else ""
    print(f"vssl: cache, {options}amp={args.amp}, num_workers={args.workers}; {threads} threads, {os.cpu_count()} CPUs")
    print(f"load average (1, 5, 15 min) at the end: {', '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"model FLOPs per sample (forward + backward): {flops_per_sample / 1e9:.1f} GFLOP")
    for k, (machine, threaded) in peaks.items():
        print(
            f"matmul peak {k}: {machine:.0f} GFLOP/s ({CORES} cores x one thread); {threads} thread(s): {threaded:.0f}"
        )
    for name, values in rates.items():
        peak = peaks["fp32" if name == "reference" else list(peaks)[-1]][0]
        best, median = max(values), statistics.median(values)
        gflops = median * flops_per_sample / 1e9
        print(
            f"{name:16s} best {best:6.2f}  median {median:6.2f} samples/s;"
            f"  median {gflops:6.1f} GFLOP/s = {100 * gflops / peak:4.1f}% of peak {peak:.0f}"
        )
    print(f"vssl waited for its loader {100 * statistics.mean(waits):.1f}% of the time (mean over timed steps)")
    for name in rates:
        if name != "vssl":
            ratios = [a / b for a, b in zip(rates["vssl"], rates[name], strict=True)]
            best = max(rates["vssl"]) / max(rates[name])
            print(f"speed-up vssl / {name}: median of pairs {statistics.median(ratios):.2f}x, of bests {best:.2f}x")


if __name__ == "__main__":
    main()
