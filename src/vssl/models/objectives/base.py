"""What every training objective shares: the batch it receives and the contract of a base objective.

A base objective (EZ-VSL, SLAVC, FNAC, LVS) is a module ``forward(model, batch) -> {"loss": ..., ...}``.
It also offers `BaseObjective.contrast`, the same computation with K extra negative clips (silence,
noise) embedded beside the batch's audio, which SSL-SaN composes on top of any base (SPEC §5):
the negatives join the image->audio logits as extra columns, and their cosine maps come back for
SSL-SaN's flatness term.

The negatives never share a pass with the positives (`embed_audio`): with every SSL-SaN part switched off,
a base objective under SSL-SaN computes exactly what it computes alone.

Two optional parts of a `Batch` serve the trainer's fast paths, and every base objective honours them
through `audio_inputs` and `gather_pairs` (`encode_pairs` does both): precomputed spectrograms (a
spectrogram cache) and a ``gather`` that joins the pairs of every data-parallel process into one global
batch of negatives.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple, TypeVar

import torch
import torch.nn.functional as F

from vssl.models.localizer import AVLocalizer
from vssl.models.norm import Statistics, recorded_statistics, recording_statistics

T = TypeVar("T", torch.Tensor, list[torch.Tensor])


@dataclass(frozen=True)
class Batch:
    """What an objective receives: normalised images ``[B, 3, S, S]``, 3 s waves ``[B, T]``, where training is.

    ``step`` counts optimiser steps from 0; ``epoch`` is the epoch that step belongs to (FNAC's warm-up).
    ``specs``: the waves' log-spectrograms ``[B, 1, F, T]`` when the data already holds them (``waves`` is
    then unused and may be empty). ``gather``: joins a tensor of this process's pairs ``[b, ...]`` with every
    other process's into the global batch ``[W*b, ...]`` in rank order, gradients flowing back to each
    process's own slice (data-parallel training with global-batch contrast); None: this batch is all.
    """

    images: torch.Tensor
    waves: torch.Tensor
    step: int
    epoch: int = 0
    specs: torch.Tensor | None = None
    gather: Callable[[torch.Tensor], torch.Tensor] | None = None


class AudioInputs(NamedTuple):
    """The network inputs of a batch's audio ``[B, 1, F, T]`` and of its negative clips ``[K, 1, F, T]`` (or None)."""

    positives: torch.Tensor
    negatives: torch.Tensor | None


@dataclass(frozen=True)
class Contrast:
    """A base objective's result on a batch of B pairs and K negative clips.

    ``losses`` holds ``"loss"`` (with gradients) and detached parts for logging; ``positive_maps``
    ``[B, h, w]`` is the cosine map of each image with its own audio, ``negative_maps`` ``[B, K, h, w]``
    that of each image with each negative clip (both with gradients; maps as the model's `localize`
    would draw them, e.g. the mean of SLAVC's two heads).
    """

    losses: dict[str, torch.Tensor]
    positive_maps: torch.Tensor
    negative_maps: torch.Tensor


class BaseObjective(torch.nn.Module):
    """A method's loss, usable alone (``forward``) or under SSL-SaN (``contrast`` with negatives)."""

    name: str = ""

    def contrast(
        self, model: AVLocalizer, batch: Batch, negatives: torch.Tensor | None = None, negative_columns: bool = True
    ) -> Contrast:
        """The loss on ``batch`` with the clips ``negatives`` ``[K, T]`` as extra audio.

        ``negative_columns``: the negatives compete with the batch's audio in the image->audio logits;
        when False they are only embedded (their maps returned) and the loss is the plain base loss.
        """
        raise NotImplementedError

    def forward(self, model: AVLocalizer, batch: Batch) -> dict[str, torch.Tensor]:
        return self.contrast(model, batch).losses


