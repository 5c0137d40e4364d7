"""Evaluation with OGL (object-guided localization): the same runs, maps mixed with an object prior.

The prior is computed once per image (a frozen ImageNet ResNet-18 at 224x224, ImageNet normalisation)
and mixed into every condition's map of that image by the method's published rule
(``vssl.models.ogl.object_guided``). Mixed maps are on a [0, 1] scale: the EZ-VSL/FNAC rule min-maxes
every map (silence included), so universal thresholds lose their meaning there, which the report shows;
the SLAVC rule keeps an absolute level.
"""

from __future__ import annotations

from dataclasses import replace

import torch
from tqdm import tqdm

from vssl.audio import AudioConfig
from vssl.data.dataset import AVDataset
from vssl.evaluation.maps import EvalMaps
from vssl.models.ogl import ObjectPrior, WeightsSource, object_guided
from vssl.vision import ImageConfig


@torch.no_grad()
def object_maps(
    weights: WeightsSource, run: EvalMaps, batch_size: int = 32, device: str = "cpu", progress: bool = False
) -> torch.Tensor:
    """The prior ``[N, 7, 7]`` of every image of ``run``."""
    prior = ObjectPrior(weights).to(device)
    dataset = AVDataset(run.items, ImageConfig(), AudioConfig(), train=False)
    out = []
    for start in tqdm(range(0, len(dataset), batch_size), disable=not progress, desc="ogl prior", unit="batch"):
        idx = range(start, min(start + batch_size, len(dataset)))
        out.append(prior(torch.stack([dataset.load_image(i) for i in idx]).to(device)).cpu())
    return torch.cat(out)


def with_ogl(run: EvalMaps, obj: torch.Tensor, method: str) -> EvalMaps:
    """``run`` with every map mixed with its image's prior (``[N, h, w]`` per condition, unit scale)."""
    maps = {"positive": object_guided(method, run.maps["positive"], obj)}
    for cond, owners in run.owners.items():
        maps[cond] = object_guided(method, run.maps[cond], obj[owners])
    return replace(run, maps=maps, similarity=None)
