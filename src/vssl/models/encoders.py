"""ResNet trunks for images and spectrograms, named exactly like torchvision's ResNet.

Parameter names (``conv1``, ``bn1``, ``layer1.0.conv1`` ... ``layer4.1.downsample.1``) match
torchvision's ``resnet18`` so that ImageNet weights and the official EZ-VSL checkpoints load
key for key; smaller widths/depths give the tiny models used by the demo and the tests.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn
from torchvision.models.resnet import BasicBlock


@dataclass(frozen=True)
class BackboneConfig:
    """Shape of a ResNet trunk built from BasicBlocks."""

    widths: tuple[int, ...] = (64, 128, 256, 512)  # channels of layer1..layerN
    blocks: tuple[int, ...] = (2, 2, 2, 2)  # BasicBlocks per layer (2,2,2,2 = ResNet-18)
    stem_width: int = 64  # channels of conv1
    last_stride: int = 2  # stride of the last layer (1 gives LVS-style 14x14 maps at 224)
    norm: str = "batch"  # "batch" (torchvision/official checkpoints) or "group" (GroupNorm, 8 groups)

    @property
    def out_channels(self) -> int:
        return self.widths[-1]


NormLayer = Callable[[int], nn.Module]


def norm_layer(kind: str) -> NormLayer:
    """BatchNorm, or GroupNorm: the same computation in training and inference.

    BatchNorm normalises a training batch by its own statistics and an inference input by running
    averages. A constant input such as digital silence is an outlier in every batch; an encoder can
    learn to set it apart only relative to its batch, and lose that at inference. GroupNorm has no
    such gap (see also ``TrainConfig.freeze_audio_norm_at``).
    """
    if kind == "batch":
        return nn.BatchNorm2d
    if kind == "group":
        return lambda channels: nn.GroupNorm(min(8, channels), channels)
    raise ValueError(f"unknown norm {kind!r}; known: batch, group")


def _layer(in_ch: int, out_ch: int, blocks: int, stride: int, norm: NormLayer) -> nn.Sequential:
    downsample = None
    if stride != 1 or in_ch != out_ch:
        downsample = nn.Sequential(nn.Conv2d(in_ch, out_ch, kernel_size=1, stride=stride, bias=False), norm(out_ch))
    layers = [BasicBlock(in_ch, out_ch, stride=stride, downsample=downsample, norm_layer=norm)]
    layers += [BasicBlock(out_ch, out_ch, norm_layer=norm) for _ in range(blocks - 1)]
    return nn.Sequential(*layers)


class ResNetTrunk(nn.Module):
    """ResNet without avgpool/fc: ``[B, C_in, H, W] -> [B, widths[-1], H/32, W/32]`` (stride 32)."""

    def __init__(self, cfg: BackboneConfig, in_channels: int = 3):
        super().__init__()
        if len(cfg.widths) != len(cfg.blocks):
            raise ValueError(f"backbone widths {cfg.widths} and blocks {cfg.blocks} differ in length")
        self.conv1 = nn.Conv2d(in_channels, cfg.stem_width, kernel_size=7, stride=2, padding=3, bias=False)
        norm = norm_layer(cfg.norm)
        self.bn1 = norm(cfg.stem_width)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        in_ch = cfg.stem_width
        self.num_layers = len(cfg.widths)
        for i, (width, blocks) in enumerate(zip(cfg.widths, cfg.blocks, strict=True)):
            stride = 1 if i == 0 else (cfg.last_stride if i == self.num_layers - 1 else 2)
            setattr(self, f"layer{i + 1}", _layer(in_ch, width, blocks, stride, norm))
            in_ch = width
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        for i in range(self.num_layers):
            x = getattr(self, f"layer{i + 1}")(x)
        return x