def audio_inputs(model: AVLocalizer, batch: Batch, negatives: torch.Tensor | None) -> AudioInputs:
    """Log-spectrograms of the batch's audio (``batch.specs`` when the data holds them) and of the negative clips."""
    positives = model.spectrogram(batch.waves) if batch.specs is None else batch.specs
    if negatives is None or not len(negatives):
        return AudioInputs(positives, None)
    return AudioInputs(positives, model.spectrogram(negatives.to(positives.device)).to(positives.dtype))


def embed_audio(model: AVLocalizer, inputs: AudioInputs, encode: Callable[[torch.Tensor], T]) -> tuple[T, T]:
    """``encode(specs)`` (a tensor ``[N, ...]`` or a list of them, one per head) of the positives ``[B, ...]`` and
    of the negatives ``[K, ...]`` (``[0, ...]`` without negatives).

    Two passes: the positives alone, exactly as the base objective without negatives embeds them (their
    BatchNorm statistics, and the running averages updated from them, are the batch's own), then the negatives
    normalised by the positives' batch statistics, layer by layer, as constants (no update, no gradient into the
    positives' pass). A negative clip therefore never changes how a positive is normalised or what the model
    keeps of the training batches, and SSL-SaN with its parts switched off trains exactly as its base. And the
    negatives are normalised as inference will normalise them: inference uses the average of the positives' batch
    statistics (the running or PreciseBN averages), of which each training batch's are a draw. In eval mode (no
    layer records) both passes use the running statistics.

    vssl's earlier choices, measured on the demo (seed 0, AMD EPYC): one pass with the positives gave the negatives
    batch statistics that inference never reproduces (cosine 0.76 in training against 0.87 at inference on the same
    images); the running (moving-average) statistics for the negatives tied them to a lagging average that PreciseBN
    then replaced: the silence SSL-SaN had learned to hold at cosine -0.30 came back at +0.14 after it.
    """
    stats: Statistics = {}
    with recording_statistics(model, stats):
        positives = encode(inputs.positives)
    if inputs.negatives is not None:
        with recorded_statistics(model, stats):
            return positives, encode(inputs.negatives)
    if isinstance(positives, torch.Tensor):
        return positives, positives.new_zeros((0, *positives.shape[1:]))
    return positives, [p.new_zeros((0, *p.shape[1:])) for p in positives]


def gather_pairs(batch: Batch, img: torch.Tensor, aud: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """This process's pairs -> the global batch's (unchanged without ``batch.gather``): ``img [b, ...] -> [W*b,
    ...]``, ``aud [b, ...] -> [W*b, ...]``, every process's in rank order. Negative clips are not gathered: every
    process draws the same clips for a step."""
    if batch.gather is None:
        return img, aud
    return batch.gather(img), batch.gather(aud)


def encode_pairs(
    model: AVLocalizer, batch: Batch, negatives: torch.Tensor | None, dropout: float = 0.0
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Embeddings of the global batch, images ``[B, D, h, w]`` and audio ``[B, D]``, and of the negative clips
    ``[K, D]`` (``D``: every head's channels joined).

    ``dropout`` on the image trunk's features (see `AVLocalizer.encode_image`).
    """
    img = model.encode_image(batch.images, dropout=dropout)
    aud, neg = embed_audio(model, audio_inputs(model, batch, negatives), model.encode_audio)
    return *gather_pairs(batch, img, aud), neg


def audio_columns(aud: torch.Tensor, neg: torch.Tensor, negative_columns: bool) -> torch.Tensor:
    """The audios an image is contrasted with: the batch's ``[B, ...]``, then the negatives ``[K, ...]`` when
    ``negative_columns`` (the batch's tensor itself otherwise, so that the base's computation is unchanged)."""
    return torch.cat([aud, neg]) if negative_columns and len(neg) else aud


def diagonal_ce(logits: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of ``[B, N]`` logits (N >= B) towards column i for row i."""
    return F.cross_entropy(logits, torch.arange(logits.shape[0], device=logits.device))
