"""SSL-TIE's audio front end (``AudioConfig(features="mel_db")``) against torchaudio's own output.

``tests/data/mel_reference.npz`` was written by ``tests/data/make_mel_reference.py`` with torchaudio 2.9.1:
SSL-TIE's test loader (MelSpectrogram n_fft 512, hop 239, 257 mel bands, normalized=True, AmplitudeToDB) on a
real IS3+ clip (1.2 s, tiled to 10 s) and a synthetic 10 s clip with a stretch of digital silence.
"""

from __future__ import annotations

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


def test_equals_torchaudio_bit_for_bit_on_a_synthetic_clip(reference):
    ours = spectrogram(torch.from_numpy(tone_clip()), SSLTIE)
    assert ours.shape == (1, 257, 670)
    stride = int(reference["stride"])
    np.testing.assert_array_equal(ours[0, :, ::stride].numpy(), reference["tone_clip"])
    # 257 bands on 257 FFT bins: the lowest bands catch no bin, -100 dB (the floor) in every frame
    empty = (ours[0] == -100).all(1)
    assert 10 < int(empty.sum()) < 60 and bool(empty[0])


def test_equals_torchaudio_on_a_real_file_through_the_loader(fixtures_dir, reference):
    wav = fixtures_dir / "real" / "is3plus" / str(reference["wav_name"])
    ours = waveform_to_input(wav, SSLTIE)  # 1.2 s: tiled to 10 s as SSL-TIE's loader does
    np.testing.assert_array_equal(ours[0, :, :: int(reference["stride"])].numpy(), reference["wav"])


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
