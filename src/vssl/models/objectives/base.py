"""What every training objective shares: the batch it receives and the contract of a base objective.

A base objective (EZ-VSL, SLAVC, FNAC, LVS) is a module ``forward(model, batch) -> {"loss": ..., ...}``.
It also offers `BaseObjective.contrast`, the same computation with K extra negative clips (silence,
noise) embedded beside the batch's audio, which SSL-SaN composes on top of any base (SPEC §5):
the negatives join the image->audio logits as extra columns, and their cosine maps come back for
SSL-SaN's flatness term.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from vssl.models.localizer import AVLocalizer


@dataclass(frozen=True)
class Batch:
    """What an objective receives: normalised images ``[B, 3, S, S]``, 3 s waves ``[B, T]``, where training is.

    ``step`` counts optimiser steps from 0; ``epoch`` is the epoch that step belongs to (FNAC's warm-up).
    """

    images: torch.Tensor
    waves: torch.Tensor
    step: int
    epoch: int = 0


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


def diagonal_ce(logits: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of ``[B, N]`` logits (N >= B) towards column i for row i."""
    return F.cross_entropy(logits, torch.arange(logits.shape[0], device=logits.device))
