"""What every training objective shares: the batch it receives and the contract of a base objective.

A base objective (EZ-VSL, SLAVC, FNAC, LVS) is a module ``forward(model, batch) -> {"loss": ..., ...}``.
It also offers `BaseObjective.contrast`, the same computation with K extra negative clips (silence,
noise) embedded beside the batch's audio, which SSL-SaN composes on top of any base (SPEC §5):
the negatives join the image->audio logits as extra columns, and their cosine maps come back for
SSL-SaN's flatness term.

Two optional parts of a `Batch` serve the trainer's fast paths, and every base objective honours them
through `batch_spectrograms` and `gather_pairs` (`encode_pairs` does both): precomputed spectrograms (a
spectrogram cache) and a ``gather`` that joins the pairs of every data-parallel process into one global
batch of negatives.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from vssl.models.localizer import AVLocalizer


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


def batch_waves(batch: Batch, negatives: torch.Tensor | None) -> torch.Tensor:
    """The batch's waves followed by the negative clips, ``[B + K, T]`` (one audio forward pass for all)."""
    return batch.waves if negatives is None else torch.cat([batch.waves, negatives.to(batch.waves)])


def batch_spectrograms(model: AVLocalizer, batch: Batch, negatives: torch.Tensor | None) -> torch.Tensor:
    """Log-spectrograms of the batch's audio followed by the negative clips', ``[B + K, 1, F, T]``.

    From ``batch.specs`` when the data holds them (only the negatives are transformed), else one
    spectrogram pass over `batch_waves`.
    """
    if batch.specs is None:
        return model.spectrogram(batch_waves(batch, negatives))
    if negatives is None or not len(negatives):
        return batch.specs
    return torch.cat([batch.specs, model.spectrogram(negatives.to(batch.specs.device)).to(batch.specs.dtype)])


def gather_pairs(batch: Batch, img: torch.Tensor, aud: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """This process's embeddings -> the global batch's (unchanged without ``batch.gather``).

    ``img [b, ...] -> [W*b, ...]``; ``aud [b + K, ...] -> [W*b + K, ...]``: every process's positives in rank
    order, then this process's K negative clips (every process draws the same clips for a step), so the
    layout stays "B positives, then K negatives" with B = W*b.
    """
    if batch.gather is None:
        return img, aud
    b = img.shape[0]
    return batch.gather(img), torch.cat([batch.gather(aud[:b]), aud[b:]])


def encode_pairs(
    model: AVLocalizer, batch: Batch, negatives: torch.Tensor | None, dropout: float = 0.0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Embeddings of the global batch: images ``[B, K*D, h, w]`` and audio ``[B + K, K*D]`` (negatives last).

    ``dropout`` on the image trunk's features (see `AVLocalizer.encode_image`).
    """
    img = model.encode_image(batch.images, dropout=dropout)
    if batch.specs is None:
        aud = model.encode_waveform(batch_waves(batch, negatives))
    else:
        aud = model.encode_audio(batch_spectrograms(model, batch, negatives))
    return gather_pairs(batch, img, aud)


def diagonal_ce(logits: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of ``[B, N]`` logits (N >= B) towards column i for row i."""
    return F.cross_entropy(logits, torch.arange(logits.shape[0], device=logits.device))
