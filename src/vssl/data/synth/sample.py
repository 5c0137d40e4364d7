"""One synth sample, composed: its frame (:mod:`vssl.data.synth.image`) and its audio track
(:mod:`vssl.data.synth.audio`), both drawn from generators seeded by ``SeedSequence([seed, stream, index])``."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from PIL import Image

from vssl.data.synth.audio import class_sound, render_track
from vssl.data.synth.config import AUDIO_PRETRAIN_STREAM, PRETRAIN_STREAM, SPLITS, SYNTH_CLASSES, SynthConfig
from vssl.data.synth.image import render_image, tight_box
from vssl.errors import DatasetError


class SynthSample(NamedTuple):
    """One rendered sample; ``box`` is pixel (xmin, ymin, xmax, ymax) with max exclusive, ``mask`` is [H, W] bool."""

    image: Image.Image
    waveform: np.ndarray
    box: tuple[int, int, int, int]
    mask: np.ndarray
    label: str
    classes_in_frame: list[str]
    track: str  # "audible"; training split only: "quiet" (source inaudible), "muted" (zeros), "noisy", "offscreen"
    objects: list[tuple[int, int, int, int]]  # every object's box, in the order of classes_in_frame

    @property
    def inaudible(self) -> bool:
        """The source cannot be heard on the track."""
        return self.track != "audible"


def render_sample(cfg: SynthConfig, split: str, index: int) -> SynthSample:
    """Render sample ``index`` of ``split`` in memory; the waveform is float32 [N] in [-1, 1]."""
    if split not in SPLITS:
        raise DatasetError(f"unknown synth split {split!r}; valid splits: {', '.join(SPLITS)}")
    (image, mask, objects), layout_rng, audio_seq, label, distractors = _render_frame(cfg, SPLITS.index(split), index)
    waveform, track = render_track(cfg, split == "train", layout_rng, audio_seq, label, distractors)
    names = [SYNTH_CLASSES[c].name for c in [label, *distractors]]
    return SynthSample(image, waveform, tight_box(mask), mask, names[0], names, track, objects)


def render_frame(
    cfg: SynthConfig, index: int, stream: int = PRETRAIN_STREAM
) -> tuple[Image.Image, list[int], list[tuple[int, int, int, int]]]:
    """Frame ``index`` of a frames-only stream (no audio), the classes it shows (sounding and silent alike) and
    their boxes (pixels, max exclusive, in the same order): the images of the demo's image pretraining.
    ``stream`` keeps its seeds apart from every split's."""
    (image, _, objects), _, _, label, distractors = _render_frame(cfg, stream, index)
    return image, [label, *distractors], list(objects)


def render_sound(cfg: SynthConfig, index: int, stream: int = AUDIO_PRETRAIN_STREAM) -> tuple[np.ndarray, int]:
    """Clip ``index`` of a sounds-only stream (no frame): one class's sound over faint ambience, as an audible
    track of the splits is made, and its class (``index % num_classes``, balanced): the clips of the demo's
    audio pretraining. ``stream`` keeps its seeds apart from every split's and from the frames'."""
    label = index % cfg.num_classes
    rng = np.random.default_rng(np.random.SeedSequence([cfg.seed, stream, index]))
    waveform = class_sound(cfg, rng, label, cfg.level_db)
    return waveform, label


def _render_frame(cfg: SynthConfig, stream: int, index: int):
    """The frame of sample ``index`` of seed stream ``stream`` (a split's index in SPLITS, or another): ((image,
    mask, object boxes), the layout generator left for the track, the audio seed, label, distractors)."""
    image_seq, audio_seq, layout_seq = np.random.SeedSequence([cfg.seed, stream, index]).spawn(3)
    label = index % cfg.num_classes  # balanced classes, independent of split sizes
    layout_rng = np.random.default_rng(layout_seq)
    others = [c for c in range(cfg.num_classes) if c != label]
    n_distractors = int(layout_rng.integers(0, cfg.max_distractors + 1))
    distractors = [int(c) for c in layout_rng.choice(others, size=n_distractors, replace=False)]
    frame = render_image(np.random.default_rng(image_seq), cfg.image_size, label, distractors)
    return frame, layout_rng, audio_seq, label, distractors
