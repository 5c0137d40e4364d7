"""Run a model over a dataset under positive and negative audio and keep the cosine maps.

Each image is encoded once and compared with: its own audio (positive), silence, white noise
(sigma = 1, clipped) and offscreen audio (the clip of another item whose class is not visible in this
frame). Negatives are drawn once per repeat with a recorded seed and pooled, as the reference does
over 10 seeds. Work shared across images is done once: every clip's audio embedding (positives and
offscreen partners alike), the silence embedding (once per run) and one noise clip per repeat. The
image-to-every-audio similarity matrix (retrieval) is filled from the same image features.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import ParamSpec, TypeVar

import numpy as np
import torch
from tqdm import tqdm

from vssl.audio import power_spectrogram
from vssl.data.dataset import AVDataset
from vssl.data.items import AVItem
from vssl.errors import ConfigError, DatasetError, MediaError
from vssl.evaluation.scoring import MapSet
from vssl.maps import paired_maps, pairwise_maps
from vssl.models.localizer import AVLocalizer
from vssl.negatives import silence, unseen_noise, white_noise

P = ParamSpec("P")
R = TypeVar("R")
CONDITIONS = ("positive", "silence", "noise", "offscreen")
NEGATIVES = CONDITIONS[1:]


@dataclass
class EvalMaps:
    """Cosine maps per condition: ``maps["positive"]`` ``[N, h, w]`` in item order; ``silence`` ``[N, h, w]``;
    ``noise`` and ``offscreen`` ``[R*N, h, w]`` repeat-major (map ``r*N + i`` belongs to item ``i``).
    ``similarity`` ``[N, N]``: max-pooled cosine of image i with audio j (retrieval). ``unseen``: maps under noise
    families no model trains on (`vssl.negatives.UNSEEN_FAMILIES`), ``[R*N, h, w]`` each, repeat-major;
    kept apart from the protocol's negatives (calibration, pIA)."""

    items: list[AVItem]
    maps: dict[str, torch.Tensor]
    owners: dict[str, torch.Tensor]
    offscreen_source: list[str]
    seeds: list[int]
    similarity: torch.Tensor | None = None
    unseen: dict[str, torch.Tensor] = field(default_factory=dict)

    def map_set(self) -> MapSet:
        negatives = {n: self.maps[n] for n in NEGATIVES}
        return MapSet(positive=self.maps["positive"], negatives=negatives, owners=dict(self.owners))


def offscreen_partners(items: list[AVItem], seed: int) -> list[int]:
    """For each item, the index of another item to borrow offscreen audio from (seeded choice).

    Rule: with class labels, a clip whose label is not among the frame's visible classes; without
    labels (Flickr, MS3, plain folders) any other clip of another image group — it may then share a
    class with the frame, which the report states (``offscreen_rule``).
    """
    labels = np.array([item.label for item in items], dtype=object)
    groups = np.array([item.group or item.id for item in items], dtype=object)
    partners = []
    for i, item in enumerate(items):
        if item.label is None:
            candidates = np.flatnonzero(groups != groups[i])
        else:
            visible = set(item.classes) | {item.label}
            candidates = np.flatnonzero([label not in visible for label in labels])
        if candidates.size == 0:
            raise DatasetError(f"item {item.id}: no other item has a class absent from its frame (offscreen negative)")
        rng = np.random.default_rng([seed, i])
        partners.append(int(candidates[rng.integers(candidates.size)]))
    return partners


def offscreen_rule(items: list[AVItem]) -> str:
    unlabeled = sum(item.label is None for item in items)
    if not unlabeled:
        return "a clip whose class is not visible in the frame"
    return f"{unlabeled} unlabeled items: any clip of another image (may share a class); others: a class not visible"


def noise_clip(seed: int, num_samples: int, clipped: bool = True) -> torch.Tensor:
    """The evaluation noise of one repeat: white Gaussian, sigma = 1, ``[num_samples]``; clipped to [-1, 1] (ours,
    a waveform a file can hold) unless ``clipped`` is False (the ICASSP'25 code's ``np.random.normal(0, 1)``)."""
    generator = torch.Generator().manual_seed(seed)
    if clipped:
        return white_noise(1, num_samples, generator)[0]
    return torch.randn(num_samples, generator=generator)


