"""The torch dataset shared by every format: AVItem list -> (image tensor, 3 s waveform).

Loading errors propagate as ``MediaError`` naming the file: a broken sample is never replaced by another
one (the trainer leaves it out of its batch and reports it: :mod:`vssl.data.skipping`). With
``cache=True`` each item is decoded once (the waveform and the deterministic part of the image pipeline
are kept in memory; crops and flips stay random per epoch) — for small datasets such as the demo's, in a
single loader process. Training augmentation draws from a generator seeded by (seed, epoch, index), so
an epoch is reproducible and a resumed run sees exactly the batches of an uninterrupted one.

`training_dataset` picks the training set of a data spec: a shard cache (``cache:ROOT``, built by
``vssl cache``; see :mod:`vssl.data.cache`) or any format's items, decoded per sample.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Dataset

from vssl.audio import AudioConfig, center_window, load_audio
from vssl.data.cache import CACHE_PREFIX, ShardDataset, open_training_cache
from vssl.data.formats import read_items
from vssl.data.items import AVItem
from vssl.vision import ImageConfig, crop_and_flip, eval_transform, load_image, resize_shorter


class AVDataset(Dataset):
    """Items -> ``{"image": [3, S, S], "wave": [T], "index": int}``."""

    def __init__(
        self,
        items: list[AVItem],
        image_cfg: ImageConfig,
        audio_cfg: AudioConfig,
        train: bool = False,
        seed: int = 0,
        cache: bool = False,
    ):
        self.items = items
        self.image_cfg = image_cfg
        self.audio_cfg = audio_cfg
        self.train = train
        self.seed = seed
        self.epoch = 0
        self._eval_transform = eval_transform(image_cfg)
        self._cache: dict[tuple[str, int], object] | None = {} if cache else None

    def set_epoch(self, epoch: int) -> None:
        """Select the augmentation draw of ``epoch``."""
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.items)

    def _cached(self, kind: str, index: int, make):
        if self._cache is None:
            return make()
        key = (kind, index)
        if key not in self._cache:
            self._cache[key] = make()
        return self._cache[key]

    def load_wave(self, index: int) -> torch.Tensor:
        """The item's central 3 s window at 16 kHz, ``[T]``."""

        def make() -> torch.Tensor:
            wave = load_audio(self.items[index].audio, self.audio_cfg.sample_rate)
            return center_window(wave, self.audio_cfg)

        return self._cached("wave", index, make)

    def load_image(self, index: int) -> torch.Tensor:
        """The item's frame, ``[3, S, S]``: augmented when training, resized when testing."""
        path = self.items[index].image
        if not self.train:
            return self._cached("eval", index, lambda: self._eval_transform(load_image(path)))
        base = self._cached("train", index, lambda: resize_shorter(load_image(path), self.image_cfg))
        return crop_and_flip(base, self.image_cfg, np.random.default_rng([self.seed, self.epoch, index]))

    def __getitem__(self, index: int) -> dict[str, torch.Tensor | int]:
        return {"image": self.load_image(index), "wave": self.load_wave(index), "index": index}


def training_dataset(
    spec: str, split: str, image_cfg: ImageConfig, audio_cfg: AudioConfig, seed: int = 0, in_memory: bool = False
) -> AVDataset | ShardDataset:
    """The training set named by ``spec``, with seeded augmentation (``set_epoch`` selects the draw).

    ``cache:ROOT``: a shard cache, checked to hold ``split`` with this preprocessing (samples carry uint8
    ``frame`` crops, see `ShardDataset`); any other spec: its items decoded per sample (normalised ``image``),
    kept in memory after the first epoch with ``in_memory``.
    """
    if spec.startswith(CACHE_PREFIX):
        root = spec.removeprefix(CACHE_PREFIX)
        return ShardDataset(open_training_cache(root, split, image_cfg, audio_cfg), image_cfg, seed=seed)
    return AVDataset(read_items(spec, split), image_cfg, audio_cfg, train=True, seed=seed, cache=in_memory)
