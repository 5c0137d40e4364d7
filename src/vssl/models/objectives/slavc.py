"""SLAVC: two-head localization-and-correspondence contrast with momentum targets (SPEC §3).

The model has two projection heads per modality (``heads=2``) and momentum copies of both encoders
(``momentum``, e.g. registry size ``slavc_resnet18``). With ``S^k_ij(hw) = <v^k_i(hw), a^k_j> / tau``:

* ``P_av = softmax over audios j of S^1`` (which audio does location hw of image i belong to),
* ``P_loc = softmax over locations hw of S^2`` (where in image i is audio j),
* ``z_ij = log sum_hw P_av * P_loc``, and ``L = CE(z, diag)``.

``L1`` takes the online image and the momentum audio, ``L2`` the momentum image and the online audio;
the loss is ``L1 + L2``. The momentum encoders take one EMA step before each training batch, and
image features pass through dropout (0.9 published) in both branches, as in the published code.
Negative clips (SSL-SaN) are extra audios j.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch

from vssl.errors import ConfigError
from vssl.maps import join_heads, paired_maps, pairwise_maps
from vssl.models.checkpoint_formats import CheckpointFormat
from vssl.models.localizer import AVLocalizer, ModelConfig
from vssl.models.method import Method
from vssl.models.objectives.base import (
    AudioInputs,
    BaseObjective,
    Batch,
    Contrast,
    audio_columns,
    audio_inputs,
    diagonal_ce,
    embed_audio,
    gather_pairs,
)
from vssl.models.ogl_mix import mix_slavc

SLAVC_MOMENTUM = 0.999  # SLAVC's published --m_img / --m_aud
SHORT_RUN_MOMENTUM = 0.99  # EMA horizon of ~100 steps, for the sizes trained a few hundred steps on a CPU


@dataclass(frozen=True)
class SLAVCConfig:
    """SLAVC's training switches (the published values)."""

    image_dropout: float = 0.9
    """dropout on the image trunk's features before the projection heads"""


def slavc_scores(img: list[torch.Tensor], aud: list[torch.Tensor], tau: float) -> torch.Tensor:
    """``z_ij = log sum_hw softmax_j(S^1_ij(hw)) * softmax_hw(S^2_ij(hw))``: ``[Bi, Ba]``.

    ``img``: two heads ``[Bi, D, h, w]``; ``aud``: two heads ``[Ba, D]`` (unit vectors). Computed in the
    log domain (log-softmax + logsumexp), which equals the log of the product's sum without underflow.
    """
    log_p_av = (pairwise_maps(img[0], aud[0]).flatten(2) / tau).log_softmax(dim=1)
    log_p_loc = (pairwise_maps(img[1], aud[1]).flatten(2) / tau).log_softmax(dim=2)
    return torch.logsumexp(log_p_av + log_p_loc, dim=2)


def require_slavc_model(model: AVLocalizer) -> None:
    """Raise `ConfigError` unless ``model`` has SLAVC's two heads per modality and momentum encoders."""
    if model.cfg.heads != 2 or model.cfg.momentum is None:
        raise ConfigError(
            f"the slavc objective needs a model with two projection heads and momentum encoders; model "
            f"{model.cfg.name!r} has heads={model.cfg.heads}, momentum={model.cfg.momentum} "
            "(use a slavc_* size, e.g. slavc_resnet18)"
        )


class SLAVC(BaseObjective):
    """SLAVC's loss ``L1 + L2``."""

    name = "slavc"

    def __init__(self, cfg: SLAVCConfig | None = None):
        super().__init__()
        self.cfg = cfg or SLAVCConfig()

    def _heads(
        self, model: AVLocalizer, batch: Batch, inputs: AudioInputs, momentum: bool
    ) -> tuple[list[torch.Tensor], list[torch.Tensor], list[torch.Tensor]]:
        """Image heads ``[B, D, h, w]``, audio heads ``[B, D]`` and negative-clip heads ``[K, D]`` of the online or
        momentum encoders."""
        img = model.image_heads(batch.images, momentum=momentum, dropout=self.cfg.image_dropout)
        aud, neg = embed_audio(model, inputs, lambda specs: model.audio_heads(specs, momentum=momentum))
        pairs = [gather_pairs(batch, i, a) for i, a in zip(img, aud, strict=True)]
        return [i for i, _ in pairs], [a for _, a in pairs], neg

    def contrast(
        self, model: AVLocalizer, batch: Batch, negatives: torch.Tensor | None = None, negative_columns: bool = True
    ) -> Contrast:
        require_slavc_model(model)
        if model.training:
            model.update_momentum()  # before the targets are computed, as the published code does
        inputs = audio_inputs(model, batch, negatives)
        img, aud, neg = self._heads(model, batch, inputs, momentum=False)
        with torch.no_grad():
            img_m, aud_m, neg_m = self._heads(model, batch, inputs, momentum=True)
        tau = model.cfg.tau
        targets = [audio_columns(a, n, negative_columns) for a, n in zip(aud_m, neg_m, strict=True)]
        online_image = diagonal_ce(slavc_scores(img, targets, tau))
        online = [audio_columns(a, n, negative_columns) for a, n in zip(aud, neg, strict=True)]
        online_audio = diagonal_ce(slavc_scores(img_m, online, tau))
        loss = online_image + online_audio
        joined_img = join_heads(img)
        losses = {
            "loss": loss,
            "slavc_loss": loss.detach(),
            "slavc_online_image_loss": online_image.detach(),
            "slavc_online_audio_loss": online_audio.detach(),
        }
        return Contrast(losses, paired_maps(joined_img, join_heads(aud)), pairwise_maps(joined_img, join_heads(neg)))


def slavc_architecture(cfg: ModelConfig) -> ModelConfig:
    """Two projection heads per modality and momentum encoders: m = 0.999 (published) for ``resnet18``, 0.99 for
    the CPU sizes, whose runs of a few hundred steps would leave 0.999-momentum encoders (which draw the maps at
    inference) near their initialisation."""
    return replace(cfg, heads=2, momentum=SLAVC_MOMENTUM if cfg.name == "resnet18" else SHORT_RUN_MOMENTUM)


METHOD = Method(
    "slavc",
    objective=SLAVC,
    config=SLAVCConfig,
    architecture=slavc_architecture,
    ogl=(mix_slavc, 0.9),
    # Two heads per modality (img_proj1/2, aud_proj1/2) and momentum copies (momentum_*); vssl's maps of a
    # converted model come from the momentum encoders, as SLAVC's published evaluation (--use_mom_eval).
    formats=(CheckpointFormat("slavc", "SLAVC (NeurIPS 2022)", "model", "slavc_resnet18"),),
)
