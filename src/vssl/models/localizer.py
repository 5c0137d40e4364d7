"""The EZ-VSL-family audio-visual localizer (SPEC §3).

image  [B, 3, S, S] -> ResNet trunk -> 1x1 conv ``img_proj`` -> L2 over channels -> [B, D, h, w]
audio  [B, 1, 257, 200] -> ResNet trunk (1-channel conv1) -> global max -> ``aud_proj`` -> L2 -> [B, D]
map    cosine between the audio vector and every spatial image vector -> [B, h, w]

Submodule names (``imgnet``, ``img_proj``, ``audnet``, ``aud_proj``) are the official checkpoint's,
so official EZ-VSL/FNAC weights load key for key. The model carries its preprocessing config,
so inference cannot drift from training.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from vssl.audio import AudioConfig, log_spectrogram
from vssl.models.encoders import BackboneConfig, ResNetTrunk
from vssl.vision import ImageConfig


@dataclass(frozen=True)
class ModelConfig:
    """Architecture and the preprocessing it was trained with."""

    name: str = "resnet18"  # registry size this config came from (informative)
    image_backbone: BackboneConfig = field(default_factory=BackboneConfig)
    audio_backbone: BackboneConfig = field(default_factory=BackboneConfig)
    embed_dim: int = 512  # dimension of the shared embedding space
    tau: float = 0.03  # temperature of the contrastive logits (cosine / tau)
    image: ImageConfig = field(default_factory=ImageConfig)
    audio: AudioConfig = field(default_factory=AudioConfig)


class AVLocalizer(nn.Module):
    """Image and audio encoders whose cosine similarity map localizes the sound."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        self.imgnet = ResNetTrunk(cfg.image_backbone, in_channels=3)
        self.img_proj = nn.Conv2d(cfg.image_backbone.out_channels, cfg.embed_dim, kernel_size=1)
        self.audnet = ResNetTrunk(cfg.audio_backbone, in_channels=1)
        self.aud_proj = nn.Linear(cfg.audio_backbone.out_channels, cfg.embed_dim)

    def spectrogram(self, waves: torch.Tensor) -> torch.Tensor:
        """``[B, 48000]`` 16 kHz windows -> ``[B, 1, 257, 200]`` log-spectrograms, on the waves' device."""
        return log_spectrogram(waves, self.cfg.audio)

    def encode_image(self, images: torch.Tensor) -> torch.Tensor:
        """``[B, 3, S, S]`` normalised images -> ``[B, D, h, w]`` unit vectors."""
        return F.normalize(self.img_proj(self.imgnet(images)), dim=1)

    def encode_audio(self, specs: torch.Tensor) -> torch.Tensor:
        """``[B, 1, 257, 200]`` log-spectrograms -> ``[B, D]`` unit vectors."""
        pooled = torch.amax(self.audnet(specs), dim=(2, 3))
        return F.normalize(self.aud_proj(pooled), dim=1)

    def encode_waveform(self, waves: torch.Tensor) -> torch.Tensor:
        """``[B, 48000]`` -> ``[B, D]``."""
        return self.encode_audio(self.spectrogram(waves))

    def forward(self, images: torch.Tensor, waves: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Embeddings of a batch: ``([B, D, h, w], [B, D])``."""
        return self.encode_image(images), self.encode_waveform(waves)

    @torch.no_grad()
    def localize(self, images: torch.Tensor, waves: torch.Tensor) -> torch.Tensor:
        """Cosine maps ``[B, h, w]`` of each image with its own audio (inference: no gradients)."""
        return paired_maps(*self(images, waves))


def paired_maps(img: torch.Tensor, aud: torch.Tensor) -> torch.Tensor:
    """Cosine of image i with audio i: ``[B, D, h, w], [B, D] -> [B, h, w]``."""
    return torch.einsum("bdhw,bd->bhw", img, aud)


def pairwise_maps(img: torch.Tensor, aud: torch.Tensor) -> torch.Tensor:
    """Cosine of every image with every audio: ``[Bi, D, h, w], [Ba, D] -> [Bi, Ba, h, w]``."""
    return torch.einsum("idhw,ad->iahw", img, aud)
