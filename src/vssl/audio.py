"""Audio front end: file -> mono 16 kHz waveform -> central window -> spectrogram (the network input).

Two spectrogram kinds (``AudioConfig.features``):
* ``log_psd`` (the default; EZ-VSL, SLAVC, FNAC, LVS, SSL-Align): bit-compatible with
  ``scipy.signal.spectrogram(x, fs=16000, nperseg=512, noverlap=274)`` followed by ``log(S + 1e-7) / 12``;
* ``mel_db`` (SSL-TIE): torchaudio's ``MelSpectrogram(n_fft=512, hop_length=239, n_mels=257, normalized=True)``
  followed by ``AmplitudeToDB()``, written here with torch.stft (torchaudio is not needed).
Unlike the reference code we resample every file to ``AudioConfig.sample_rate`` first, so the
spectrogram's shape and level never depend on the file's own rate.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
import soundfile as sf
import torch

from vssl.errors import ConfigError, MediaError, require_file

__all__ = [
    "MAX_SAMPLE_RATE",
    "MIN_SAMPLE_RATE",
    "AudioConfig",
    "center_window",
    "load_audio",
    "log_spectrogram",
    "mel_db_spectrogram",
    "open_media",
    "resample",
    "spectrogram",
    "waveform_to_input",
]

MIN_SAMPLE_RATE = 1_000
"""Lowest file sample rate (Hz) `load_audio` accepts: lower is more likely a corrupt header than sound,
and resampling would multiply the samples (x16 at 1 kHz, x16000 at 1 Hz)."""
MAX_SAMPLE_RATE = 384_000
"""Highest file sample rate (Hz) `load_audio` accepts: the resampling filter grows with the rate."""
FEATURES = ("log_psd", "mel_db")
"""Spectrogram kinds of `AudioConfig.features`."""


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
    features: str = "log_psd"
    """Spectrogram kind: ``log_psd`` (`log_spectrogram`, the EZ-VSL family) or ``mel_db`` (`mel_db_spectrogram`,
    SSL-TIE: Hann window, centred frames, mel bands in dB; ``tukey_alpha``, ``log_eps`` and ``log_divisor`` unused)."""
    n_mels: int = 257
    """Mel bands of ``mel_db`` (SSL-TIE: 257, as many as the FFT's frequency bins)."""

    def __post_init__(self) -> None:
        if self.features not in FEATURES:
            raise ConfigError(f"audio features {self.features!r} unknown; choose one of {list(FEATURES)}")
        if not 0 <= self.noverlap < self.nperseg:
            raise ConfigError(f"audio noverlap must lie in [0, nperseg={self.nperseg}), got {self.noverlap}")
        if self.n_mels < 1:
            raise ConfigError(f"audio n_mels must be positive, got {self.n_mels}")

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
        """Rows of the spectrogram: frequency bins of the one-sided spectrum (257 by default), or ``n_mels``."""
        return self.n_mels if self.features == "mel_db" else self.nperseg // 2 + 1

    @property
    def num_frames(self) -> int:
        """Time frames of a window of ``num_samples`` (200 by default; ``mel_db`` frames are centred)."""
        if self.features == "mel_db":
            return 1 + self.num_samples // self.hop
        return 1 + (self.num_samples - self.nperseg) // self.hop


# ---------------------------------------------------------------- decoding


def load_audio(path: str | Path, sample_rate: int = 16000) -> torch.Tensor:
    """Decode a whole audio (or video) file to a mono float waveform ``[T]`` at ``sample_rate``.

    soundfile reads wav/flac/ogg; anything else (mp3, m4a, mp4, mkv, ...) goes through PyAV,
    first audio stream. Samples are clipped to [-1, 1], then channels are averaged.
    Raises `MediaError` (naming the file) when the file is missing, empty, undecodable,
    has no audio stream, no samples, NaN/Inf samples, or a sample rate outside
    [`MIN_SAMPLE_RATE`, `MAX_SAMPLE_RATE`].
    """
    path = require_file(path)
    if path.stat().st_size == 0:
        raise MediaError(path, "file is empty (0 bytes)")
    try:
        data, file_rate = sf.read(str(path), dtype="float32", always_2d=True)  # [T, C]
        data = data.T
    except (sf.LibsndfileError, RuntimeError, ValueError, TypeError) as sf_err:
        data, file_rate = _decode_with_pyav(path, sf_err)
    if data.shape[-1] == 0 or data.shape[0] == 0:
        raise MediaError(path, "audio stream has no samples")
    if not MIN_SAMPLE_RATE <= file_rate <= MAX_SAMPLE_RATE:
        raise MediaError(path, f"sample rate {file_rate} Hz outside {MIN_SAMPLE_RATE}-{MAX_SAMPLE_RATE} Hz")
    if not np.isfinite(data).all():
        raise MediaError(path, "audio contains NaN or infinite samples")
    wave = torch.from_numpy(np.ascontiguousarray(data)).clamp_(-1.0, 1.0).mean(dim=0)
    if file_rate != sample_rate:
        wave = resample(wave, int(file_rate), sample_rate)
    return wave


def open_media(path: str | Path) -> av.container.InputContainer:
    """Open an audio or video file for reading with PyAV.

    Tags that are not UTF-8 (a Latin-1 title, say) get replacement characters instead of failing the open:
    metadata never decides whether a file can be read.
    """
    return av.open(str(path), metadata_errors="replace")


def stream_duration(container: av.container.InputContainer, stream: av.stream.Stream) -> float | None:
    """Seconds of ``stream`` as its header states them, else the container's; None when neither says."""
    if stream.duration is not None:
        return float(stream.duration * stream.time_base)
    if container.duration is not None:
        return container.duration / av.time_base
    return None


def _decode_with_pyav(path: Path, sf_err: Exception) -> tuple[np.ndarray, int]:
    """Decode the first audio stream with PyAV -> (float32 ``[C, T]``, sample rate)."""
    try:
        container = open_media(path)
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

_BLOCK_ELEMENTS = 1 << 20
"""Most weights one resampling convolution holds: memory stays flat however many phases the rates need."""


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


def _phases_per_block(up: int, down: int, half: int) -> int:
    """Phases sharing one weight matrix: all ``up`` at usual rates; else (coprime rates have thousands of
    phases) about ``2 * half / down``, so that at most about half of a block's weights are zeros."""

    def elements(phases: int) -> int:
        return phases * (((phases - 1) * down + 2 * half) // up + 2)

    return up if elements(up) <= _BLOCK_ELEMENTS else max(1, min(up, 2 * half // down))


def _phase_weights(
    taps: torch.Tensor, half: int, up: int, down: int, first: int, stop: int
) -> tuple[torch.Tensor, int]:
    """Weights ``[stop - first, R]`` of phases ``first..stop-1`` over inputs ``r_lo..r_lo+R-1`` -> (weights, r_lo)."""
    r_lo = -((half - first * down) // up)  # the smallest r with first * down - r * up <= half
    r_hi = ((stop - 1) * down + half) // up
    p = torch.arange(first, stop, dtype=torch.int64)[:, None]
    r = torch.arange(r_lo, r_hi + 1, dtype=torch.int64)[None, :]
    offset = p * down - r * up
    # index_select, not taps[index]: advanced indexing costs time in proportion to the whole table
    picked = taps.index_select(0, (offset + half).clamp(0, 2 * half).flatten()).view(offset.shape)
    return torch.where(offset.abs() <= half, picked, 0.0), r_lo


def resample(
    wave: torch.Tensor, orig_sr: int, new_sr: int, *, zero_crossings: int = 10, beta: float = 5.0
) -> torch.Tensor:
    """Band-limited polyphase resampling of ``wave [..., T]`` -> ``[..., ceil(T * new_sr / orig_sr)]``.

    Equivalent to zero-stuffing by ``up``, low-pass filtering (Kaiser-windowed sinc with
    ``zero_crossings`` zero crossings per side at the lower rate) and keeping every ``down``-th
    sample, where ``up / down`` is ``new_sr / orig_sr`` reduced by their gcd. The filter is
    centred (no delay); the signal is zero outside ``[0, T)``. Memory is the waveform's order for any
    length and any rates (coprime ones such as 44101 -> 16000 Hz have 16000 phases, taken in blocks);
    the filter itself holds ``2 * zero_crossings * max(up, down) + 1`` taps.
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
    if length == 0:
        return x.clone()
    out_len = -(-length * up // down)
    taps, half = _lowpass_taps(up, down, zero_crossings, beta)
    # Output m = f * up + p (frame f, phase p) sums x[f * down + r] * taps(p * down - r * up) over the r with
    # |p * down - r * up| <= half: for a block of phases, one strided convolution with weights [P, 1, R].
    num_frames = -(-out_len // up)
    left, last = half // up, ((up - 1) * down + half) // up  # the earliest and latest r any phase reads
    rows = x.reshape(-1, 1, length)  # [N, 1, T]
    padded = torch.nn.functional.pad(rows, (left, max(0, (num_frames - 1) * down + last + 1 - length)))
    out = x.new_empty(rows.shape[0], up, num_frames)
    used = min(up, out_len)  # a short clip's single frame needs only its first phases
    phases = _phases_per_block(up, down, half)
    for first in range(0, used, phases):
        stop = min(used, first + phases)
        weights, r_lo = _phase_weights(taps, half, up, down, first, stop)
        kernel = weights.to(x.device, dtype)[:, None, :]  # [P, 1, R]
        block = torch.nn.functional.conv1d(padded[..., left + r_lo :], kernel, stride=down)  # [N, P, >= F]
        out[:, first:stop] = block[..., :num_frames]
    return out.transpose(1, 2).reshape(*x.shape[:-1], num_frames * up)[..., :out_len]


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


def power_spectrogram(waves: torch.Tensor, cfg: AudioConfig = AudioConfig()) -> torch.Tensor:
    """Power spectral density of ``waves [..., T]`` -> ``[..., 1, num_freqs, frames]`` (`log_spectrogram` before
    its log): segments of ``nperseg`` samples every ``hop``, mean removed, Tukey-windowed, one-sided
    |FFT|^2 / (fs * sum(w^2)), doubled except at DC and Nyquist. Float32 (float64 if given float64), also under
    autocast."""
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
    return power.transpose(-1, -2).unsqueeze(-3)


def log_spectrogram(waves: torch.Tensor, cfg: AudioConfig = AudioConfig()) -> torch.Tensor:
    """Log power spectral density of ``waves [..., T]`` -> ``[..., 1, num_freqs, frames]``.

    For ``[B, 48000]`` at the defaults: ``[B, 1, 257, 200]``: `power_spectrogram`, then
    ``log(S + log_eps) / log_divisor``. Runs on the input's device in float32 (float64 if given float64),
    also under autocast.
    """
    power = power_spectrogram(waves, cfg)
    with torch.autocast(device_type=waves.device.type, enabled=False):
        return torch.log(power + cfg.log_eps) / cfg.log_divisor


@functools.cache
def _mel_filterbank(num_freqs: int, n_mels: int, sample_rate: int) -> torch.Tensor:
    """``[num_freqs, n_mels]`` float32 triangular filters on the HTK mel scale (no area normalisation) from 0 Hz to
    ``sample_rate // 2``, computed in float32 as torchaudio's ``melscale_fbanks`` does (with 257 bands on 257 bins,
    a few filters catch no bin: those bands are 0, so -100 dB)."""
    nyquist = sample_rate // 2
    bins = torch.linspace(0, nyquist, num_freqs)
    mels = torch.linspace(0.0, 2595.0 * math.log10(1.0 + nyquist / 700.0), n_mels + 2)
    corners = 700.0 * (10.0 ** (mels / 2595.0) - 1.0)  # band k rises from corners[k], peaks at k + 1, ends at k + 2
    widths = corners[1:] - corners[:-1]
    rising = (bins[:, None] - corners[None, :-2]) / widths[:-1]
    falling = (corners[None, 2:] - bins[:, None]) / widths[1:]
    return torch.minimum(rising, falling).clamp_min(0.0)


def mel_db_spectrogram(waves: torch.Tensor, cfg: AudioConfig) -> torch.Tensor:
    """Mel power spectrogram in dB of ``waves [..., T]`` -> ``[..., 1, n_mels, 1 + T // hop]`` (SSL-TIE's input).

    Frames of ``nperseg`` samples every ``hop``, centred (the signal reflect-padded by ``nperseg // 2``), periodic
    Hann window, |FFT|^2 / sum(w^2), HTK mel filters, then ``10 * log10(max(S, 1e-10))``. Runs on the input's device
    in float32 (float64 if given float64), also under autocast.
    """
    if waves.shape[-1] <= cfg.nperseg // 2:
        raise ValueError(f"waveform has {waves.shape[-1]} samples, too few to reflect-pad by {cfg.nperseg // 2}")
    dtype = torch.float64 if waves.dtype == torch.float64 else torch.float32
    with torch.autocast(device_type=waves.device.type, enabled=False):
        flat = waves.to(dtype).reshape(-1, waves.shape[-1])
        window = torch.hann_window(cfg.nperseg, periodic=True, dtype=dtype, device=waves.device)
        spectrum = torch.stft(
            flat, cfg.nperseg, cfg.hop, window=window, center=True, pad_mode="reflect", return_complex=True
        )
        power = (spectrum / window.square().sum().sqrt()).abs().square()  # [B, num_freqs, frames]
        bands = _mel_filterbank(cfg.nperseg // 2 + 1, cfg.n_mels, cfg.sample_rate).to(waves.device, dtype)
        mel = (power.transpose(-1, -2) @ bands).transpose(-1, -2)
        db = 10.0 * torch.log10(mel.clamp_min(1e-10))
    return db.reshape(*waves.shape[:-1], 1, *db.shape[-2:])


def spectrogram(waves: torch.Tensor, cfg: AudioConfig = AudioConfig()) -> torch.Tensor:
    """The network input of ``cfg.features`` for windows ``waves [..., num_samples]`` -> ``[..., 1, F, frames]``."""
    if cfg.features == "mel_db":
        return mel_db_spectrogram(waves, cfg)
    return log_spectrogram(waves, cfg)


def waveform_to_input(source: str | Path | torch.Tensor, cfg: AudioConfig = AudioConfig()) -> torch.Tensor:
    """A file path, or a waveform ``[T]`` already at ``cfg.sample_rate``, -> network input ``[1, 257, 200]``."""
    wave = source if isinstance(source, torch.Tensor) else load_audio(source, cfg.sample_rate)
    return spectrogram(center_window(wave, cfg), cfg)
