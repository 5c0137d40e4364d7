"""Audio front end: file -> mono 16 kHz waveform -> central window -> log spectrogram.

Bit-compatible with the EZ-VSL family: the spectrogram equals
``scipy.signal.spectrogram(x, fs=16000, nperseg=512, noverlap=274)`` followed by ``log(S + 1e-7) / 12``.
Unlike the reference code we resample every file to ``AudioConfig.sample_rate`` first, so the
spectrogram's shape and level never depend on the file's own rate.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
import soundfile as sf
import torch

from vssl.errors import MediaError

__all__ = ["AudioConfig", "load_audio", "resample", "center_window", "log_spectrogram", "waveform_to_input"]


@dataclass(frozen=True)
class AudioConfig:
    """How audio becomes the network's input (defaults: the EZ-VSL front end)."""

    sample_rate: int = 16000
    """Rate (Hz) every file is resampled to before anything else."""
    duration: float = 3.0
    """Length (seconds) of the window cut from the middle of the clip."""
    nperseg: int = 512
    """Samples per spectrogram segment (FFT size)."""
    noverlap: int = 274
    """Samples shared by consecutive segments."""
    tukey_alpha: float = 0.25
    """Fraction of the Tukey window inside its cosine tapers."""
    log_eps: float = 1e-7
    """Added to the power spectral density before the log."""
    log_divisor: float = 12.0
    """The log spectrogram is divided by this (keeps values near [-1.5, 0])."""

    @property
    def num_samples(self) -> int:
        """Samples in the window (48 000 by default)."""
        return round(self.sample_rate * self.duration)

    @property
    def hop(self) -> int:
        """Samples between segment starts (238 by default)."""
        return self.nperseg - self.noverlap

    @property
    def num_freqs(self) -> int:
        """Frequency bins of the one-sided spectrum (257 by default)."""
        return self.nperseg // 2 + 1

    @property
    def num_frames(self) -> int:
        """Time frames of a window of ``num_samples`` (200 by default)."""
        return 1 + (self.num_samples - self.nperseg) // self.hop


# ---------------------------------------------------------------- decoding


def load_audio(path: str | Path, sample_rate: int = 16000) -> torch.Tensor:
    """Decode a whole audio (or video) file to a mono float waveform ``[T]`` at ``sample_rate``.

    soundfile reads wav/flac/ogg; anything else (mp3, m4a, mp4, mkv, ...) goes through PyAV,
    first audio stream. Samples are clipped to [-1, 1], then channels are averaged.
    Raises `MediaError` (naming the file) when the file is missing, empty, undecodable,
    has no audio stream, no samples, or NaN/Inf samples.
    """
    path = Path(path)
    if not path.is_file():
        raise MediaError(path, "file not found" if not path.exists() else "not a regular file")
    if path.stat().st_size == 0:
        raise MediaError(path, "file is empty (0 bytes)")
    try:
        data, file_rate = sf.read(str(path), dtype="float32", always_2d=True)  # [T, C]
        data = data.T
    except (sf.LibsndfileError, RuntimeError, ValueError, TypeError) as sf_err:
        data, file_rate = _decode_with_pyav(path, sf_err)
    if data.shape[-1] == 0 or data.shape[0] == 0:
        raise MediaError(path, "audio stream has no samples")
    if not np.isfinite(data).all():
        raise MediaError(path, "audio contains NaN or infinite samples")
    wave = torch.from_numpy(np.ascontiguousarray(data)).clamp_(-1.0, 1.0).mean(dim=0)
    if file_rate != sample_rate:
        wave = resample(wave, int(file_rate), sample_rate)
    return wave


