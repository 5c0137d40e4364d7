"""Writes ``mel_reference.npz``: SSL-TIE's audio input computed by torchaudio itself, for tests/test_audio_mel.py.

Not run by the tests (torchaudio is no dependency of vssl). Run it in a venv with torchaudio, e.g.
``pip install torch==2.9.1 'torchaudio==2.9.*' soundfile``, from the repository root:
``python tests/data/make_mel_reference.py ../shared/fixtures/real/is3plus/lion_cat_872_cat.wav``.

Each clip goes through SSL-TIE's test loader (jinxiang-liu/SSL-TIE, datasets/dataloader.py): tiled to 10 s if
shorter, the first 10 s, ``MelSpectrogram(sample_rate, n_fft=512, hop_length=239, n_mels=257, normalized=True)``,
``AmplitudeToDB()``. Stored: every ``STRIDE``-th frame (float32), to keep the file small.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

STRIDE = 5
RATE = 16000


def tone_clip() -> np.ndarray:
    """10 s at 16 kHz: a chirp from 50 Hz to 7 kHz, two steady tones and a 2 s gap of silence (float32)."""
    t = np.arange(10 * RATE, dtype=np.float64) / RATE
    chirp = np.sin(2 * math.pi * (50 * t + (7000 - 50) / 20 * t**2))
    tones = 0.3 * np.sin(2 * math.pi * 440 * t) + 0.1 * np.sin(2 * math.pi * 3150 * t)
    clip = 0.5 * chirp + tones
    clip[4 * RATE : 6 * RATE] = 0.0
    return clip.astype(np.float32)


def ssltie_input(samples: torch.Tensor, rate: int) -> torch.Tensor:
    """SSL-TIE's test-time input of ``samples [channels, T]`` -> ``[channels, 257, frames]``."""
    import torchaudio.transforms as T  # here, so that the tests can import `tone_clip` without torchaudio

    if samples.shape[1] < rate * 10:
        samples = samples.repeat(1, int(rate * 10 / samples.shape[1]) + 1)
    samples = samples[..., : rate * 10]
    mel = T.MelSpectrogram(sample_rate=rate, n_fft=512, hop_length=239, n_mels=257, normalized=True)(samples)
    return T.AmplitudeToDB()(mel)


def main() -> None:
    wav = Path(sys.argv[1])
    data, rate = sf.read(wav, dtype="float32", always_2d=True)  # as torchaudio.load: int16 / 32768
    assert rate == RATE, rate
    out = {
        "tone_clip": ssltie_input(torch.from_numpy(tone_clip())[None], RATE)[0, :, ::STRIDE].numpy(),
        "wav": ssltie_input(torch.from_numpy(data.T.copy()), rate)[0, :, ::STRIDE].numpy(),
        "wav_name": np.array(wav.name),
        "stride": np.array(STRIDE),
    }
    np.savez_compressed(Path(__file__).with_name("mel_reference.npz"), **out)


if __name__ == "__main__":
    main()
