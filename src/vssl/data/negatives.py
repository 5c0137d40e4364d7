"""Negative audio: sounds with nothing visible to localize (SPEC §1, §5).

* silence: zeros;
* noise: Gaussian noise clipped to [-1, 1]; white with sigma = 1 is what the SSL-SaN authors' demo
  file holds (and what evaluation uses); training may also draw pink/brown noise at a random gain
  so the model cannot learn one noise file;
* offscreen: a real sound of a class that is not in the frame (chosen by the evaluation code).

Every draw takes an explicit ``torch.Generator``: negatives are reproducible from a seed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

NOISE_COLORS = ("white", "pink", "brown")


def silence(n: int, num_samples: int) -> torch.Tensor:
    """``[n, num_samples]`` zeros."""
    return torch.zeros(n, num_samples)


def colored_noise(n: int, num_samples: int, color: str, generator: torch.Generator) -> torch.Tensor:
    """``[n, num_samples]`` Gaussian noise with a 1/f^k power spectrum, unit standard deviation.

    ``white`` k=0, ``pink`` k=1, ``brown`` k=2 (shaped in the frequency domain, then re-normalised).
    """
    white = torch.randn(n, num_samples, generator=generator)
    if color == "white":
        return white
    exponent = {"pink": 1.0, "brown": 2.0}.get(color)
    if exponent is None:
        raise ValueError(f"unknown noise colour {color!r}; known: {NOISE_COLORS}")
    spectrum = torch.fft.rfft(white, dim=-1)
    freqs = torch.arange(spectrum.shape[-1], dtype=torch.float32).clamp(min=1.0)
    shaped = torch.fft.irfft(spectrum / freqs.pow(exponent / 2), n=num_samples, dim=-1)
    return shaped / shaped.std(dim=-1, keepdim=True).clamp(min=1e-12)


def white_noise(n: int, num_samples: int, generator: torch.Generator, sigma: float = 1.0) -> torch.Tensor:
    """``[n, num_samples]`` white Gaussian noise N(0, sigma^2) clipped to [-1, 1]: the evaluation noise."""
    return (torch.randn(n, num_samples, generator=generator) * sigma).clamp(-1.0, 1.0)


@dataclass(frozen=True)
class TrainingNegativesConfig:
    """What negative audio SSL-SaN draws for each training batch."""

    silence: bool = True  # one all-zero clip per batch
    num_noise: int = 2  # noise clips per batch (0 disables noise negatives)
    colors: tuple[str, ...] = NOISE_COLORS  # noise colours drawn uniformly
    gain_db: tuple[float, float] = (-30.0, 0.0)  # random level relative to sigma = 1 (uniform in dB)

    @property
    def count(self) -> int:
        return int(self.silence) + self.num_noise


class NegativeSampler:
    """Draws a batch's negatives, reproducibly: batch ``step`` always gets the same clips."""

    def __init__(self, cfg: TrainingNegativesConfig, num_samples: int, seed: int):
        for color in cfg.colors:
            if color not in NOISE_COLORS:
                raise ValueError(f"unknown noise colour {color!r}; known: {NOISE_COLORS}")
        self.cfg = cfg
        self.num_samples = num_samples
        self.seed = seed

    def draw(self, step: int) -> torch.Tensor:
        """``[count, num_samples]`` negative waveforms in [-1, 1] for training step ``step``."""
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + step)
        clips = [silence(1, self.num_samples)] if self.cfg.silence else []
        lo, hi = self.cfg.gain_db
        for _ in range(self.cfg.num_noise):
            color = self.cfg.colors[int(torch.randint(len(self.cfg.colors), (1,), generator=g))]
            gain_db = lo + (hi - lo) * float(torch.rand(1, generator=g))
            noise = colored_noise(1, self.num_samples, color, g) * math.pow(10.0, gain_db / 20.0)
            clips.append(noise.clamp(-1.0, 1.0))
        if not clips:
            return torch.zeros(0, self.num_samples)
        return torch.cat(clips)
