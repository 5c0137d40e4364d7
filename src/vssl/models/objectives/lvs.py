"""LVS: hard negatives from the image's own background, via a differentiable trimap (SPEC §3).

``A = <v_i(hw), a_j>`` is the cosine map (LVS models have no projection heads and 14x14 maps, e.g.
registry size ``lvs_resnet18``). A soft trimap splits each map into

* positive region ``P = sigmoid((A - 0.65) / 0.03)`` and
* negative region ``N = 1 - sigmoid((A - 0.4) / 0.03)`` (the band between them is ignored).

The score of image i with audio j is the P-weighted mean of A over the map; the hard negative of image
i is the N-weighted mean of its own map (its background). Logits ``[pos, other audios, background] / 0.07``,
cross-entropy to the positive (image->audio only). Unlike the published code, which multiplies the
own-audio entry of the "other audios" by -99 (a large *positive* logit when that score is negative),
the positive is counted once. Negative clips (SSL-SaN) are further "other audios".
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch

from vssl.audio import AudioConfig
from vssl.maps import paired_maps, pairwise_maps
from vssl.models.checkpoint_formats import LVS_RENAMED, LVS_UNUSED, LVS_UNUSED_REASON, CheckpointFormat
from vssl.models.localizer import AVLocalizer, ModelConfig
from vssl.models.method import Method
from vssl.models.objectives.base import BaseObjective, Batch, Contrast, audio_columns, diagonal_ce, encode_pairs


@dataclass(frozen=True)
class LVSConfig:
    """LVS's trimap and temperature (the published values)."""

    positive_threshold: float = 0.65
    """epsilon_p: cosine above which a location is positive"""
    negative_threshold: float = 0.4
    """epsilon_n: cosine below which a location of the own map is background"""
    trimap_temperature: float = 0.03
    """sharpness of the sigmoid thresholds"""
    logit_temperature: float = 0.07
    """logits = scores / this"""
    hard_negatives: bool = True
    """add the own map's background as a negative (the method's point)"""


def weighted_mean(maps: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Mean of ``maps [..., h, w]`` weighted by ``weights`` (same shape) over the locations -> ``[...]``."""
    total = weights.flatten(-2).sum(dim=-1).clamp(min=torch.finfo(weights.dtype).tiny)
    return (weights * maps).flatten(-2).sum(dim=-1) / total


class LVS(BaseObjective):
    """LVS's trimap contrast with background hard negatives."""

    name = "lvs"

    def __init__(self, cfg: LVSConfig | None = None):
        super().__init__()
        self.cfg = cfg or LVSConfig()

    def contrast(
        self, model: AVLocalizer, batch: Batch, negatives: torch.Tensor | None = None, negative_columns: bool = True
    ) -> Contrast:
        cfg = self.cfg
        img, aud, neg = encode_pairs(model, batch, negatives)
        maps = pairwise_maps(img, audio_columns(aud, neg, negative_columns))  # [B, B (+ K), h, w]
        positive = torch.sigmoid((maps - cfg.positive_threshold) / cfg.trimap_temperature)
        columns = [weighted_mean(maps, positive)]  # [B, B (+ K)]; column i of row i is the positive
        own = paired_maps(img, aud)  # [B, h, w]
        if cfg.hard_negatives:
            background = 1.0 - torch.sigmoid((own - cfg.negative_threshold) / cfg.trimap_temperature)
            columns.append(weighted_mean(own, background)[:, None])
        loss = diagonal_ce(torch.cat(columns, dim=1) / cfg.logit_temperature)
        return Contrast({"loss": loss, "lvs_loss": loss.detach()}, own, pairwise_maps(img, neg))


def lvs_architecture(cfg: ModelConfig) -> ModelConfig:
    """No projection heads and a stride-1 last image layer, so maps are twice as fine (14x14 from ResNet-18 at 224),
    as LVS and its descendants (SSL-Align, SSL-TIE); the audio trunk's last layer is made as wide as the image's."""
    image = replace(cfg.image_backbone, last_stride=1)
    width = cfg.image_backbone.out_channels  # the stride leaves it unchanged
    audio = replace(cfg.audio_backbone, widths=(*cfg.audio_backbone.widths[:-1], width))
    return replace(cfg, image_backbone=image, audio_backbone=audio, embed_dim=width, heads=0)


def lvs_official_architecture(cfg: ModelConfig) -> ModelConfig:
    """`lvs_architecture` whose audio trunk's last layer also has stride 1. The published LVS code builds both
    trunks from one ResNet class whose layer4 has stride 1; on a spectrogram that changes the max-pooled audio
    vector, so official LVS / SSL-Align checkpoints (``vssl convert``) need it (size ``lvs_official_resnet18``)."""
    lvs = lvs_architecture(cfg)
    return replace(lvs, audio_backbone=replace(lvs.audio_backbone, last_stride=1))


METHOD = Method(
    "lvs",
    objective=LVS,
    config=LVSConfig,
    architecture=lvs_architecture,
    formats=(
        CheckpointFormat(
            "lvs",
            "LVS (CVPR 2021)",
            "model_state_dict",
            "lvs_official_resnet18",
            renamed=LVS_RENAMED,
            unused=LVS_UNUSED,
            unused_reason=LVS_UNUSED_REASON,
            audio=AudioConfig(duration=10.0),
            audio_reason=(
                "LVS's test.py (datasets/dataloader.py): the first 10 s of the clip (tiled if shorter; vssl takes "
                "the central 10 s, the same for clips of 10 s or less), scipy spectrogram nperseg 512, "
                "noverlap 274, log(S + 1e-7) / 12"
            ),
        ),
    ),
)