REFERENCE_SEEDS = (1234, 2345, 3456, 4567, 5678, 6789, 7890, 8901, 9012, 9999)
"""The ICASSP'25 code's ``random.seed`` of each of its 10 pooled runs."""
SEED_SCHEMES = ("ours", "reference")
NOISE_KINDS = ("clipped", "unclipped")


def repeat_seeds(seed: int, repeats: int, scheme: str = "ours") -> list[int]:
    """The recorded seed of each negative draw (noise clip and offscreen partners): ``ours`` = ``seed*1000 + r``;
    ``reference`` = the ICASSP'25 code's `REFERENCE_SEEDS` (at most 10 repeats; ``seed`` unused)."""
    if scheme == "reference":
        if not 1 <= repeats <= len(REFERENCE_SEEDS):
            raise ConfigError(f"negative seeds 'reference' hold {len(REFERENCE_SEEDS)} seeds; repeats={repeats}")
        return list(REFERENCE_SEEDS[:repeats])
    if scheme != "ours":
        raise ConfigError(f"negative seeds {scheme!r} unknown; choose one of {list(SEED_SCHEMES)}")
    return [seed * 1000 + r for r in range(repeats)]


@dataclass(frozen=True)
class NegativeAudio:
    """How the evaluation's silence and noise clips are made and encoded (offscreen clips are real clips)."""

    seeds: str = "ours"
    """seed scheme of the repeats: ours (seed*1000 + r) or reference (1234, 2345, ..., 9999)"""
    noise: str = "clipped"
    """clipped (ours: N(0, 1) clipped to [-1, 1]) or unclipped (the ICASSP'25 code)"""
    log: bool = True
    """the log on silence and noise spectrograms (ours); false: without it, as the ICASSP'25 code for EZ-VSL, SLAVC and
    FNAC did (a bug: their input then lies far outside what the encoder saw in training)"""

    def __post_init__(self) -> None:
        if self.seeds not in SEED_SCHEMES:
            raise ConfigError(f"negative seeds {self.seeds!r} unknown; choose one of {list(SEED_SCHEMES)}")
        if self.noise not in NOISE_KINDS:
            raise ConfigError(f"negative noise {self.noise!r} unknown; choose one of {list(NOISE_KINDS)}")

    def describe(self) -> dict[str, str]:
        spectrogram = "" if self.log else ", spectrogram without the log (the ICASSP'25 code's behaviour, a bug)"
        noise = "clipped to [-1, 1] (ours)" if self.noise == "clipped" else "unclipped (the ICASSP'25 code)"
        return {
            "silence": "zeros" + spectrogram,
            "noise": f"white Gaussian sigma 1, {noise}{spectrogram}",
            "seeds": "seed*1000 + repeat (ours)" if self.seeds == "ours" else "1234, 2345, ..., 9999 (ICASSP'25 code)",
        }

    def encode(self, model: AVLocalizer, waves: torch.Tensor) -> torch.Tensor:
        """Embeddings of silence or noise clips ``[B, T]`` through the model's front end (or without its log)."""
        if self.log:
            return model.encode_waveform(waves)
        if model.cfg.audio.features != "log_psd":
            raise ConfigError("negative spectrograms without the log apply to log_psd front ends (EZ-VSL family)")
        return model.encode_audio(power_spectrogram(waves, model.cfg.audio))


@torch.no_grad()
def encode_clips(model: AVLocalizer, dataset: AVDataset, batch_size: int, device: str, progress: bool) -> torch.Tensor:
    """Audio embeddings ``[N, D]`` of every item's clip."""
    out = []
    for start in tqdm(range(0, len(dataset), batch_size), disable=not progress, desc="audio", unit="batch"):
        idx = range(start, min(start + batch_size, len(dataset)))
        out.append(model.encode_waveform(torch.stack([dataset.load_wave(i) for i in idx]).to(device)))
    return torch.cat(out)


