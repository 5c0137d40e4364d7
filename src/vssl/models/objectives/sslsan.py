"""SSL-SaN: silence and noise as negatives on top of a base objective (SPEC §5, our reading of the paper).

For a batch of B positive pairs and K negative clips (silence, noise) embedded in the same audio
forward pass as the positives:

* negative columns: the image->audio logits gain K columns, ``[B, B + K]``; every image must prefer
  its own audio over silence and noise (cross-entropy towards the diagonal);
* flatness: the whole cosine map of an image with a negative clip is pushed below the peak of its
  positive map by ``margin`` (a hinge on the negative map's maximum, gradients to both maps), so
  negative audio yields a flat map, lower than any sounding object, that a universal threshold
  can reject.

Either part can be switched off for ablations; with both off this is the base objective exactly.

Caveat, measured on the demo: with BatchNorm in the audio encoder, the negatives are normalised by
their training batch's statistics, inference by running statistics, and a silence rejected in every
training batch can still be embedded next to the quietest sound class at inference (cosine 0.76 in a
training batch vs 0.87 at inference on the same images). ``TrainConfig.freeze_audio_norm_at`` and
``BackboneConfig.norm="group"`` close that gap.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from vssl.data.negatives import NegativeSampler, TrainingNegativesConfig
from vssl.models.localizer import AVLocalizer
from vssl.models.objectives.ezvsl import Batch, mil_scores


@dataclass(frozen=True)
class SSLSaNConfig:
    """Switches and weights of the negative-audio terms."""

    negatives: TrainingNegativesConfig = field(default_factory=TrainingNegativesConfig)
    negative_columns: bool = True  # add negatives as extra columns of the image->audio logits
    flatness_weight: float = 1.0  # weight of the flatness hinge (0 disables it)
    margin: float = 0.2  # cosine gap required between the positive map's peak and every location of a negative map


class SSLSaN(torch.nn.Module):
    """EZ-VSL's multiple-instance contrastive loss plus silence/noise negatives."""

    name = "sslsan"

    def __init__(self, cfg: SSLSaNConfig, num_samples: int, seed: int):
        super().__init__()
        self.cfg = cfg
        self.sampler = NegativeSampler(cfg.negatives, num_samples, seed)

    def forward(self, model: AVLocalizer, batch: Batch) -> dict[str, torch.Tensor]:
        b = batch.waves.shape[0]
        negatives = self.sampler.draw(batch.step).to(batch.waves)
        audio = model.encode_waveform(torch.cat([batch.waves, negatives]))
        aud, aud_neg = audio[:b], audio[b:]
        img = model.encode_image(batch.images)
        tau = model.cfg.tau
        logits = mil_scores(img, aud, tau)  # [B, B]
        neg_logits = mil_scores(img, aud_neg, tau)  # [B, K]
        labels = torch.arange(b, device=logits.device)
        i2a = torch.cat([logits, neg_logits], dim=1) if self.cfg.negative_columns else logits
        contrastive = F.cross_entropy(i2a, labels) + F.cross_entropy(logits.t(), labels)
        parts = {"contrastive_loss": contrastive.detach()}
        loss = contrastive
        if self.cfg.flatness_weight > 0 and neg_logits.numel():
            pos_peak = logits.diagonal()[:, None] * tau  # [B, 1] cosine peak of each image with its own audio
            flatness = F.relu(neg_logits * tau - pos_peak + self.cfg.margin).mean()
            loss = loss + self.cfg.flatness_weight * flatness
            parts["flatness_loss"] = flatness.detach()
        if neg_logits.numel():
            parts["negative_max_cosine"] = (neg_logits * tau).max().detach()
        return {"loss": loss, **parts}
