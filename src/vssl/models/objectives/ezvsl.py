"""EZ-VSL: multiple-instance contrastive learning (SPEC §3).

The score of image i with audio j is the best-matching location, ``l_ij = max_hw S_ij(h, w)``
with ``S = cosine / tau``; the loss is symmetric cross-entropy towards the diagonal.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from vssl.models.localizer import AVLocalizer, pairwise_maps


@dataclass(frozen=True)
class Batch:
    """What an objective receives: normalised images ``[B, 3, S, S]``, 3 s waves ``[B, T]``, the step."""

    images: torch.Tensor
    waves: torch.Tensor
    step: int


def mil_scores(img: torch.Tensor, aud: torch.Tensor, tau: float) -> torch.Tensor:
    """Multiple-instance scores ``[Bi, D, h, w], [Ba, D] -> [Bi, Ba]``: max over locations of cosine / tau."""
    return pairwise_maps(img, aud).flatten(2).amax(dim=-1) / tau


def symmetric_ce(logits: torch.Tensor) -> torch.Tensor:
    """Cross-entropy towards the diagonal, image->audio plus audio->image, of square ``[B, B]`` logits."""
    labels = torch.arange(logits.shape[0], device=logits.device)
    return F.cross_entropy(logits, labels) + F.cross_entropy(logits.t(), labels)


class EZVSL(torch.nn.Module):
    """The positive-only baseline."""

    name = "ezvsl"

    def forward(self, model: AVLocalizer, batch: Batch) -> dict[str, torch.Tensor]:
        img, aud = model(batch.images, batch.waves)
        loss = symmetric_ce(mil_scores(img, aud, model.cfg.tau))
        return {"loss": loss, "ezvsl_loss": loss.detach()}