def _decode_with_pyav(path: Path, sf_err: Exception) -> tuple[np.ndarray, int]:
    """Decode the first audio stream with PyAV -> (float32 ``[C, T]``, sample rate)."""
    try:
        container = av.open(str(path))
    except (av.FFmpegError, OSError, ValueError) as err:
        raise MediaError(path, f"cannot decode audio (soundfile: {sf_err}; PyAV: {err})") from err
    with container:
        if not container.streams.audio:
            kinds = ", ".join(s.type for s in container.streams) or "none"
            raise MediaError(path, f"no audio stream (streams: {kinds})")
        stream = container.streams.audio[0]
        # Let FFmpeg convert any sample format to planar float32, keeping layout and rate.
        to_float = av.AudioResampler(format="fltp")
        chunks, rate = [], None
        try:
            for frame in container.decode(stream):
                rate = rate or frame.sample_rate
                chunks.extend(f.to_ndarray() for f in to_float.resample(frame))
            chunks.extend(f.to_ndarray() for f in to_float.resample(None))
        except (av.FFmpegError, ValueError) as err:
            raise MediaError(path, f"cannot decode audio stream: {err}") from err
    if not chunks:
        raise MediaError(path, "audio stream has no samples")
    return np.concatenate(chunks, axis=-1).astype(np.float32, copy=False), int(rate)


# ---------------------------------------------------------------- resampling


def _lowpass_taps(up: int, down: int, zero_crossings: int, beta: float) -> tuple[torch.Tensor, int]:
    """Kaiser-windowed sinc at the upsampled rate, cut at the lower Nyquist -> (taps ``[2H+1]``, H)."""
    rate = max(up, down)
    half = zero_crossings * rate
    n = torch.arange(-half, half + 1, dtype=torch.float64)
    window = torch.special.i0(beta * torch.sqrt((1 - (n / half) ** 2).clamp(min=0))) / torch.special.i0(
        torch.tensor(beta, dtype=torch.float64)
    )
    taps = torch.sinc(n / rate) * window
    return taps * (up / taps.sum()), half  # unit DC gain after zero-stuffing by `up`


