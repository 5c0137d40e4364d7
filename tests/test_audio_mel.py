"""SSL-TIE's audio front end (``AudioConfig(features="mel_db")``) against torchaudio's own output.

``tests/data/mel_reference.npz`` was written by ``tests/data/make_mel_reference.py`` with torchaudio 2.9.1:
SSL-TIE's test loader (MelSpectrogram n_fft 512, hop 239, 257 mel bands, normalized=True, AmplitudeToDB) on a
real IS3+ clip (1.2 s, tiled to 10 s) and a synthetic 10 s clip with a stretch of digital silence.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from vssl.audio import AudioConfig, center_window, load_audio, mel_db_spectrogram, spectrogram, waveform_to_input
from vssl.errors import ConfigError
from vssl.export import conv_spectrogram
from vssl.models.convert import FORMATS

DATA = Path(__file__).parent / "data"
sys.path.insert(0, str(DATA))
from make_mel_reference import tone_clip  # noqa: E402

SSLTIE = FORMATS["ssltie"].audio


@pytest.fixture(scope="module")
def reference() -> dict[str, np.ndarray]:
    return dict(np.load(DATA / "mel_reference.npz"))


def test_the_ssltie_config_has_its_shape():
    assert SSLTIE.features == "mel_db" and SSLTIE.hop == 239
    assert (SSLTIE.num_samples, SSLTIE.num_freqs, SSLTIE.num_frames) == (160000, 257, 670)


def assert_within_float32_rounding(
    ours: torch.Tensor, theirs: np.ndarray, wave: torch.Tensor, stride: int, fft_error_bound
):
    """``ours`` and ``theirs`` (``[257, frames]`` in dB, every ``stride``-th frame of ``wave``) are two float32
    computations of the same mel spectrogram: they may differ by the rounding of each, never more.

    On the power scale, each is within ``fft_error_bound(E)`` of the exact value (E: the frame's energy; the FFT's
    rounding is bounded relative to the whole frame, so a band 80 dB below the frame's loudest may differ by a
    large fraction of itself, as torchaudio's own output does between CPUs), plus a relative error of the mel
    matmul (at most ``num_freqs`` roundings of positive terms) and of ``10 * log10`` (``2u |dB|``, ``ln 10 / 10``
    per dB). The ``1e-10`` floor is 1-Lipschitz: it adds nothing.
    """
    u = torch.finfo(torch.float32).eps / 2
    window = torch.hann_window(SSLTIE.nperseg, periodic=True, dtype=torch.float64)
    stft = torch.stft(wave.double(), SSLTIE.nperseg, SSLTIE.hop, window=window, center=True, return_complex=True)
    power = (stft / window.square().sum().sqrt()).abs().square()  # one-sided; both halves count in the energy
    energy = 2 * power.sum(0) - power[0] - power[-1]
    ours, theirs = ours.double(), torch.from_numpy(theirs).double()
    lin_ours, lin_theirs = 10 ** (ours / 10), 10 ** (theirs / 10)
    relative = (SSLTIE.num_freqs + 8) * u + math.log(10) / 10 * 2 * u * torch.maximum(ours.abs(), theirs.abs())
    tolerance = 2 * fft_error_bound(energy[::stride], SSLTIE.nperseg) + 2 * relative * torch.maximum(
        lin_ours, lin_theirs
    )
    excess = (lin_ours - lin_theirs).abs() / tolerance
    assert float(excess.max()) <= 1.0, f"beyond float32 rounding: {float(excess.max()):.3g} x the bound"
    # no blanket either: 0.05 dB more on a band within 20 dB of its frame's energy stands out
    loud = lin_theirs >= 0.01 * energy[::stride]
    shifted = (10 ** ((ours + 0.05) / 10) - lin_theirs).abs() / tolerance
    assert bool(loud.any()) and bool((shifted[loud] > 1).all())


def test_equals_torchaudio_up_to_float32_rounding_on_a_synthetic_clip(reference, fft_error_bound):
    wave = torch.from_numpy(tone_clip())
    ours, stride = spectrogram(wave, SSLTIE), int(reference["stride"])
    assert ours.shape == (1, 257, 670)
    assert_within_float32_rounding(ours[0, :, ::stride], reference["tone_clip"], wave, stride, fft_error_bound)
    # 257 bands on 257 FFT bins: the lowest bands catch no bin, -100 dB (the floor) in every frame, on every CPU
    empty = (ours[0] == -100).all(1)
    assert 10 < int(empty.sum()) < 60 and bool(empty[0])
    np.testing.assert_array_equal(reference["tone_clip"][empty.numpy()], -100)


def test_equals_torchaudio_on_a_real_file_through_the_loader(fixtures_dir, reference, fft_error_bound):
    wav = fixtures_dir / "real" / "is3plus" / str(reference["wav_name"])
    ours = waveform_to_input(wav, SSLTIE)  # 1.2 s: tiled to 10 s as SSL-TIE's loader does
    wave, stride = center_window(load_audio(wav, SSLTIE.sample_rate), SSLTIE), int(reference["stride"])
    assert_within_float32_rounding(ours[0, :, ::stride], reference["wav"], wave, stride, fft_error_bound)


def test_batched_float64_and_silent_inputs():
    clip = torch.from_numpy(tone_clip())
    waves = torch.stack([clip, torch.zeros_like(clip), 0.01 * clip])
    out = mel_db_spectrogram(waves, SSLTIE)
    assert out.shape == (3, 1, 257, 670)
    torch.testing.assert_close(out[0], mel_db_spectrogram(clip, SSLTIE), atol=1e-4, rtol=0)
    assert bool((out[1] == -100).all())  # silence: the floor everywhere
    loud = out[0] > -30  # -40 dB of gain: bands well above float32 rounding (errors ~1e-3 dB at -60 dB)
    torch.testing.assert_close(out[2][loud], out[0][loud] - 40, atol=1e-3, rtol=0)
    precise = mel_db_spectrogram(clip.double(), SSLTIE)
    assert precise.dtype == torch.float64
    assert float((precise - out[0]).abs()[out[0] > -50].max()) < 1e-3


def test_the_onnx_graph_module_equals_the_fft_front_end():
    clip = torch.from_numpy(tone_clip())
    waves = torch.stack(
        [clip, torch.zeros_like(clip), torch.randn(clip.shape, generator=torch.Generator().manual_seed(0))]
    )
    ours, fft = conv_spectrogram(SSLTIE)(waves), spectrogram(waves, SSLTIE)
    assert ours.shape == fft.shape
    audible = fft > -50  # lower bands show float32 rounding of either path (torchaudio: 0.2 dB near -100 dB)
    torch.testing.assert_close(ours[audible], fft[audible], atol=1e-3, rtol=0)
    assert float((ours - fft).abs().max()) < 0.5


def test_center_window_then_mel_of_a_longer_clip(fixtures_dir):
    wave = load_audio(fixtures_dir / "real" / "is3plus" / "cello_donkey_3905_cello.wav")  # 10.008 s
    window = center_window(wave, SSLTIE)
    assert window.shape == (160000,)
    assert spectrogram(window, SSLTIE).shape == (1, 257, 670)


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"features": "mfcc"}, r"audio features 'mfcc' unknown; choose one of \['log_psd', 'mel_db'\]"),
        ({"noverlap": 512}, r"noverlap must lie in \[0, nperseg=512\), got 512"),
        ({"features": "mel_db", "n_mels": 0}, "n_mels must be positive"),
    ],
)
def test_bad_audio_configs_are_refused(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        AudioConfig(**kwargs)
