"""The audio track of a synth sample: the sounding class's signature (:mod:`vssl.data.synth.sounds`) over faint
ambience, or, for part of the training pairs, a track on which the source cannot be heard (the kinds of
``SynthSample.track``: quiet, muted, noisy, offscreen)."""

from __future__ import annotations

import numpy as np

from vssl.data.synth.config import SYNTH_CLASSES, SynthConfig
from vssl.data.synth.sounds import render_audio


def render_track(
    cfg: SynthConfig,
    train: bool,
    layout_rng: np.random.Generator,
    audio_seq: np.random.SeedSequence,
    label: int,
    distractors: list[int],
) -> tuple[np.ndarray, str]:
    """The track of a sample whose frame shows class ``label`` (sounding) and ``distractors`` (silent):
    (waveform float32 ``[N]`` in [-1, 1], track kind). The kind is drawn only for a ``train`` pair (else
    "audible") from ``layout_rng``, which also picks an offscreen class; the audio is drawn from ``audio_seq``."""
    others = [c for c in range(cfg.num_classes) if c != label]
    track = _track_kind(cfg, layout_rng.random()) if train else "audible"
    audio_rng = np.random.default_rng(audio_seq)
    heard, absent = label, [c for c in others if c not in distractors]
    if track == "offscreen":  # the sound of a class absent from the frame (none absent: the pair stays audible)
        heard, track = (int(layout_rng.choice(absent)), track) if absent else (label, "audible")
    level_db = cfg.level_db if track in ("audible", "offscreen") else cfg.inaudible_db
    waveform = class_sound(cfg, audio_rng, heard, level_db)
    if track == "muted":
        waveform = np.zeros_like(waveform)
    elif track == "noisy":
        waveform = np.clip(waveform + _broadband(audio_rng, len(waveform), cfg.noisy_db), -1.0, 1.0)
    return waveform, track


def class_sound(cfg: SynthConfig, rng: np.random.Generator, cls: int, level_db: tuple[float, float]) -> np.ndarray:
    """Class ``cls``'s sound at a peak level drawn from ``level_db``, over the config's ambience, ``cfg.duration``
    long at ``cfg.sample_rate``: float32 ``[N]`` in [-1, 1], drawn from ``rng``."""
    sound = SYNTH_CLASSES[cls]
    return render_audio(
        rng,
        sound.sound,
        sound.params,
        level_db,
        duration=cfg.duration,
        sample_rate=cfg.sample_rate,
        ambience_db=cfg.ambience_db,
    )


def _track_kind(cfg: SynthConfig, u: float) -> str:
    """The kind of a training pair's audio track from a uniform draw ``u`` (the fractions in order)."""
    for track, upto in (
        ("quiet", cfg.inaudible_fraction),
        ("muted", cfg.inaudible_fraction + cfg.muted_fraction),
        ("noisy", cfg.inaudible_fraction + cfg.muted_fraction + cfg.noisy_fraction),
        ("offscreen", cfg.inaudible_fraction + cfg.muted_fraction + cfg.noisy_fraction + cfg.offscreen_fraction),
    ):
        if u < upto:
            return track
    return "audible"


def _broadband(rng: np.random.Generator, n: int, level_db: tuple[float, float]) -> np.ndarray:
    """White or pink Gaussian noise at an RMS level drawn from ``level_db`` (dBFS), float32 ``[n]``."""
    noise = rng.standard_normal(n)
    if rng.random() < 0.5:  # pink: 1/f power
        spectrum = np.fft.rfft(noise)
        noise = np.fft.irfft(spectrum / np.sqrt(np.arange(len(spectrum)).clip(min=1)), n)
    noise *= 10 ** (rng.uniform(*level_db) / 20) / (np.sqrt(np.mean(noise**2)) + 1e-12)
    return noise.astype(np.float32)
