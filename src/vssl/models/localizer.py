"""The EZ-VSL-family audio-visual localizer (SPEC §3).

image  [B, 3, S, S] -> trunk -> 1x1 conv ``img_proj`` -> L2 over channels -> [B, D, h, w]
audio  [B, 1, 257, 200] -> trunk (1-channel input) -> global max -> ``aud_proj`` -> L2 -> [B, D]
map    cosine between the audio vector and every spatial image vector -> [B, h, w]

The trunks are ResNets by default, or any registered kind (`vssl.models.encoders.TRUNKS`, e.g. a timm model).

Submodule names (``imgnet``, ``img_proj``, ``audnet``, ``aud_proj``) are the official checkpoint's,
so official EZ-VSL/FNAC weights load key for key. Two variants cover the other published methods:

* ``heads=2`` (SLAVC): two projection heads per modality, ``img_proj1/2`` and ``aud_proj1/2``; the map is
  the mean of the heads' cosine maps. ``heads=0`` (LVS): no projection, the trunks' features are the
  embeddings.
* ``momentum=m`` (SLAVC): exponential-moving-average copies of both encoders (``momentum_imgnet``,
  ``momentum_img_proj1`` ..., SLAVC's key names) that training updates with `update_momentum` and
  that, as in SLAVC's published evaluation, give the maps in eval mode.

The model carries its preprocessing config, so inference cannot drift from training.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from vssl.audio import AudioConfig, spectrogram
from vssl.errors import ConfigError
from vssl.maps import join_heads, paired_maps
from vssl.models.encoders import BackboneConfig, check_trunk, create_trunk
from vssl.vision import ImageConfig

MOMENTUM_PREFIX = "momentum_"


@dataclass(frozen=True)
class ModelConfig:
    """Architecture and the preprocessing it was trained with."""

    name: str = "resnet18"
    """registry size this config came from (informative)"""
    image_backbone: BackboneConfig = field(default_factory=BackboneConfig)
    audio_backbone: BackboneConfig = field(default_factory=BackboneConfig)
    embed_dim: int = 512
    """dimension of the shared embedding space (with heads=0: the trunks' width)"""
    tau: float = 0.03
    """temperature of the contrastive logits (cosine / tau)"""
    heads: int = 1
    """projection heads per modality: 1 (EZ-VSL, FNAC), 2 (SLAVC), 0 (none, LVS)"""
    momentum: float | None = None
    """EMA coefficient of momentum copies of both encoders (SLAVC 0.999); None: none"""
    image: ImageConfig = field(default_factory=ImageConfig)
    audio: AudioConfig = field(default_factory=AudioConfig)

    def __post_init__(self) -> None:
        check_trunk(self.image_backbone, "image_backbone")
        check_trunk(self.audio_backbone, "audio_backbone")


def projection_names(kind: str, heads: int) -> list[str]:
    """Submodule names of the projection heads: ``img_proj`` (1 head), ``img_proj1``, ``img_proj2`` (2), none (0)."""
    return [kind] if heads == 1 else [f"{kind}{k + 1}" for k in range(heads)]


def _validate(cfg: ModelConfig) -> None:
    if cfg.heads < 0:
        raise ConfigError(f"model {cfg.name!r}: heads must be >= 0, got {cfg.heads}")
    if cfg.heads == 0 and not (cfg.embed_dim == cfg.image_backbone.out_channels == cfg.audio_backbone.out_channels):
        raise ConfigError(
            f"model {cfg.name!r}: without projection heads the image and audio trunks must both be "
            f"embed_dim={cfg.embed_dim} wide (got {cfg.image_backbone.out_channels} and "
            f"{cfg.audio_backbone.out_channels})"
        )
    if cfg.momentum is not None and not 0.0 <= cfg.momentum < 1.0:
        raise ConfigError(f"model {cfg.name!r}: momentum must be in [0, 1), got {cfg.momentum}")


class AVLocalizer(nn.Module):
    """Image and audio encoders whose cosine similarity map localizes the sound."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        _validate(cfg)
        self.cfg = cfg
        branches = ("", MOMENTUM_PREFIX) if cfg.momentum is not None else ("",)
        for prefix in branches:
            self._build_branch(prefix)
        if cfg.momentum is not None:
            for online, copy in self._branch_pairs():
                copy.load_state_dict(online.state_dict())
                copy.requires_grad_(False)  # updated by `update_momentum`, never by the optimiser

    def _build_branch(self, prefix: str) -> None:
        cfg = self.cfg
        self.add_module(prefix + "imgnet", create_trunk(cfg.image_backbone, in_channels=3, key="image_backbone"))
        for name in projection_names("img_proj", cfg.heads):
            self.add_module(prefix + name, nn.Conv2d(cfg.image_backbone.out_channels, cfg.embed_dim, kernel_size=1))
        self.add_module(prefix + "audnet", create_trunk(cfg.audio_backbone, in_channels=1, key="audio_backbone"))
        for name in projection_names("aud_proj", cfg.heads):
            self.add_module(prefix + name, nn.Linear(cfg.audio_backbone.out_channels, cfg.embed_dim))

    def _branch_pairs(self) -> list[tuple[nn.Module, nn.Module]]:
        """(online, momentum) submodule pairs."""
        names = ["imgnet", "audnet", *projection_names("img_proj", self.cfg.heads)]
        names += projection_names("aud_proj", self.cfg.heads)
        return [(getattr(self, n), getattr(self, MOMENTUM_PREFIX + n)) for n in names]

    @torch.no_grad()
    def update_momentum(self) -> None:
        """One EMA step of the momentum encoders' parameters: ``p_m <- m * p_m + (1 - m) * p``."""
        if self.cfg.momentum is None:
            raise ConfigError(f"model {self.cfg.name!r} has no momentum encoders")
        for online, copy in self._branch_pairs():
            for p, p_m in zip(online.parameters(), copy.parameters(), strict=True):
                p_m.lerp_(p, 1.0 - self.cfg.momentum)

    def _use_momentum(self, momentum: bool | None) -> bool:
        """``None``: the momentum encoders in eval mode when the model has them (SLAVC's evaluation), else online."""
        if momentum is None:
            return self.cfg.momentum is not None and not self.training
        if momentum and self.cfg.momentum is None:
            raise ConfigError(f"model {self.cfg.name!r} has no momentum encoders")
        return momentum

    def spectrogram(self, waves: torch.Tensor) -> torch.Tensor:
        """``[B, 48000]`` 16 kHz windows -> ``[B, 1, 257, 200]`` log-spectrograms, on the waves' device."""
        return spectrogram(waves, self.cfg.audio)

    def image_heads(
        self, images: torch.Tensor, momentum: bool | None = False, dropout: float = 0.0
    ) -> list[torch.Tensor]:
        """``[B, 3, S, S]`` normalised images -> one ``[B, D, h, w]`` of unit vectors per head.

        ``dropout`` is applied to the trunk's features in training mode (SLAVC and FNAC train with 0.9).
        """
        prefix = MOMENTUM_PREFIX if self._use_momentum(momentum) else ""
        features = F.dropout(getattr(self, prefix + "imgnet")(images), dropout, training=self.training)
        names = projection_names("img_proj", self.cfg.heads)
        projected = [getattr(self, prefix + n)(features) for n in names] if names else [features]
        return [F.normalize(x, dim=1) for x in projected]

    def audio_heads(self, specs: torch.Tensor, momentum: bool | None = False) -> list[torch.Tensor]:
        """``[B, 1, 257, 200]`` log-spectrograms -> one ``[B, D]`` of unit vectors per head."""
        prefix = MOMENTUM_PREFIX if self._use_momentum(momentum) else ""
        pooled = torch.amax(getattr(self, prefix + "audnet")(specs), dim=(2, 3))
        names = projection_names("aud_proj", self.cfg.heads)
        projected = [getattr(self, prefix + n)(pooled) for n in names] if names else [pooled]
        return [F.normalize(x, dim=1) for x in projected]

    def encode_image(self, images: torch.Tensor, dropout: float = 0.0) -> torch.Tensor:
        """``[B, 3, S, S]`` normalised images -> ``[B, K*D, h, w]`` unit vectors (K heads joined, see `join_heads`)."""
        return join_heads(self.image_heads(images, momentum=None, dropout=dropout))

    def encode_audio(self, specs: torch.Tensor) -> torch.Tensor:
        """``[B, 1, 257, 200]`` log-spectrograms -> ``[B, K*D]`` unit vectors."""
        return join_heads(self.audio_heads(specs, momentum=None))

    def encode_waveform(self, waves: torch.Tensor) -> torch.Tensor:
        """``[B, 48000]`` -> ``[B, K*D]``."""
        return self.encode_audio(self.spectrogram(waves))

    def forward(self, images: torch.Tensor, waves: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Embeddings of a batch: ``([B, K*D, h, w], [B, K*D])``."""
        return self.encode_image(images), self.encode_waveform(waves)

    @torch.no_grad()
    def localize(self, images: torch.Tensor, waves: torch.Tensor) -> torch.Tensor:
        """Cosine maps ``[B, h, w]`` of each image with its own audio (inference: no gradients)."""
        return paired_maps(*self(images, waves))
