"""Negative audio: sounds with nothing visible to localize (SPEC §1, §5).

* silence: zeros;
* noise: Gaussian noise clipped to [-1, 1]; white with sigma = 1 is what the SSL-SaN authors' demo
  file holds (and what evaluation uses); training may also draw pink/brown noise at a random gain
  so the model cannot learn one noise file;
* offscreen: a real sound of a class that is not in the frame (chosen by the evaluation code);
* unseen noise families (`UNSEEN_FAMILIES`, ours): everyday noises SSL-SaN never trains on (its noise is
  white, pink or brown), to test whether it rejects negative audio beyond what it was shown.

Every draw takes an explicit ``torch.Generator``: negatives are reproducible from a seed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from vssl.errors import ConfigError

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


SAMPLE_RATE = 16000  # the unseen families are made at the models' rate
UNSEEN_RMS_DB = -20.0  # their level: RMS in dBFS, loud but unclipped


def _band(noise: torch.Tensor, low_hz: float, high_hz: float) -> torch.Tensor:
    """``noise [n, T]`` band-limited to ``low_hz``-``high_hz`` (brick wall in the frequency domain)."""
    spectrum = torch.fft.rfft(noise, dim=-1)
    freqs = torch.fft.rfftfreq(noise.shape[-1], 1 / SAMPLE_RATE)
    return torch.fft.irfft(spectrum * ((freqs >= low_hz) & (freqs <= high_hz)), n=noise.shape[-1], dim=-1)


def _hum(n: int, t: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """Mains hum: 50 or 60 Hz and its harmonics up to 1 kHz, odd ones stronger, steady."""
    mains = torch.where(torch.rand(n, 1, generator=g) < 0.5, 50.0, 60.0)
    out = torch.zeros(n, len(t))
    for k in range(1, 21):
        weight = (1.0 if k % 2 else 0.4) / k
        out += weight * torch.sin(2 * math.pi * k * mains * t + 2 * math.pi * torch.rand(n, 1, generator=g))
    return out


def _babble(n: int, t: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """Babble: six voices, each a pulse train at a gliding pitch (90-250 Hz) through three formant bands,
    switched on and off at a syllabic rate (3-6 Hz)."""
    out = torch.zeros(n, len(t))
    for _ in range(6):
        pitch = 90 + 160 * torch.rand(n, 1, generator=g)
        glide = 1 + 0.1 * torch.sin(2 * math.pi * 0.7 * t + 6 * torch.rand(n, 1, generator=g))
        pulses = (torch.sin(2 * math.pi * pitch * glide * t) > 0.95).float()
        voice = sum(
            _band(pulses, f * 0.85, f * 1.15) for f in (500 + 300 * torch.rand(1, generator=g).item(), 1500, 2500)
        )
        rate = 3 + 3 * torch.rand(n, 1, generator=g)
        out += voice * (torch.sin(2 * math.pi * rate * t + 6 * torch.rand(n, 1, generator=g)) > 0).float()
    return out


def _rain(n: int, t: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """Rain: a dense patter of short decaying drops (about 400 a second) over a soft hiss."""
    drops = (torch.rand(n, len(t), generator=g) < 400 / SAMPLE_RATE).float() * torch.rand(n, len(t), generator=g)
    decay = torch.exp(-torch.arange(64) / 8.0)
    patter = torch.nn.functional.conv1d(drops[:, None], decay.flip(0)[None, None], padding=63)[:, 0, : len(t)]
    patter = _band(patter * torch.randn(n, len(t), generator=g), 1000, 7000)
    return patter + 0.1 * _band(torch.randn(n, len(t), generator=g), 2000, 8000)


def _wind(n: int, t: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """Wind: noise below 500 Hz in slow gusts (0.2-0.6 Hz)."""
    gusts = 0.6 + 0.4 * torch.sin(2 * math.pi * (0.2 + 0.4 * torch.rand(n, 1, generator=g)) * t)
    return _band(torch.randn(n, len(t), generator=g), 20, 500) * gusts


UNSEEN_FAMILIES = {"hum": _hum, "babble": _babble, "rain": _rain, "wind": _wind}


def unseen_noise(family: str, n: int, num_samples: int, generator: torch.Generator) -> torch.Tensor:
    """``[n, num_samples]`` clips of one unseen noise family (`UNSEEN_FAMILIES`) at `UNSEEN_RMS_DB`, 16 kHz."""
    if family not in UNSEEN_FAMILIES:
        raise ValueError(f"unknown noise family {family!r}; known: {sorted(UNSEEN_FAMILIES)}")
    t = torch.arange(num_samples) / SAMPLE_RATE
    clips = UNSEEN_FAMILIES[family](n, t, generator)
    rms = clips.square().mean(dim=-1, keepdim=True).sqrt().clamp(min=1e-12)
    return (clips / rms * 10 ** (UNSEEN_RMS_DB / 20)).clamp(-1.0, 1.0)


@dataclass(frozen=True)
class TrainingNegativesConfig:
    """What negative audio SSL-SaN draws for each training batch."""

    silence: bool = True
    """one all-zero clip per batch"""
    num_noise: int = 2
    """noise clips per batch (0 disables noise negatives)"""
    colors: tuple[str, ...] = NOISE_COLORS
    """noise colours drawn uniformly"""
    gain_db: tuple[float, float] = (-30.0, 0.0)
    """random level relative to sigma = 1 (uniform in dB)"""

    def __post_init__(self) -> None:
        unknown = [c for c in self.colors if c not in NOISE_COLORS]
        if unknown:
            raise ConfigError(f"negatives.colors: unknown noise colour(s) {unknown}; known: {list(NOISE_COLORS)}")
        if self.num_noise < 0:
            raise ConfigError(f"negatives.num_noise must be >= 0, got {self.num_noise}")
        if len(self.gain_db) != 2 or self.gain_db[0] > self.gain_db[1]:
            raise ConfigError(f"negatives.gain_db must be [low, high] in dB, got {list(self.gain_db)}")

    @property
    def count(self) -> int:
        return int(self.silence) + self.num_noise


class NegativeSampler:
    """Draws a batch's negatives, reproducibly: batch ``step`` always gets the same clips."""

    def __init__(self, cfg: TrainingNegativesConfig, num_samples: int, seed: int):
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
