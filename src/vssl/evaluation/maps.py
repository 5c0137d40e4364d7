"""Run a model over a dataset under positive and negative audio and keep the cosine maps.

Each image is encoded once and compared with four audios: its own (positive), silence, white
noise (sigma = 1, clipped; one seeded draw per sample) and an offscreen clip (the audio of another
item of the same split whose class is not visible in this frame, chosen with a seeded generator).
The silence embedding is computed once per run.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from tqdm import tqdm

from vssl.data.dataset import AVDataset
from vssl.data.items import AVItem
from vssl.data.negatives import silence, white_noise
from vssl.errors import DatasetError
from vssl.models.localizer import AVLocalizer, paired_maps

CONDITIONS = ("positive", "silence", "noise", "offscreen")
NEGATIVES = CONDITIONS[1:]


@dataclass
class EvalMaps:
    """Cosine maps ``[N, h, w]`` per condition for ``items``; ``offscreen_source[i]`` is the borrowed clip's id."""

    items: list[AVItem]
    maps: dict[str, torch.Tensor]
    offscreen_source: list[str]
    seed: int


def offscreen_partners(items: list[AVItem], seed: int) -> list[int]:
    """For each item, the index of an item whose label is not among its visible classes (seeded choice)."""
    labels = np.array([item.label for item in items], dtype=object)
    partners = []
    for i, item in enumerate(items):
        visible = set(item.classes) | {item.label}
        candidates = np.flatnonzero([label not in visible for label in labels])
        if candidates.size == 0:
            raise DatasetError(f"item {item.id}: no other item has a class absent from its frame (offscreen negative)")
        rng = np.random.default_rng([seed, i])
        partners.append(int(candidates[rng.integers(candidates.size)]))
    return partners


def noise_for(index: int, num_samples: int, seed: int) -> torch.Tensor:
    """The evaluation noise of sample ``index``: white Gaussian, sigma = 1, clipped, ``[num_samples]``."""
    g = torch.Generator().manual_seed(seed * 1_000_003 + index)
    return white_noise(1, num_samples, g)[0]


@torch.no_grad()
def compute_maps(
    model: AVLocalizer,
    items: list[AVItem],
    batch_size: int = 32,
    device: str = "cpu",
    seed: int = 0,
    progress: bool = True,
) -> EvalMaps:
    """Maps of every item under the four conditions (model in eval mode, on ``device``)."""
    model = model.eval().to(device)
    dataset = AVDataset(items, model.cfg.image, model.cfg.audio, train=False)
    partners = offscreen_partners(items, seed)
    num_samples = model.cfg.audio.num_samples
    silence_emb = model.encode_waveform(silence(1, num_samples).to(device))
    out: dict[str, list[torch.Tensor]] = {c: [] for c in CONDITIONS}
    starts = range(0, len(items), batch_size)
    for start in tqdm(starts, disable=not progress, desc="evaluate", unit="batch"):
        idx = list(range(start, min(start + batch_size, len(items))))
        img = model.encode_image(torch.stack([dataset.load_image(i) for i in idx]).to(device))
        waves = {
            "positive": [dataset.load_wave(i) for i in idx],
            "noise": [noise_for(i, num_samples, seed) for i in idx],
            "offscreen": [dataset.load_wave(partners[i]) for i in idx],
        }
        for cond, clips in waves.items():
            aud = model.encode_waveform(torch.stack(clips).to(device))
            out[cond].append(paired_maps(img, aud).cpu())
        out["silence"].append(paired_maps(img, silence_emb.expand(len(idx), -1)).cpu())
    maps = {c: torch.cat(v) for c, v in out.items()}
    return EvalMaps(items=items, maps=maps, offscreen_source=[items[j].id for j in partners], seed=seed)