def _never_skipping(compute: Callable[P, R]) -> Callable[P, R]:
    """``compute`` (over a list of items), its `MediaError` for an unreadable file saying that nothing is skipped."""

    @functools.wraps(compute)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return compute(*args, **kwargs)
        except MediaError as exc:
            raise MediaError(
                exc.path,
                f"{exc.problem}; evaluation never leaves an item out (the metrics would no longer be those of the "
                "split): repair or remove the file, or evaluate an id list ROOT/NAME.txt with split NAME",
            ) from exc

    return wrapper


@_never_skipping
@torch.no_grad()
def compute_maps(
    model: AVLocalizer,
    items: list[AVItem],
    batch_size: int = 32,
    device: str = "cpu",
    seed: int = 0,
    progress: bool = True,
    repeats: int = 1,
    retrieval: bool = True,
    unseen: tuple[str, ...] = (),
    negatives: NegativeAudio = NegativeAudio(),
) -> EvalMaps:
    """Maps of every item under the four conditions (model in eval mode, on ``device``), and under the noise
    families ``unseen`` (one clip per repeat; family k of repeat seed s drawn with seed ``s + 100 * (k + 1)``).

    Every item is evaluated: an unreadable image or audio file raises `MediaError` naming it.
    """
    if not items:
        raise DatasetError("nothing to evaluate: the item list is empty")
    model = model.eval().to(device)
    dataset = AVDataset(items, model.cfg.image, model.cfg.audio, train=False)
    n, num_samples = len(items), model.cfg.audio.num_samples
    seeds = repeat_seeds(seed, repeats, negatives.seeds)
    partners = [offscreen_partners(items, s) for s in seeds]
    audio = encode_clips(model, dataset, batch_size, device, progress)
    silence_emb = negatives.encode(model, silence(1, num_samples).to(device))
    clipped = negatives.noise == "clipped"
    noise_emb = negatives.encode(model, torch.stack([noise_clip(s, num_samples, clipped) for s in seeds]).to(device))
    unseen_emb = {
        family: model.encode_waveform(
            torch.cat(
                [unseen_noise(family, 1, num_samples, torch.Generator().manual_seed(s + 100 * (k + 1))) for s in seeds]
            ).to(device)
        )
        for k, family in enumerate(unseen)
    }
    out: dict[str, list[torch.Tensor]] = {c: [] for c in CONDITIONS}
    per_repeat: dict[str, list[list[torch.Tensor]]] = {c: [[] for _ in seeds] for c in ("noise", "offscreen", *unseen)}
    sims = []
    for start in tqdm(range(0, n, batch_size), disable=not progress, desc="images", unit="batch"):
        idx = list(range(start, min(start + batch_size, n)))
        img = model.encode_image(torch.stack([dataset.load_image(i) for i in idx]).to(device))
        out["positive"].append(paired_maps(img, audio[idx]).cpu())
        out["silence"].append(paired_maps(img, silence_emb.expand(len(idx), -1)).cpu())
        for r in range(repeats):
            per_repeat["noise"][r].append(paired_maps(img, noise_emb[r : r + 1].expand(len(idx), -1)).cpu())
            per_repeat["offscreen"][r].append(paired_maps(img, audio[[partners[r][i] for i in idx]]).cpu())
            for family, emb in unseen_emb.items():
                per_repeat[family][r].append(paired_maps(img, emb[r : r + 1].expand(len(idx), -1)).cpu())
        if retrieval:
            sims.append(pairwise_maps(img, audio).flatten(2).amax(2).cpu())
    maps = {c: torch.cat(out[c]) for c in ("positive", "silence")}
    for cond, parts in per_repeat.items():
        maps[cond] = torch.cat([torch.cat(p) for p in parts])
    unseen_maps = {family: maps.pop(family) for family in unseen}
    owners = {
        "silence": torch.arange(n),
        "noise": torch.arange(n).repeat(repeats),
        "offscreen": torch.arange(n).repeat(repeats),
    }
    return EvalMaps(
        items=items,
        maps=maps,
        owners=owners,
        offscreen_source=[items[j].id for p in partners for j in p],
        seeds=seeds,
        similarity=torch.cat(sims) if retrieval else None,
        unseen=unseen_maps,
    )
