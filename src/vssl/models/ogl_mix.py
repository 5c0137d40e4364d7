"""OGL's published mixing rules: an audio-visual map ``[B, h, w]`` and the object prior ``[B, h', w']`` -> one map.

A method names its rule and alpha in its `vssl.models.method.Method` record (``ogl=``); `vssl.models.ogl` holds
the prior and the table of every method's rule (see there for when to use which).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from vssl.maps import EVAL_SIZE, minmax, to_unit_scale, upsample

OBJ_SCALE = 2.5  # SLAVC's fixed upper end of the prior's range (its lower end is 0)
MixRule = Callable[..., torch.Tensor]
"""``rule(av, obj, alpha=..., size=None) -> [B, h, w]``."""


def common_resolution(
    av: torch.Tensor, obj: torch.Tensor, size: int | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """``av [B, h, w]`` and ``obj [B, h', w']`` at one resolution: as they are if equal (and ``size`` is None),
    else both upsampled to ``size`` x ``size`` (224 by default; bilinear, align_corners=True)."""
    if size is None and av.shape[-2:] == obj.shape[-2:]:
        return av, obj
    size = size or EVAL_SIZE
    return upsample(av, size), upsample(obj, size)


def mix_ezvsl(av: torch.Tensor, obj: torch.Tensor, alpha: float = 0.4, size: int | None = None) -> torch.Tensor:
    """EZ-VSL/FNAC rule: ``minmax(alpha * minmax(av) + (1 - alpha) * minmax(obj))`` -> ``[B, h, w]`` in [0, 1].

    ``av`` may be on any scale (cosine or cosine / tau: min-max removes it).
    """
    av, obj = common_resolution(av, obj, size)
    return minmax(alpha * minmax(av) + (1.0 - alpha) * minmax(obj))


def mix_slavc(av_cos: torch.Tensor, obj: torch.Tensor, alpha: float = 0.9, size: int | None = None) -> torch.Tensor:
    """SLAVC rule: ``alpha * (cos + 1) / 2 + (1 - alpha) * obj / 2.5`` -> ``[B, h, w]`` on a fixed scale.

    ``av_cos`` must be the raw cosine map in [-1, 1].
    """
    av_cos, obj = common_resolution(av_cos, obj, size)
    return alpha * to_unit_scale(av_cos) + (1.0 - alpha) * obj / OBJ_SCALE


def mix_raw(av_cos: torch.Tensor, obj: torch.Tensor, alpha: float = 0.4, size: int | None = None) -> torch.Tensor:
    """ICASSP'25 code's rule: ``alpha * av + (1 - alpha) * obj`` on the raw maps (cosine and prior, no min-max)."""
    av_cos, obj = common_resolution(av_cos, obj, size)
    return alpha * av_cos + (1.0 - alpha) * obj
