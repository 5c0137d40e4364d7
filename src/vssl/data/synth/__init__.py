"""The built-in synthetic audio-visual benchmark "synth".

Every frame shows ONE sounding object and up to ``max_distractors`` equally salient SILENT objects of
other classes on a cluttered background; the audio is the sounding class's signature plus faint
ambience. A model that only learned "what is salient" lights up distractors (and does so for silence
and noise too); a model that listens picks the sounding object.

Each class pairs a look (shape, hue, texture) with a sound (see ``SYNTH_CLASSES``; the sounds are made in
:mod:`vssl.data.synth.sounds`). A sample is fully determined by ``(seed, split, index)``: its generator
is seeded with ``SeedSequence([seed, split_id, index])``, so any sample can be regenerated alone and
split sizes never change other samples.

Modules: ``config`` (:class:`SynthConfig`, the class table), ``image`` (the frame painter), ``sounds`` (the
sound signatures), ``audio`` (a sample's track), ``sample`` (:func:`render_sample`;
:func:`render_frame` and :func:`render_sound`, the pretraining streams),
``writer`` (:func:`generate`); the files it writes are read by :mod:`vssl.data.formats.synth` (layout in its
docstring). ``video`` and ``stream`` write test videos and live streams for ``vssl prepare`` and
``vssl localize --live``.
"""

from vssl.data.formats.synth import FORMAT_VERSION, SPLITS, read_synth
from vssl.data.synth.config import (
    AUDIO_PRETRAIN_STREAM,
    PRETRAIN_STREAM,
    SYNTH_CLASSES,
    SynthClass,
    SynthConfig,
    synth_class_names,
)
from vssl.data.synth.sample import SynthSample, render_frame, render_sample, render_sound
from vssl.data.synth.writer import generate

__all__ = [
    "AUDIO_PRETRAIN_STREAM",
    "FORMAT_VERSION",
    "PRETRAIN_STREAM",
    "SPLITS",
    "SYNTH_CLASSES",
    "SynthClass",
    "SynthConfig",
    "SynthSample",
    "generate",
    "read_synth",
    "render_frame",
    "render_sample",
    "render_sound",
    "synth_class_names",
]
