"""What a synth dataset is made of: its config (:class:`SynthConfig`) and its table of classes (:data:`SYNTH_CLASSES`).

Each class pairs a look (shape, hue, texture; painted by :mod:`vssl.data.synth.image`) with a sound (kind and
parameters; made by :mod:`vssl.data.synth.sounds`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from vssl.data.formats.synth import SPLITS
from vssl.errors import ConfigError

PRETRAIN_STREAM = len(SPLITS)  # the seed stream of the frames-only images of the image pretraining (no split)
AUDIO_PRETRAIN_STREAM = len(SPLITS) + 1  # the seed stream of the sounds-only clips of the audio pretraining


@dataclass(frozen=True)
class SynthConfig:
    """What :func:`vssl.data.synth.generate` builds; the same config always yields byte-identical files."""

    seed: int = 0
    """Root seed; sample (split, index) is drawn from SeedSequence([seed, split_id, index])."""
    n_train: int = 2000
    """Number of training samples."""
    n_calibration: int = 200
    """Held-out samples for calibrating universal thresholds."""
    n_test: int = 300
    """Evaluation samples."""
    image_size: int = 224
    """Side of the stored square frames, in pixels."""
    num_classes: int = 8
    """How many classes of the table are used (2..12)."""
    max_distractors: int = 2
    """Silent objects of other classes per frame: 0..max_distractors, uniformly."""
    sample_rate: int = 16000
    """Audio sample rate in Hz."""
    duration: float = 3.0
    """Audio clip length in seconds (the sound itself lasts at least half of it)."""
    level_db: tuple[float, float] = (-40.0, -3.0)
    """Range of the sounding object's peak level, dBFS (uniform): from loud down to faint sources at the level
    of the room ambience, as in-the-wild video holds. Faint positives are where a positive-only model's maps
    fall to the level of its silence and noise maps."""
    ambience_db: tuple[float, float] = (-45.0, -30.0)
    """Range of the background ambience's RMS level, dBFS (uniform)."""
    inaudible_fraction: float = 0.15
    """Training pairs whose source is recorded too quietly to hear (peak in ``inaudible_db``). Uncurated
    training sets hold such pairs; curated test sets (VGG-SS) were checked for an audible source, so the
    calibration and test splits have none. They teach a positive-only model that silence goes with
    whatever is salient."""
    inaudible_db: tuple[float, float] = (-75.0, -55.0)
    """Peak level range of an inaudible source, dBFS: below the spectrogram's floor."""
    muted_fraction: float = 0.0
    """Training pairs whose audio track is digital silence (a muted or silent track, as uncurated video
    holds). A positive-only model learns from them to pair true silence with what is visible."""
    noisy_fraction: float = 0.1
    """Training pairs recorded in loud broadband noise (wind, traffic, a bad microphone) that buries an
    inaudible source: white or pink noise at an RMS level in ``noisy_db``. They teach a positive-only model
    to answer loud noise with whatever is visible."""
    noisy_db: tuple[float, float] = (-18.0, -6.0)
    """RMS level range of the noise of a noisy pair, dBFS."""
    offscreen_fraction: float = 0.0
    """Training pairs whose track is the sound of a class that is not in the frame (the source is off screen,
    the visible objects are silent), as in a large part of uncurated video (e.g. VGGSound)."""

    def __post_init__(self):
        if not 2 <= self.num_classes <= len(SYNTH_CLASSES):
            raise ConfigError(f"synth num_classes must be in 2..{len(SYNTH_CLASSES)}, got {self.num_classes}")
        if not 0 <= self.max_distractors < self.num_classes:
            raise ConfigError(f"synth max_distractors must be in 0..num_classes-1, got {self.max_distractors}")
        fractions = (self.inaudible_fraction, self.muted_fraction, self.noisy_fraction, self.offscreen_fraction)
        if min(fractions) < 0.0 or sum(fractions) > 1.0:
            raise ConfigError(
                "synth inaudible_fraction, muted_fraction, noisy_fraction and offscreen_fraction must be >= 0 "
                f"with a sum <= 1, got {fractions}"
            )
        if min(self.n_train, self.n_calibration, self.n_test) < 0:
            raise ConfigError("synth split sizes must be >= 0")
        if self.image_size < 32:
            raise ConfigError(f"synth image_size must be >= 32, got {self.image_size}")
        if self.sample_rate < 8000 or self.duration <= 0:
            raise ConfigError("synth needs sample_rate >= 8000 and duration > 0")


@dataclass(frozen=True)
class SynthClass:
    """One class: how it looks (shape, hue in degrees, texture) and how it sounds (kind + parameters)."""

    name: str
    shape: str
    hue: float
    texture: str
    sound: str
    params: Mapping[str, float]


SYNTH_CLASSES: tuple[SynthClass, ...] = (
    SynthClass("red-circle-hum", "circle", 0, "solid", "hum", {"f0_hz": 140, "vibrato_hz": 5, "depth": 0.03}),
    SynthClass(
        "yellow-square-static",
        "square",
        55,
        "stripes",
        "noise",
        {"centre_hz": 2500, "octaves": 8.0, "drive": 3.0, "am_hz": 4},
    ),
    SynthClass(
        "green-triangle-tick", "triangle", 120, "dots", "clicks", {"rate_hz": 6, "low_hz": 1000, "high_hz": 6000}
    ),
    SynthClass(
        "cyan-star-chirp",
        "star",
        185,
        "checker",
        "sweeps",
        {"start_hz": 400, "end_hz": 2400, "period_s": 0.5, "duty": 0.8},
    ),
    SynthClass("blue-ring-beep", "ring", 235, "solid", "beeps", {"freq_hz": 1000, "rate_hz": 4, "duty": 0.5}),
    SynthClass(
        "magenta-cross-drone",
        "cross",
        300,
        "stripes",
        "hum",
        {"f0_hz": 330, "vibrato_hz": 0, "depth": 0, "tremolo_hz": 11, "odd_only": 1},
    ),
    SynthClass("orange-hexagon-rumble", "hexagon", 28, "dots", "noise", {"centre_hz": 300, "octaves": 1.2, "am_hz": 2}),
    SynthClass(
        "violet-diamond-swoop",
        "diamond",
        270,
        "checker",
        "sweeps",
        {"start_hz": 3500, "end_hz": 700, "period_s": 0.75, "duty": 0.8},
    ),
    SynthClass(
        "lime-crescent-buzz", "crescent", 90, "solid", "clicks", {"rate_hz": 40, "low_hz": 2000, "high_hz": 4500}
    ),
    SynthClass(
        "azure-pentagon-siren", "pentagon", 210, "stripes", "siren", {"low_hz": 650, "high_hz": 870, "rate_hz": 1.6}
    ),
    SynthClass(
        "teal-arrow-whistle", "arrow", 160, "dots", "warble", {"centre_hz": 2000, "depth_hz": 300, "rate_hz": 3}
    ),
    SynthClass("pink-heart-knock", "heart", 330, "checker", "knocks", {"freq_hz": 180, "period_s": 0.6, "gap_s": 0.18}),
)


def synth_class_names(num_classes: int) -> list[str]:
    """Names of the first ``num_classes`` classes of the table, e.g. ``"red-circle-hum"``."""
    if not 1 <= num_classes <= len(SYNTH_CLASSES):
        raise ConfigError(f"synth supports 1..{len(SYNTH_CLASSES)} classes, got {num_classes}")
    return [c.name for c in SYNTH_CLASSES[:num_classes]]