def resample(
    wave: torch.Tensor, orig_sr: int, new_sr: int, *, zero_crossings: int = 10, beta: float = 5.0
) -> torch.Tensor:
    """Band-limited polyphase resampling of ``wave [..., T]`` -> ``[..., ceil(T * new_sr / orig_sr)]``.

    Equivalent to zero-stuffing by ``up``, low-pass filtering (Kaiser-windowed sinc with
    ``zero_crossings`` zero crossings per side at the lower rate) and keeping every ``down``-th
    sample, where ``up / down`` is ``new_sr / orig_sr`` reduced by their gcd. The filter is
    centred (no delay); the signal is zero outside ``[0, T)``.
    """
    if orig_sr <= 0 or new_sr <= 0:
        raise ValueError(f"sample rates must be positive, got {orig_sr} -> {new_sr}")
    g = math.gcd(orig_sr, new_sr)
    up, down = new_sr // g, orig_sr // g
    if up == down:
        return wave.clone()
    dtype = wave.dtype if wave.dtype in (torch.float32, torch.float64) else torch.float32
    x = wave.to(dtype)
    length = x.shape[-1]
    out_len = -(-length * up // down)
    taps, half = _lowpass_taps(up, down, zero_crossings, beta)
    # Output m = f * up + p (frame f, phase p) sums x[f * down + r] * taps(p * down - r * up)
    # over r in [r_lo, r_hi]: one matrix of weights [up, R] shared by all frames.
    r_lo = -(half // up)
    r_hi = ((up - 1) * down + half) // up
    p = torch.arange(up, dtype=torch.int64)[:, None]
    r = torch.arange(r_lo, r_hi + 1, dtype=torch.int64)[None, :]
    offset = p * down - r * up
    inside = offset.abs() <= half
    weights = torch.where(inside, taps[(offset + half).clamp(0, 2 * half)], 0.0).to(x.device, dtype)  # [up, R]
    num_frames = -(-out_len // up)
    width = r_hi - r_lo + 1
    right = max(0, (num_frames - 1) * down + width + r_lo - length)
    padded = torch.nn.functional.pad(x, (-r_lo, right))
    frames = padded.unfold(-1, width, down)[..., :num_frames, :]  # [..., F, R]
    out = frames @ weights.T  # [..., F, up]
    return out.flatten(-2)[..., :out_len]


# ---------------------------------------------------------------- window and spectrogram


def center_window(wave: torch.Tensor, cfg: AudioConfig = AudioConfig()) -> torch.Tensor:
    """The central ``cfg.duration`` of ``wave [..., T]`` -> ``[..., num_samples]``.

    Starts at ``int(max(0, T/2 - num_samples/2))`` (the reference's ``duration/2 - 1.5`` s).
    A clip shorter than the window is tiled ``num_samples // T + 1`` times, then cut.
    """
    length, n = wave.shape[-1], cfg.num_samples
    if length == 0:
        raise ValueError("cannot cut a window from an empty waveform (0 samples)")
    start = int(max(0.0, length / 2 - n / 2))
    window = wave[..., start : start + n]
    if window.shape[-1] < n:
        window = window.repeat(*([1] * (wave.dim() - 1)), n // length + 1)[..., :n]
    return window


def _tukey(n: int, alpha: float, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """Periodic Tukey window ``[n]`` (scipy's ``get_window(('tukey', alpha), n)``)."""
    x = torch.arange(n, dtype=torch.float64) / n  # periodic: symmetric window of n + 1 points, last dropped
    w = torch.ones(n, dtype=torch.float64)
    if alpha > 0:
        edge = torch.minimum(x, 1 - x)
        taper = edge < alpha / 2
        w[taper] = 0.5 * (1 - torch.cos(2 * math.pi * edge[taper] / alpha))
    return w.to(device, dtype)


def log_spectrogram(waves: torch.Tensor, cfg: AudioConfig = AudioConfig()) -> torch.Tensor:
    """Log power spectral density of ``waves [..., T]`` -> ``[..., 1, num_freqs, frames]``.

    For ``[B, 48000]`` at the defaults: ``[B, 1, 257, 200]``. Segments of ``nperseg`` samples
    every ``hop``, mean removed, Tukey-windowed, one-sided |FFT|^2 / (fs * sum(w^2)), doubled
    except at DC and Nyquist; then ``log(S + log_eps) / log_divisor``. Runs on the input's
    device in float32 (float64 if given float64), also under autocast.
    """
    if waves.shape[-1] < cfg.nperseg:
        raise ValueError(f"waveform has {waves.shape[-1]} samples, fewer than nperseg={cfg.nperseg}")
    dtype = torch.float64 if waves.dtype == torch.float64 else torch.float32
    with torch.autocast(device_type=waves.device.type, enabled=False):
        segments = waves.to(dtype).unfold(-1, cfg.nperseg, cfg.hop)  # [..., frames, nperseg]
        segments = segments - segments.mean(dim=-1, keepdim=True)  # detrend='constant'
        window = _tukey(cfg.nperseg, cfg.tukey_alpha, waves.device, dtype)
        spectrum = torch.fft.rfft(segments * window, n=cfg.nperseg)
        power = spectrum.real.square() + spectrum.imag.square()
        power = power / (cfg.sample_rate * window.square().sum())
        # One-sided density: every bin but DC (and Nyquist, for even nperseg) holds two halves.
        last = -1 if cfg.nperseg % 2 == 0 else None
        power[..., 1:last] *= 2
        log_power = torch.log(power + cfg.log_eps) / cfg.log_divisor
    return log_power.transpose(-1, -2).unsqueeze(-3)


def waveform_to_input(source: str | Path | torch.Tensor, cfg: AudioConfig = AudioConfig()) -> torch.Tensor:
    """A file path, or a waveform ``[T]`` already at ``cfg.sample_rate``, -> network input ``[1, 257, 200]``."""
    wave = source if isinstance(source, torch.Tensor) else load_audio(source, cfg.sample_rate)
    return log_spectrogram(center_window(wave, cfg), cfg)
