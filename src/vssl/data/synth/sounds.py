"""Audio of the synthetic benchmark: each class's sound signature over faint ambience.

A class names one sound kind (``SynthClass.sound``) and its parameters (``SynthClass.params``):

- ``hum``: harmonic stack with vibrato, optionally tremolo and odd harmonics only (a reedy drone).
- ``noise``: noise band, Gaussian in log-frequency around a centre, optionally slowly amplitude-modulated.
- ``clicks``: band-limited click train: a slow tick or, at high rates, a buzz.
- ``sweeps``: repeated exponential chirps, rising or falling.
- ``beeps``: steady tone switched on and off.
- ``siren``: two-tone siren alternating between two pitches, never silent.
- ``warble``: pure whistle whose pitch swings sinusoidally.
- ``knocks``: pairs of low damped knocks ("knock-knock").

:func:`render_audio` places one signature (random length >= half the clip, random onset and level) over
pink-ish ambience; every draw comes from the generator it is given, so a sample's audio is reproducible.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np


def render_audio(
    rng: np.random.Generator,
    sound: str,
    params: Mapping[str, float],
    level_db: tuple[float, float],
    *,
    duration: float,
    sample_rate: int,
    ambience_db: float,
) -> np.ndarray:
    """Signature ``sound`` with ``params`` (random length >= half the clip, onset, peak level in ``level_db``)
    over ambience at ``ambience_db``: a clip of ``duration`` seconds.

    Returns float32 ``[N]`` in [-1, 1].
    """
    n = int(round(duration * sample_rate))
    length = int(rng.integers(n // 2, n + 1))
    onset = int(rng.integers(0, n - length + 1))  # any onset in [0, n - length] covers the clip's centre
    t = np.arange(length) / sample_rate
    signature = _SOUNDS[sound](rng, t, sample_rate, **params)
    fade = min(length // 2, int(0.01 * sample_rate))
    ramp = 0.5 - 0.5 * np.cos(np.linspace(0, math.pi, fade))
    signature[:fade] *= ramp
    signature[length - fade :] *= ramp[::-1]
    signature *= 10 ** (rng.uniform(*level_db) / 20) / (np.abs(signature).max() + 1e-12)
    out = _ambience(rng, n, sample_rate, ambience_db)
    out[onset : onset + length] += signature
    peak = np.abs(out).max()
    if peak > 0.99:
        out *= 0.99 / peak
    return out.astype(np.float32)


def _ambience(rng: np.random.Generator, n: int, sr: int, level_db: tuple[float, float]) -> np.ndarray:
    """Pink-ish noise at an RMS level drawn from ``level_db`` (dBFS), sometimes with a faint mains hum."""
    spectrum = np.fft.rfft(rng.standard_normal(n))
    freqs = np.fft.rfftfreq(n, 1 / sr)
    noise = np.fft.irfft(spectrum / np.sqrt(np.maximum(freqs, 20.0)), n)
    level = rng.uniform(*level_db)
    noise *= 10 ** (level / 20) / (np.sqrt(np.mean(noise**2)) + 1e-12)
    if rng.random() < 0.5:
        t = np.arange(n) / sr
        mains = rng.choice([50.0, 60.0])
        hum = sum(np.sin(2 * math.pi * k * mains * t + rng.uniform(0, 2 * math.pi)) / k for k in (1, 2, 3))
        noise += hum * 10 ** ((level - rng.uniform(5, 15)) / 20)  # fainter than the room it is heard in
    return noise


def _fast_len(n: int) -> int:
    """Next power of two >= n: FFTs of such sizes are fast, those of large prime sizes are not."""
    return 1 << (n - 1).bit_length()


def _fft_convolve(x: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    size = _fast_len(len(x) + len(kernel) - 1)
    return np.fft.irfft(np.fft.rfft(x, size) * np.fft.rfft(kernel, size), size)[: len(x)]


def _bandpass(x: np.ndarray, sr: int, low_hz: float, high_hz: float) -> np.ndarray:
    """Zero-phase band-pass with soft (logistic) edges, by FFT masking."""
    size = _fast_len(len(x))
    freqs = np.fft.rfftfreq(size, 1 / sr)
    gain = 1 / (1 + np.exp(-(freqs - low_hz) / (0.1 * low_hz))) / (1 + np.exp((freqs - high_hz) / (0.1 * high_hz)))
    return np.fft.irfft(np.fft.rfft(x, size) * gain, size)[: len(x)]


def _smooth_gate(on: np.ndarray, sr: int) -> np.ndarray:
    """Smooth a step signal (a 0/1 gate, or a pitch that jumps) over 5 ms, so tones do not click."""
    window = np.hanning(int(0.005 * sr) + 1)
    return np.convolve(on.astype(np.float64), window / window.sum(), mode="same")


def _phase(freq: np.ndarray, sr: int, rng: np.random.Generator) -> np.ndarray:
    return 2 * math.pi * np.cumsum(freq) / sr + rng.uniform(0, 2 * math.pi)


def _sound_hum(rng, t, sr, f0_hz, vibrato_hz, depth, tremolo_hz=0.0, odd_only=0):
    """Harmonic stack (1/k amplitudes) with vibrato and optional tremolo; odd harmonics only for a reedy drone."""
    f0 = f0_hz * rng.uniform(0.94, 1.06)
    freq = f0 * (1 + depth * np.sin(2 * math.pi * vibrato_hz * rng.uniform(0.9, 1.1) * t + rng.uniform(0, 7)))
    phase = _phase(freq, sr, rng)
    ks = range(1, 13, 2 if odd_only else 1)
    x = sum(np.sin(k * phase + rng.uniform(0, 7)) / k for k in ks if k * f0 * (1 + depth) < 0.45 * sr)
    if tremolo_hz:
        x = x * (0.6 + 0.4 * np.sin(2 * math.pi * tremolo_hz * rng.uniform(0.9, 1.1) * t))
    return x


def _sound_noise(rng, t, sr, centre_hz, octaves, am_hz=0.0, drive=0.0):
    """Noise band centred at ``centre_hz`` (Gaussian in log-frequency), optionally slowly amplitude-modulated.

    ``drive`` > 0 saturates it (tanh) like wind or static overdriving a microphone: a dense, loud texture
    close to clipped white noise, as many real "noisy" sound sources are.
    """
    size = _fast_len(len(t))
    spectrum = np.fft.rfft(rng.standard_normal(size))
    freqs = np.maximum(np.fft.rfftfreq(size, 1 / sr), 1.0)
    centre = centre_hz * rng.uniform(0.92, 1.08)
    x = np.fft.irfft(spectrum * np.exp(-0.5 * (np.log2(freqs / centre) / (octaves / 2)) ** 2), size)[: len(t)]
    if am_hz:
        x *= 0.55 + 0.45 * np.sin(2 * math.pi * am_hz * rng.uniform(0.9, 1.1) * t + rng.uniform(0, 7))
    if drive:
        x = np.tanh(drive * x / (x.std() + 1e-12))
    return x


def _sound_clicks(rng, t, sr, rate_hz, low_hz, high_hz):
    """Band-limited click train: a slow tick or, at high rates, a buzz."""
    period = sr / (rate_hz * rng.uniform(0.9, 1.1))
    times = np.arange(rng.uniform(0, period), len(t), period)
    times = np.clip(np.round(times + rng.normal(0, 0.02 * period, len(times))), 0, len(t) - 1).astype(int)
    impulses = np.zeros(len(t))
    impulses[times] = rng.uniform(0.7, 1.0, len(times))
    burst_t = np.arange(int(0.01 * sr))
    burst = rng.standard_normal(len(burst_t)) * np.exp(-burst_t / (0.002 * sr))
    return _bandpass(_fft_convolve(impulses, burst), sr, low_hz, high_hz)


def _sound_sweeps(rng, t, sr, start_hz, end_hz, period_s, duty):
    """Repeated exponential sweeps from ``start_hz`` to ``end_hz`` (rising or falling chirps)."""
    period, scale = period_s * rng.uniform(0.9, 1.1), rng.uniform(0.93, 1.07)
    position = ((t + rng.uniform(0, period)) % period) / period
    freq = scale * start_hz * (end_hz / start_hz) ** np.minimum(position / duty, 1.0)
    phase = _phase(freq, sr, rng)
    return (np.sin(phase) + 0.3 * np.sin(2 * phase)) * _smooth_gate(position < duty, sr)


def _sound_beeps(rng, t, sr, freq_hz, rate_hz, duty):
    """Steady tone switched on and off at ``rate_hz``."""
    freq = freq_hz * rng.uniform(0.95, 1.05)
    on = ((t * rate_hz * rng.uniform(0.9, 1.1) + rng.random()) % 1.0) < duty
    phase = _phase(np.full(len(t), freq), sr, rng)
    return (np.sin(phase) + 0.2 * np.sin(2 * phase)) * _smooth_gate(on, sr)


def _sound_siren(rng, t, sr, low_hz, high_hz, rate_hz):
    """Two-tone siren: alternates between two pitches, never silent."""
    scale = rng.uniform(0.95, 1.05)
    high = ((t * rate_hz * rng.uniform(0.9, 1.1) + rng.random()) % 1.0) < 0.5
    freq = scale * np.where(high, high_hz, low_hz)
    phase = _phase(_smooth_gate(freq, sr), sr, rng)
    return np.sin(phase) + 0.5 * np.sin(2 * phase) + 0.25 * np.sin(3 * phase)


def _sound_warble(rng, t, sr, centre_hz, depth_hz, rate_hz):
    """Pure whistle whose pitch swings sinusoidally around ``centre_hz``."""
    freq = centre_hz * rng.uniform(0.95, 1.05) + depth_hz * np.sin(
        2 * math.pi * rate_hz * rng.uniform(0.9, 1.1) * t + rng.uniform(0, 7)
    )
    return np.sin(_phase(freq, sr, rng))


def _sound_knocks(rng, t, sr, freq_hz, period_s, gap_s):
    """Pairs of low damped knocks ("knock-knock") every ``period_s``."""
    period = period_s * rng.uniform(0.9, 1.1)
    starts = np.arange(rng.uniform(0, period), t[-1], period)
    times = np.concatenate([starts, starts + gap_s * rng.uniform(0.9, 1.1)])
    impulses = np.zeros(len(t))
    impulses[np.clip((times * sr).astype(int), 0, len(t) - 1)] = 1.0
    kt = np.arange(int(0.15 * sr)) / sr
    knock = np.sin(2 * math.pi * freq_hz * rng.uniform(0.93, 1.07) * kt) * np.exp(-kt / 0.03)
    knock[: int(0.004 * sr)] += rng.standard_normal(int(0.004 * sr)) * 0.5  # the hit itself
    return _fft_convolve(impulses, knock)


_SOUNDS = {
    "hum": _sound_hum,
    "noise": _sound_noise,
    "clicks": _sound_clicks,
    "sweeps": _sound_sweeps,
    "beeps": _sound_beeps,
    "siren": _sound_siren,
    "warble": _sound_warble,
    "knocks": _sound_knocks,
}
