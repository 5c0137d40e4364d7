"""OGL, object-guided localization: a test-time prior from a frozen ImageNet classifier (SPEC §3).

EZ-VSL, FNAC and SLAVC report their maps with and without OGL (always report both). The prior is the
channel mean of ``|layer4|`` of an ImageNet ResNet-18, ``[B, 7, 7]`` at 224x224: where "some object" is,
whatever the sound. It is mixed with the audio-visual map by one of two published rules (`vssl.models.ogl_mix`;
each method names its own in its `vssl.models.method.Method` record):

* `mix_ezvsl` (EZ-VSL, FNAC): ``minmax(alpha * minmax(AV) + (1 - alpha) * minmax(OBJ))``, alpha = 0.4;
  a relative map in [0, 1] (every map spans it), for the ``median`` protocol.
* `mix_slavc` (SLAVC): ``alpha * (cos + 1) / 2 + (1 - alpha) * OBJ / 2.5``, alpha = 0.9, on fixed scales
  (the cosine's range and 2.5 for the prior), so the result keeps an absolute level: a flat, low AV map
  stays low, which SLAVC's confidence (top-25 % mean) and any universal threshold rely on.

Maps are ``[B, h, w]``. When the AV map and the prior have the same resolution they are mixed there; when
they differ (LVS-style 14x14 maps against the 7x7 prior) or ``size`` is given, both are first upsampled to
``size`` (224 by default) with bilinear interpolation, align_corners=True, as the reference test code and
vssl's metrics do. The reference code always mixes at 224 (EZ-VSL bilinear, SLAVC bicubic); the linear
SLAVC rule commutes with bilinear upsampling, min-max (EZ-VSL rule) nearly does, so pass ``size=224``
to reproduce it to the last digit.

The prior's weights come from torchvision's weight API (``ResNet18_Weights.IMAGENET1K_V1``, downloaded
once into torch's cache) or, offline, from a local file or state dict of a torchvision ``resnet18``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import torch
from torch import nn

from vssl.errors import VsslError
from vssl.models.encoders import BackboneConfig, ResNetTrunk
from vssl.models.objectives import METHODS
from vssl.models.ogl_mix import OBJ_SCALE, MixRule, common_resolution, mix_ezvsl, mix_raw, mix_slavc
from vssl.models.torch_files import load_torch_file

__all__ = [
    "IMAGENET",
    "MIX_RULES",
    "OBJ_SCALE",
    "MixRule",
    "ObjectPrior",
    "WeightsSource",
    "common_resolution",
    "mix_ezvsl",
    "mix_raw",
    "mix_slavc",
    "object_guided",
    "resnet18_state",
]

IMAGENET = "imagenet"
WeightsSource = str | Path | Mapping[str, torch.Tensor]


def imagenet_resnet18_state() -> dict[str, torch.Tensor]:
    """torchvision's ImageNet ResNet-18 weights (``IMAGENET1K_V1``; downloaded on first use into torch's cache)."""
    from torchvision.models import ResNet18_Weights, resnet18

    return resnet18(weights=ResNet18_Weights.IMAGENET1K_V1).state_dict()


def resnet18_state(source: WeightsSource = IMAGENET) -> dict[str, torch.Tensor]:
    """The state dict of a torchvision ``resnet18`` from ``"imagenet"``, a file, or a mapping (used as is).

    A file is read with ``torch.load(weights_only=True)``: a bare state dict, as torchvision saves it.
    """
    if isinstance(source, Mapping):
        return dict(source)
    if isinstance(source, str) and source == IMAGENET:
        return imagenet_resnet18_state()
    path = Path(source)
    if not path.is_file():
        raise VsslError(f"{path}: ResNet-18 weights not found (give a torchvision resnet18 state dict file)")
    state = load_torch_file(path)
    if not isinstance(state, Mapping) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise VsslError(f"{path}: not a state dict of tensors (expected torchvision resnet18 weights)")
    return dict(state)


class ObjectPrior(nn.Module):
    """Frozen ResNet-18 objectness: ``[B, 3, S, S]`` ImageNet-normalised images -> ``[B, S/32, S/32]`` >= 0.

    Takes the same normalised images as the EZ-VSL family's image encoder (224x224 -> 7x7). Always in
    eval mode (BatchNorm on its ImageNet statistics), never trained.
    """

    def __init__(self, weights: WeightsSource = IMAGENET):
        super().__init__()
        self.trunk = ResNetTrunk(BackboneConfig())
        state = {k: v for k, v in resnet18_state(weights).items() if not k.startswith("fc.")}  # classifier unused
        try:
            self.trunk.load_state_dict(state, strict=True)
        except RuntimeError as exc:
            raise VsslError(f"the object prior needs torchvision resnet18 weights: {exc}") from exc
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> ObjectPrior:
        return super().train(False)  # frozen: ImageNet statistics whatever the caller's mode

    @torch.no_grad()
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """``[B, 3, S, S]`` -> ``[B, S/32, S/32]``: mean over the 512 channels of ``|layer4|``."""
        return self.trunk(images).abs().mean(dim=1)


OTHER_RULES: dict[str, tuple[MixRule, float]] = {"icassp25": (mix_raw, 0.4)}
"""Rules of code vssl evaluates with but does not train: the ICASSP'25 code's raw 0.4/0.6 mix."""


def mix_rules() -> dict[str, tuple[MixRule, float]]:
    """The published rule and alpha of every registered method (its `Method.ogl`), then `OTHER_RULES`."""
    return {**{name: method.ogl for name, method in METHODS.items() if method.ogl is not None}, **OTHER_RULES}


MIX_RULES = mix_rules()
"""`mix_rules` of the methods registered in vssl (the CLI's ``--ogl-method`` choices)."""


def object_guided(method: str, av_cos: torch.Tensor, obj: torch.Tensor, size: int | None = None) -> torch.Tensor:
    """``av_cos [B, h, w]`` (raw cosine) mixed with the prior ``obj`` by ``method``'s published rule and alpha."""
    rules = mix_rules()
    if method not in rules:
        raise VsslError(f"no published OGL rule for {method!r}; known: {', '.join(rules)}")
    rule, alpha = rules[method]
    return rule(av_cos, obj, alpha=alpha, size=size)
