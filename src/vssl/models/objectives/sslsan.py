"""SSL-SaN: silence and noise as negatives on top of a base objective (SPEC §5, our reading of the paper).

For a batch of B positive pairs and K negative clips (silence, noise), on top of any base objective (EZ-VSL by
default; SLAVC, FNAC, LVS):

* negative columns: the base's image->audio logits gain K columns; every image must prefer its own
  audio over silence and noise (see each base's `BaseObjective.contrast` for what a column is there);
* flatness: the whole cosine map of an image with a negative clip is pushed below the peak of its
  positive map by ``margin`` (a hinge on the negative map's maximum), so negative audio yields a flat
  map, lower than any sounding object, that a universal threshold can reject. The positive peak is
  the bar, not a target: no gradient flows into it. Letting the hinge also raise it
  (``lift_positive=True``, vssl's first version) rewards whatever location peaks early in training,
  sounding or not; on the demo that left SSL-SaN's maps peaking off the object (measured: adaptive
  AP50 3 % against the baseline's 33 %, and 41 % with the positive peak as a fixed bar);
* level anchor (ours): the contrastive and flatness terms only order the maps, so nothing fixes where on the
  cosine scale they sit. The anchor is a logistic loss on each negative map's peak around the cosine ``level``
  (0, which is 0.5 on (cos+1)/2), ``softplus((peak - level) / T) * T`` (a hinge smoothed over ``T``), and with
  ``level_positives`` the same on each positive peak from below, which would make the fixed threshold 0.5 a
  decision. The demo uses it on the negatives only, and its maps still sink (positive median maximum 0.11 on
  (cos+1)/2): the flatness hinge never rests (an image whose sound is hard to tell from noise cannot put its noise
  map a margin below its own peak), and each push on the negatives also lowers what the positives share with them
  through the audio encoder while the detached bar follows, a ratchet. Lifting the positives too cost noise
  separability; resting the hinge once a negative map is a margin below the level (a floor under its bar) lifted
  the positives to 0.42 and separated noise better on four seeds of five, but left the fifth at chance (both
  measured in docs/demo.md). ``level_weight=0`` switches it off.

Each part can be switched off for ablations; with every part off this is the base objective exactly, in training
mode too: the negative clips are embedded in an audio pass of their own, normalised by the positives' batch
statistics (`vssl.models.objectives.base.embed_audio`), so they never change how the positives are normalised, nor
the running statistics, and they are normalised in training as inference will normalise them (by the average of
such statistics). (vssl's first version embedded them in the positives' pass: they entered the batch statistics,
and a silence rejected in every training batch could still be embedded next to the quietest sound class at
inference; its second normalised them by the running averages, which PreciseBN then replaced; see `embed_audio`.)
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from vssl.errors import ConfigError
from vssl.models.localizer import AVLocalizer
from vssl.models.objectives.base import BaseObjective, Batch
from vssl.negatives import NegativeSampler, TrainingNegativesConfig


@dataclass(frozen=True)
class SSLSaNConfig:
    """Switches and weights of the negative-audio terms."""

    negatives: TrainingNegativesConfig = field(default_factory=TrainingNegativesConfig)
    negative_columns: bool = True
    """add negatives as extra columns of the image->audio logits"""
    flatness_weight: float = 1.0
    """weight of the flatness hinge (0 disables it)"""
    margin: float = 0.2
    """cosine gap required between the positive map's peak and every location of a negative map"""
    lift_positive: bool = False
    """the flatness hinge also pushes the positive peak up (see the module docstring)"""
    level_weight: float = 1.0
    """(ours) weight of the level anchor (0 disables it; see the module docstring)"""
    level_positives: bool = False
    """the anchor also lifts positive peaks above the level (see the module docstring)"""
    level: float = 0.0
    """cosine the anchor puts between positive and negative peaks (0 = 0.5 on (cos+1)/2)"""
    level_temperature: float = 0.05
    """width of the anchor's smoothed hinges, in cosine"""

    def __post_init__(self) -> None:
        if self.flatness_weight < 0 or self.level_weight < 0:
            raise ConfigError("sslsan: flatness_weight and level_weight must be >= 0")
        if not -1.0 < self.level < 1.0 or self.level_temperature <= 0:
            raise ConfigError(
                f"sslsan: level must lie in (-1, 1) and level_temperature be > 0, got {self.level}, "
                f"{self.level_temperature}"
            )


class SSLSaN(torch.nn.Module):
    """A base objective plus silence/noise negatives."""

    def __init__(self, cfg: SSLSaNConfig, base: BaseObjective, num_samples: int, seed: int):
        super().__init__()
        self.cfg = cfg
        self.base = base
        self.name = f"sslsan+{base.name}"
        self.sampler = NegativeSampler(cfg.negatives, num_samples, seed)

    def forward(self, model: AVLocalizer, batch: Batch) -> dict[str, torch.Tensor]:
        negatives = self.sampler.draw(batch.step)
        out = self.base.contrast(model, batch, negatives, self.cfg.negative_columns)
        loss = out.losses["loss"]
        parts = {k: v for k, v in out.losses.items() if k != "loss"}
        parts["contrastive_loss"] = loss.detach()
        neg_peaks = out.negative_maps.flatten(2).amax(dim=-1)  # [B, K] cosine peak of each image with each negative
        pos_peaks = out.positive_maps.flatten(1).amax(dim=-1)  # [B] cosine peak of each image with its own audio
        if self.cfg.flatness_weight > 0 and neg_peaks.numel():
            bar = pos_peaks[:, None] if self.cfg.lift_positive else pos_peaks[:, None].detach()
            flatness = F.relu(neg_peaks - bar + self.cfg.margin).mean()
            loss = loss + self.cfg.flatness_weight * flatness
            parts["flatness_loss"] = flatness.detach()
        if self.cfg.level_weight > 0:
            t, level = self.cfg.level_temperature, self.cfg.level
            anchor = pos_peaks.new_zeros(())
            if self.cfg.level_positives:
                anchor = anchor + F.softplus((level - pos_peaks) / t).mean() * t
            if neg_peaks.numel():
                anchor = anchor + F.softplus((neg_peaks - level) / t).mean() * t
            loss = loss + self.cfg.level_weight * anchor
            parts["level_loss"] = anchor.detach()
        if neg_peaks.numel():
            parts["negative_max_cosine"] = neg_peaks.max().detach()
        return {"loss": loss, **parts}
