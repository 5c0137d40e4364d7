"""Trunks for images and spectrograms: ``[B, C_in, H, W] -> [B, C, h, w]``, from a small registry of kinds.

* ``resnet`` (the default): `ResNetTrunk`, named exactly like torchvision's ResNet. Parameter names (``conv1``,
  ``bn1``, ``layer1.0.conv1`` ... ``layer4.1.downsample.1``) match torchvision's ``resnet18`` so that ImageNet
  weights and the official EZ-VSL checkpoints load key for key; smaller widths/depths give the tiny models used
  by the demo and the tests.
* ``timm``: any timm model with ``features_only=True`` (`vssl.models.timm_trunk`; the optional extra
  ``vssl[timm]``), e.g. ``BackboneConfig(kind="timm", model="convnext_atto")``.

A kind is one `register_trunk` entry: a function ``(BackboneConfig, in_channels) -> module`` whose module has an
``out_channels`` attribute. `BackboneConfig` is recorded in a release's ``config.json``, so ``load_model``
rebuilds the same trunk.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

import torch
from torch import nn
from torchvision.models.resnet import BasicBlock

from vssl.errors import ConfigError
from vssl.models.timm_trunk import TimmTrunk

RESNET = "resnet"


@dataclass(frozen=True)
class BackboneConfig:
    """Which trunk, and its shape. ``widths``, ``blocks``, ``stem_width`` and ``norm`` shape a ``resnet`` trunk;
    ``model`` and ``out_index`` name a ``timm`` one; ``last_stride`` applies to both."""

    widths: tuple[int, ...] = (64, 128, 256, 512)
    """channels of layer1..layerN"""
    blocks: tuple[int, ...] = (2, 2, 2, 2)
    """BasicBlocks per layer (2,2,2,2 = ResNet-18)"""
    stem_width: int = 64
    """channels of conv1"""
    last_stride: int = 2
    """stride of the last layer (1 gives LVS-style 14x14 maps at 224; timm: output stride / 2)"""
    norm: str = "batch"
    """"batch" (torchvision/official checkpoints) or "group" (GroupNorm, 8 groups); resnet only"""
    kind: str = RESNET
    """trunk registry entry: resnet (torchvision-named ResNet) or timm (pip install 'vssl[timm]')"""
    model: str = ""
    """kind=timm: the timm model name, e.g. convnext_atto, resnet18d, efficientnet_b0"""
    out_index: int = -1
    """kind=timm: the feature level returned (timm's out_indices; -1 = the last, stride 32)"""

    @property
    def out_channels(self) -> int:
        """Channels of the trunk's output (resnet: ``widths[-1]``; other kinds: read off the built trunk)."""
        return self.widths[-1] if self.kind == RESNET else trunk_channels(self)


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
        self.out_channels = cfg.widths[-1]
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


TrunkBuilder = Callable[[BackboneConfig, int], nn.Module]
"""``(cfg, in_channels) -> module``: ``[B, in_channels, H, W] -> [B, out_channels, h, w]``, ``out_channels`` an
attribute of the module."""


TrunkCheck = Callable[[BackboneConfig, str], None]
"""``(cfg, key)``: raises `ConfigError` naming ``key`` for options the kind cannot build."""


@dataclass(frozen=True)
class TrunkKind:
    """A registered kind of trunk."""

    build: TrunkBuilder
    extra: str | None = None
    """The package it needs, installed by ``pip install 'vssl[EXTRA]'`` (checked before building)."""
    check: TrunkCheck | None = None
    """Checks of its options, run whenever a `ModelConfig` is made."""


TRUNKS: dict[str, TrunkKind] = {}


def register_trunk(
    kind: str, extra: str | None = None, check: TrunkCheck | None = None
) -> Callable[[TrunkBuilder], TrunkBuilder]:
    """Decorator: ``@register_trunk("mykind")`` on a `TrunkBuilder` makes ``BackboneConfig(kind="mykind")`` build it."""

    def add(build: TrunkBuilder) -> TrunkBuilder:
        TRUNKS[kind] = TrunkKind(build, extra, check)
        return build

    return add


def _check_resnet(cfg: BackboneConfig, key: str) -> None:
    if len(cfg.widths) != len(cfg.blocks) or not cfg.widths:
        raise ConfigError(f"{key}.widths {list(cfg.widths)} and {key}.blocks {list(cfg.blocks)}: one entry per layer")
    if cfg.norm not in ("batch", "group"):
        raise ConfigError(f"{key}.norm={cfg.norm!r}: choose batch or group")


@register_trunk(RESNET, check=_check_resnet)
def _resnet(cfg: BackboneConfig, in_channels: int) -> nn.Module:
    return ResNetTrunk(cfg, in_channels)


def _check_timm(cfg: BackboneConfig, key: str) -> None:
    if not cfg.model:
        raise ConfigError(f"{key}.model: name the timm model of a kind=timm trunk, e.g. convnext_atto")
    if cfg.norm != "batch":
        raise ConfigError(f"{key}.norm={cfg.norm!r}: a timm trunk keeps its model's own normalisation layers")


@register_trunk("timm", extra="timm", check=_check_timm)
def _timm(cfg: BackboneConfig, in_channels: int) -> nn.Module:
    return TimmTrunk(cfg.model, in_channels, cfg.out_index, cfg.last_stride)


def check_trunk(cfg: BackboneConfig, key: str = "backbone") -> None:
    """`ConfigError` naming ``key`` (e.g. ``image_backbone``) if ``cfg`` names no registered trunk, a trunk whose
    package is not installed, or options its kind does not take."""
    kind = TRUNKS.get(cfg.kind)
    if kind is None:
        raise ConfigError(f"{key}.kind={cfg.kind!r}: unknown trunk; known: {', '.join(TRUNKS)}")
    if kind.check is not None:
        kind.check(cfg, key)
    if kind.extra is not None and importlib.util.find_spec(kind.extra) is None:
        raise ConfigError(
            f"{key}.kind={cfg.kind!r} needs the {kind.extra} package: pip install 'vssl[{kind.extra}]' "
            f"(or pip install {kind.extra})"
        )


def create_trunk(cfg: BackboneConfig, in_channels: int = 3, key: str = "backbone") -> nn.Module:
    """The trunk ``cfg`` describes, freshly initialised: ``[B, in_channels, H, W] -> [B, cfg.out_channels, h, w]``."""
    check_trunk(cfg, key)
    try:
        return TRUNKS[cfg.kind].build(cfg, in_channels)
    except ConfigError as exc:  # e.g. a timm model name timm does not know
        raise ConfigError(f"{key}: {exc}") from exc


@lru_cache(maxsize=64)
def trunk_channels(cfg: BackboneConfig) -> int:
    """``out_channels`` of the trunk ``cfg`` builds, without building it for real (meta device, no RNG drawn)."""
    with torch.device("meta"), torch.random.fork_rng(devices=[]):
        return create_trunk(cfg).out_channels
