"""Audio front end: vssl's batched torch log-spectrogram vs the reference style (scipy, one clip at a time).

Both sides run in this process on the same random 3 s clips and must agree; prints clips/s and the ratio.
Usage: python benchmarks/frontend_speed.py [--clips 256] [--batch 64]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from scipy import signal

from vssl.audio import AudioConfig, log_spectrogram


def reference(clips: np.ndarray, cfg: AudioConfig) -> np.ndarray:
    out = []
    for x in clips:
        _, _, s = signal.spectrogram(x, fs=cfg.sample_rate, nperseg=cfg.nperseg, noverlap=cfg.noverlap)
        out.append(np.log(s + cfg.log_eps) / cfg.log_divisor)
    return np.stack(out)


def ours(clips: torch.Tensor, cfg: AudioConfig, batch: int) -> torch.Tensor:
    return torch.cat([log_spectrogram(clips[i : i + batch], cfg) for i in range(0, len(clips), batch)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=256)
    parser.add_argument("--batch", type=int, default=64)
    args = parser.parse_args()
    cfg = AudioConfig()
    clips = np.random.default_rng(0).uniform(-0.5, 0.5, (args.clips, cfg.num_samples)).astype(np.float32)
    t0 = time.perf_counter()
    ref = reference(clips, cfg)
    t_ref = time.perf_counter() - t0
    t0 = time.perf_counter()
    got = ours(torch.from_numpy(clips), cfg, args.batch)
    t_ours = time.perf_counter() - t0
    err = float(np.abs(got[:, 0].numpy() - ref).max())
    print(f"clips: {args.clips}  torch threads: {torch.get_num_threads()}  max abs difference: {err:.2e}")
    print(f"reference (scipy, per clip): {args.clips / t_ref:8.1f} clips/s")
    print(f"vssl (torch, batch {args.batch}):    {args.clips / t_ours:8.1f} clips/s")
    print(f"speed-up: {t_ref / t_ours:.2f}x")


if __name__ == "__main__":
    main()
