"""FNAC: false-negative-aware contrast, EZ-VSL plus intra-modal similarity regularisers (SPEC §3).

On top of EZ-VSL's loss, three L1 distances between row-softmaxes of ``[B, B]`` similarity matrices
(all cosine / tau) pull the cross-modal logits towards the intra-modal structure, so a negative that
sounds or looks like the positive is not pushed away as hard:

* FNS-1: audio-audio ``<a_i, a_j>`` vs the EZ-VSL logits ``max_hw S_ij``;
* TNS: audio-audio vs foreground-image-foreground-image, where the foreground of image i is the mean of
  its features over the locations whose min-max-normalised own map exceeds 0.6 (a hard, gradient-free mask);
* FNS-2: image-image (spatial means of the image features) vs the logits.

The regularisers join after ``warmup_epochs`` epochs of EZ-VSL alone (they are logged throughout).
Image features pass through dropout (0.9 published). Negative clips (SSL-SaN) are extra columns of
EZ-VSL's image->audio logits; the B x B regularisers see the batch's own pairs only.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from vssl.maps import paired_maps, pairwise_maps
from vssl.models.checkpoint_formats import CheckpointFormat
from vssl.models.localizer import AVLocalizer
from vssl.models.method import Method
from vssl.models.objectives.base import BaseObjective, Batch, Contrast, audio_columns, encode_pairs
from vssl.models.objectives.ezvsl import mil_contrastive
from vssl.models.ogl_mix import mix_ezvsl

TERMS = ("fns1", "tns", "fns2")
_MINMAX_EPS = 1e-5  # added to the own map's range before the foreground threshold, as published


@dataclass(frozen=True)
class FNACConfig:
    """FNAC's weights and schedule (the published values)."""

    weights: tuple[float, float, float] = (100.0, 100.0, 100.0)
    """weights of FNS-1, TNS, FNS-2"""
    warmup_epochs: int = 5
    """epochs of EZ-VSL alone before the regularisers join"""
    foreground_threshold: float = 0.6
    """on the min-max-normalised own map: the foreground mask of TNS"""
    image_dropout: float = 0.9
    """dropout on the image trunk's features before the projection"""


def _row_softmax_l1(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Mean absolute difference of the row-softmaxes of two ``[B, B]`` matrices."""
    return F.l1_loss(a.softmax(dim=1), b.softmax(dim=1))


def fnac_terms(
    img: torch.Tensor, aud: torch.Tensor, logits: torch.Tensor, tau: float, threshold: float
) -> dict[str, torch.Tensor]:
    """The three regularisers for ``img [B, D, h, w]``, ``aud [B, D]`` and EZ-VSL ``logits [B, B]``."""
    aud_sim = aud @ aud.t() / tau
    img_mean = img.mean(dim=(2, 3))
    img_sim = img_mean @ img_mean.t() / tau
    own = paired_maps(img, aud).detach() / tau  # [B, h, w]; the mask it gives carries no gradient
    lo = own.amin(dim=(1, 2), keepdim=True)
    norm = (own - lo) / (own.amax(dim=(1, 2), keepdim=True) - lo + _MINMAX_EPS)
    foreground = (img * (norm > threshold)[:, None]).mean(dim=(2, 3))
    fg_sim = foreground @ foreground.t() / tau
    return {
        "fns1": _row_softmax_l1(aud_sim, logits),
        "tns": _row_softmax_l1(aud_sim, fg_sim),
        "fns2": _row_softmax_l1(img_sim, logits),
    }


class FNAC(BaseObjective):
    """EZ-VSL + weighted FNS-1, TNS and FNS-2 after the warm-up."""

    name = "fnac"

    def __init__(self, cfg: FNACConfig | None = None):
        super().__init__()
        self.cfg = cfg or FNACConfig()

    def contrast(
        self, model: AVLocalizer, batch: Batch, negatives: torch.Tensor | None = None, negative_columns: bool = True
    ) -> Contrast:
        img, aud, neg = encode_pairs(model, batch, negatives, dropout=self.cfg.image_dropout)
        b = img.shape[0]
        ezvsl, logits = mil_contrastive(img, audio_columns(aud, neg, negative_columns), model.cfg.tau)
        terms = fnac_terms(img, aud, logits[:, :b], model.cfg.tau, self.cfg.foreground_threshold)
        fnac = sum(w * terms[t] for w, t in zip(self.cfg.weights, TERMS, strict=True))
        active = batch.epoch >= self.cfg.warmup_epochs
        loss = ezvsl + fnac if active else ezvsl
        losses = {"loss": loss, "ezvsl_loss": ezvsl.detach(), "fnac_loss": fnac.detach()}
        losses |= {f"fnac_{t}_loss": v.detach() for t, v in terms.items()}
        return Contrast(losses, paired_maps(img, aud), pairwise_maps(img, neg))


METHOD = Method(
    "fnac",
    objective=FNAC,
    config=FNACConfig,
    ogl=(mix_ezvsl, 0.4),  # EZ-VSL's rule and alpha, as FNAC's test code
    formats=(CheckpointFormat("fnac", "FNAC (CVPR 2023)", "model", "resnet18"),),
)
