"""EZ-VSL: multiple-instance contrastive learning (SPEC §3).

The score of image i with audio j is the best-matching location, ``l_ij = max_hw S_ij(h, w)``
with ``S = cosine / tau``; the loss is symmetric cross-entropy towards the diagonal.
"""

from __future__ import annotations

import torch

from vssl.maps import paired_maps, pairwise_maps
from vssl.models.checkpoint_formats import CheckpointFormat
from vssl.models.localizer import AVLocalizer
from vssl.models.method import Method
from vssl.models.objectives.base import BaseObjective, Batch, Contrast, audio_columns, diagonal_ce, encode_pairs
from vssl.models.ogl_mix import mix_ezvsl

__all__ = ["EZVSL", "METHOD", "Batch", "mil_contrastive", "mil_scores", "symmetric_ce"]


def mil_scores(img: torch.Tensor, aud: torch.Tensor, tau: float) -> torch.Tensor:
    """Multiple-instance scores ``[Bi, D, h, w], [Ba, D] -> [Bi, Ba]``: max over locations of cosine / tau."""
    return pairwise_maps(img, aud).flatten(2).amax(dim=-1) / tau


def symmetric_ce(logits: torch.Tensor) -> torch.Tensor:
    """Cross-entropy towards the diagonal, image->audio plus audio->image, of square ``[B, B]`` logits."""
    return diagonal_ce(logits) + diagonal_ce(logits.t())


def mil_contrastive(img: torch.Tensor, audios: torch.Tensor, tau: float) -> tuple[torch.Tensor, torch.Tensor]:
    """EZ-VSL's loss for B images ``[B, D, h, w]`` and ``[B (+ K), D]`` audios (the B pairs' own, then any
    negative clips): image->audio cross-entropy over every column, audio->image over the B images.

    Returns ``(loss, logits [B, B (+ K)])``; with the B audios alone this is `symmetric_ce`.
    """
    b = img.shape[0]
    logits = mil_scores(img, audios, tau)
    return diagonal_ce(logits) + diagonal_ce(logits[:, :b].t()), logits


class EZVSL(BaseObjective):
    """The positive-only baseline."""

    name = "ezvsl"

    def contrast(
        self, model: AVLocalizer, batch: Batch, negatives: torch.Tensor | None = None, negative_columns: bool = True
    ) -> Contrast:
        img, aud, neg = encode_pairs(model, batch, negatives)
        loss, _ = mil_contrastive(img, audio_columns(aud, neg, negative_columns), model.cfg.tau)
        return Contrast({"loss": loss, "ezvsl_loss": loss.detach()}, paired_maps(img, aud), pairwise_maps(img, neg))


METHOD = Method(
    "ezvsl",
    objective=lambda _: EZVSL(),
    ogl=(mix_ezvsl, 0.4),
    formats=(CheckpointFormat("ezvsl", "EZ-VSL (ECCV 2022)", "model", "resnet18"),),
)
