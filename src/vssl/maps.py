"""The map layer: localization maps from embeddings, their geometry at the evaluation resolution, their scale.

At the bottom of the import graph, beside the audio and image front ends (``vssl.audio``, ``vssl.vision``): the
models compute maps with it, and the evaluation, OGL, inference and rendering read them with it.

* computation: `paired_maps` (image i with audio i), `pairwise_maps` (every image with every audio), `join_heads`
  (several projection heads as one embedding whose cosine is the mean of the heads' cosines);
* geometry: maps are compared at ``EVAL_SIZE`` x ``EVAL_SIZE`` after `upsample` (bilinear, align_corners=True,
  as the reference test code); `peak` is a map's maximum there, `minmax` the per-map normalisation;
* scale: a map is a cosine in [-1, 1], or on the EZ-VSL family's absolute scale (cos+1)/2 in [0, 1]
  (`MapScale`); every conversion goes through `MapScale.convert`.
"""

from __future__ import annotations

import math
from enum import Enum

import torch
import torch.nn.functional as F

from vssl.errors import ConfigError

EVAL_SIZE = 224
"""Side of the square at which maps are compared with ground truth and thresholds."""


class MapScale(Enum):
    """The absolute scale of a map: ``cosine`` in [-1, 1] (LVS family) or ``unit`` = (cos+1)/2 in [0, 1]
    (EZ-VSL family, the ICASSP'25 code). ``label`` is the name reports print."""

    COSINE = "cosine"
    UNIT = "unit"

    @property
    def label(self) -> str:
        return "(cos+1)/2" if self is MapScale.UNIT else "cosine"

    @classmethod
    def of(cls, name: str | MapScale) -> MapScale:
        """The scale named ``name``: ``cosine``, ``unit`` or its label ``(cos+1)/2`` (as release configs store it)."""
        if isinstance(name, MapScale):
            return name
        for scale in cls:
            if name in (scale.value, scale.label):
                return scale
        raise ConfigError(f"map scale {name!r} unknown; choose one of {[s.value for s in cls]} ('unit' = (cos+1)/2)")

    def convert(self, maps: torch.Tensor, to: MapScale | str) -> torch.Tensor:
        """``maps`` on this scale -> on scale ``to`` (the same tensor when the scales agree)."""
        to = MapScale.of(to)
        if to is self:
            return maps
        return (maps + 1.0) / 2.0 if to is MapScale.UNIT else 2.0 * maps - 1.0


SCALE_NAMES = tuple(s.value for s in MapScale)


def to_unit_scale(cosine: torch.Tensor) -> torch.Tensor:
    """Cosine in [-1, 1] -> (cos + 1) / 2 in [0, 1], the EZ-VSL family's absolute scale."""
    return MapScale.COSINE.convert(cosine, MapScale.UNIT)


def join_heads(heads: list[torch.Tensor]) -> torch.Tensor:
    """K unit-vector heads ``[B, D, ...]`` -> one unit vector ``[B, K*D, ...]``: their concatenation / sqrt(K).

    The cosine of two joined embeddings is the mean of the heads' cosines, so the map of a two-head
    model (SLAVC: mean of the heads' maps) is an ordinary cosine map and every consumer of embeddings
    (maps, retrieval, thresholds) works unchanged. One head is returned as it is.
    """
    if len(heads) == 1:
        return heads[0]
    return torch.cat(heads, dim=1) / math.sqrt(len(heads))


def paired_maps(img: torch.Tensor, aud: torch.Tensor) -> torch.Tensor:
    """Cosine of image i with audio i: ``[B, D, h, w], [B, D] -> [B, h, w]``."""
    return torch.einsum("bdhw,bd->bhw", img, aud)


def pairwise_maps(img: torch.Tensor, aud: torch.Tensor) -> torch.Tensor:
    """Cosine of every image with every audio: ``[Bi, D, h, w], [Ba, D] -> [Bi, Ba, h, w]``."""
    return torch.einsum("idhw,ad->iahw", img, aud)


def upsample(maps: torch.Tensor, size: int = EVAL_SIZE) -> torch.Tensor:
    """``[N, h, w] -> [N, size, size]``, bilinear with align_corners=True (the reference test code)."""
    if not maps.is_floating_point():
        maps = maps.float()
    if maps.shape[-2:] == (size, size):
        return maps
    return F.interpolate(maps[:, None], size=(size, size), mode="bilinear", align_corners=True)[:, 0]


def peak(maps: torch.Tensor) -> torch.Tensor:
    """Per-map maximum at the evaluation resolution, ``[N, h, w] -> [N]`` (what a threshold compares with)."""
    return upsample(maps).flatten(1).amax(dim=1)


def minmax(maps: torch.Tensor) -> torch.Tensor:
    """Per-map min-max normalisation of ``[N, H, W]`` (a flat map is left unchanged, as the reference does)."""
    flat = maps.flatten(1)
    lo = flat.min(dim=1, keepdim=True).values
    span = flat.max(dim=1, keepdim=True).values - lo
    return torch.where(span > 0, (flat - lo) / span.clamp(min=torch.finfo(flat.dtype).tiny), flat).view_as(maps)
