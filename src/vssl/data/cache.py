"""Preprocessed shards: decode a training set once, then train on memory-mapped arrays (``vssl cache``).

An epoch over a shard cache decodes no JPEG and no wav: the deterministic part of the pipeline (decode,
bicubic resize of the shorter side to the model's train size, audio decode + resample + central window)
is done once by `build_cache`; what stays random per epoch (crop, flip; seeded by (seed, epoch, index)
exactly as `vssl.vision.crop_and_flip` draws them) is done per sample on a memory-mapped frame. Layout::

    OUT/cache.json                  the plan: source spec, split, item ids, preprocessing, audio format
    OUT/shard-00000/frames.bin      uint8 frames [H, W, 3] back to back (H or W = the train short side)
    OUT/shard-00000/frame_index.npy int64 [n, 3]: byte offset, height, width of each frame
    OUT/shard-00000/audio.npy       [n, T] int16 or float16 16 kHz windows, or [n, 1, F, T] float16 spectrograms

Audio formats: ``int16`` (exact for 16-bit sources such as ``vssl prepare`` output: the value is
``round(x * 32768)``), ``float16`` (relative error <= 2^-11), ``spectrogram`` (the log-spectrogram the
model computes, rounded to float16: no spectrogram work per step). Writing is resumable and atomic per
shard: a shard is written to ``.shard-NNNNN.tmp`` and renamed when complete; ``cache.json`` is written
first, so running ``vssl cache`` again with the same arguments finishes an interrupted cache. A training
config reads it as ``data=cache:OUT``; samples come as uint8 frames and compact audio, normalised on the
training device by `frames_to_images` and `decode_audio` (4x less host-to-device traffic than floats).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from vssl.atomic import write_text_atomic
from vssl.audio import AudioConfig, center_window, load_audio, spectrogram
from vssl.config import to_dict
from vssl.data.formats import read_items
from vssl.data.items import AVItem
from vssl.errors import ConfigError, DatasetError
from vssl.vision import ImageConfig, load_image, resize_shorter

log = logging.getLogger(__name__)

CACHE_PREFIX = "cache:"
CACHE_FORMAT = "vssl-shard-cache/1"
INDEX_FILE = "cache.json"
AUDIO_FORMATS = {"int16": np.int16, "float16": np.float16, "spectrogram": np.float16}
INT16_SCALE = 32768.0  # what 16-bit PCM readers divide by: a 16-bit source is stored exactly


@dataclass(frozen=True)
class CacheConfig:
    """What `build_cache` stores."""

    split: str = "train"
    """split of the dataset to cache (a cache holds one split)"""
    model: str = "resnet18"
    """registry size whose preprocessing the cache holds (train resize, audio front end)"""
    audio: str = "int16"
    """int16 or float16 waveforms (16 kHz central window), or spectrogram (float16)"""
    shard_size: int = 1024
    """items per shard: the unit of atomic writing and resumption"""
    workers: int = 0
    """decoding worker processes (0: decode in this process)"""


def shard_name(k: int) -> str:
    return f"shard-{k:05d}"


def encode_audio(wave: torch.Tensor, fmt: str, audio_cfg: AudioConfig) -> np.ndarray:
    """A central window ``[T]`` -> what the cache stores: ``[T]`` int16/float16 or ``[1, F, T']`` float16."""
    if fmt == "int16":
        return np.clip(np.round(wave.numpy() * INT16_SCALE), -32768, 32767).astype(np.int16)
    if fmt == "float16":
        return wave.numpy().astype(np.float16)
    return spectrogram(wave, audio_cfg).numpy().astype(np.float16)


def stored_shape(fmt: str, audio_cfg: AudioConfig) -> tuple[int, ...]:
    """Shape of one item's stored audio: ``[T]`` waves or ``[1, F, T']`` spectrograms."""
    if fmt == "spectrogram":
        return (1, audio_cfg.num_freqs, audio_cfg.num_frames)
    return (audio_cfg.num_samples,)


def decode_audio(audio: torch.Tensor) -> torch.Tensor:
    """Stored audio (any device) -> float32: int16 waves scaled back to [-1, 1), float16 widened."""
    return audio.float().div_(INT16_SCALE) if audio.dtype == torch.int16 else audio.float()


def frames_to_images(frames: torch.Tensor, cfg: ImageConfig) -> torch.Tensor:
    """uint8 crops ``[B, S, S, 3]`` -> normalised ``[B, 3, S, S]`` float32 (channels-last strides, no copy
    beyond the conversion); the same arithmetic as torchvision's ``to_tensor`` + ``normalize``."""
    mean = torch.tensor(cfg.mean, device=frames.device).view(1, 3, 1, 1)
    std = torch.tensor(cfg.std, device=frames.device).view(1, 3, 1, 1)
    return frames.permute(0, 3, 1, 2).float().div(255).sub(mean).div(std)


class _Decoder(Dataset):
    """Item i -> (resized frame ``[H, W, 3]`` uint8, encoded audio): the work a cache saves every epoch."""

    def __init__(self, items: list[AVItem], image_cfg: ImageConfig, audio_cfg: AudioConfig, fmt: str):
        self.items, self.image_cfg, self.audio_cfg, self.fmt = items, image_cfg, audio_cfg, fmt

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        item = self.items[i]
        frame = np.asarray(resize_shorter(load_image(item.image), self.image_cfg))
        wave = center_window(load_audio(item.audio, self.audio_cfg.sample_rate), self.audio_cfg)
        return frame, encode_audio(wave, self.fmt, self.audio_cfg)


def _as_is(x: Any) -> Any:
    return x


class _ShardWriter:
    """Fills one shard in a temporary folder; `finish` renames it into place (atomic, all or nothing)."""

    def __init__(self, root: Path, k: int, n: int, audio_shape: tuple[int, ...], dtype: type):
        self.final = root / shard_name(k)
        self.tmp = root / f".{shard_name(k)}.tmp"
        shutil.rmtree(self.tmp, ignore_errors=True)  # a shard an earlier run left half-written
        self.tmp.mkdir()
        self.frames = open(self.tmp / "frames.bin", "wb")  # closed by finish
        self.index = np.zeros((n, 3), dtype=np.int64)
        self.audio = np.lib.format.open_memmap(self.tmp / "audio.npy", mode="w+", dtype=dtype, shape=(n, *audio_shape))
        self.count, self.offset = 0, 0

    def add(self, frame: np.ndarray, audio: np.ndarray) -> None:
        """Store the next item: a frame ``[H, W, 3]`` uint8 and its encoded audio."""
        data = np.ascontiguousarray(frame, dtype=np.uint8)
        self.frames.write(data.tobytes())
        self.index[self.count] = (self.offset, data.shape[0], data.shape[1])
        self.audio[self.count] = audio
        self.offset += data.nbytes
        self.count += 1

    def finish(self) -> None:
        """Make every file durable, then move the folder into place."""
        if self.count != len(self.index):
            raise DatasetError(f"{self.final}: {self.count} of {len(self.index)} items written")
        self.frames.close()
        self.audio.flush()
        del self.audio
        np.save(self.tmp / "frame_index.npy", self.index)
        for name in ("frames.bin", "audio.npy", "frame_index.npy"):
            with open(self.tmp / name, "rb") as fh:
                os.fsync(fh.fileno())
        os.replace(self.tmp, self.final)


def _plan(spec: str, items: list[AVItem], cfg: CacheConfig, image_cfg: ImageConfig, audio_cfg: AudioConfig) -> dict:
    return {
        "format": CACHE_FORMAT,
        "source": spec,
        "split": cfg.split,
        "model": cfg.model,
        "short_side": image_cfg.train_short_side,
        "image": to_dict(image_cfg),
        "audio": to_dict(audio_cfg),
        "audio_format": cfg.audio,
        "shard_size": cfg.shard_size,
        "ids": [item.id for item in items],
    }


def build_cache(
    spec: str, out: str | Path, cfg: CacheConfig, image: ImageConfig, audio: AudioConfig, progress: bool = True
) -> Path:
    """Decode ``cfg.split`` of the dataset ``spec`` into shards in ``out`` (layout in the module docstring), with
    the front ends ``image`` and ``audio`` of the model size ``cfg.model`` (e.g. ``model_config(cfg.model)``'s).

    Finished shards of an earlier run with the same plan are kept; a folder holding another plan is refused.
    """
    if cfg.audio not in AUDIO_FORMATS:
        raise ConfigError(f"cache: audio={cfg.audio!r} is not one of {sorted(AUDIO_FORMATS)}")
    if cfg.shard_size < 1:
        raise ConfigError(f"cache: shard_size must be >= 1, got {cfg.shard_size}")
    out = Path(out)
    items = read_items(spec, cfg.split)
    plan = _plan(spec, items, cfg, image, audio)
    index = out / INDEX_FILE
    if index.exists():
        old = json.loads(index.read_text())
        changed = sorted(k for k in plan if old.get(k) != plan[k])
        if changed:
            raise ConfigError(f"{out}: holds a cache with other {', '.join(changed)}; use another folder")
    out.mkdir(parents=True, exist_ok=True)
    write_text_atomic(index, json.dumps(plan) + "\n")
    decoder = _Decoder(items, image, audio, cfg.audio)
    shards = range(-(-len(items) // cfg.shard_size))
    todo = [k for k in shards if not (out / shard_name(k)).is_dir()]
    log.info("cache %s: %d items, %d of %d shards to write", out, len(items), len(todo), len(shards))
    with tqdm(total=len(todo), desc="cache", unit="shard", disable=not progress) as bar:
        for k in todo:
            lo, hi = k * cfg.shard_size, min(len(items), (k + 1) * cfg.shard_size)
            part = torch.utils.data.Subset(decoder, range(lo, hi))
            loader = DataLoader(part, batch_size=None, num_workers=cfg.workers, collate_fn=_as_is)
            writer = _ShardWriter(out, k, hi - lo, stored_shape(cfg.audio, audio), AUDIO_FORMATS[cfg.audio])
            for frame, encoded in loader:
                writer.add(frame, encoded)
            writer.finish()
            bar.update()
    return out


class ShardCache:
    """A finished cache folder: its plan, and its shards memory-mapped on first use in each process."""

    def __init__(self, root: str | Path):
        self.root = Path(root)
        try:
            self.meta = json.loads((self.root / INDEX_FILE).read_text())
        except (OSError, ValueError) as exc:
            raise DatasetError(f"{self.root}: not a vssl shard cache ({exc}); build one with vssl cache") from exc
        if self.meta.get("format") != CACHE_FORMAT:
            raise DatasetError(f"{self.root}: cache format {self.meta.get('format')!r}, expected {CACHE_FORMAT}")
        self.size = len(self.meta["ids"])
        self.shard_size = int(self.meta["shard_size"])
        count = -(-self.size // self.shard_size)
        missing = [shard_name(k) for k in range(count) if not (self.root / shard_name(k)).is_dir()]
        if missing:
            raise DatasetError(
                f"{self.root}: incomplete cache ({len(missing)} of {count} shards missing, e.g. {missing[0]}); "
                "run the same vssl cache command again to finish it"
            )
        self._open: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_open": {}}  # worker processes map the files themselves

    def _shard(self, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if k not in self._open:
            folder = self.root / shard_name(k)
            frames = np.memmap(folder / "frames.bin", dtype=np.uint8, mode="r")
            self._open[k] = (frames, np.load(folder / "frame_index.npy"), np.load(folder / "audio.npy", mmap_mode="r"))
        return self._open[k]

    def frame(self, i: int) -> np.ndarray:
        """Item ``i``'s resized frame ``[H, W, 3]`` uint8 (a read-only view of the mapped file)."""
        frames, index, _ = self._shard(i // self.shard_size)
        offset, h, w = index[i % self.shard_size]
        return frames[offset : offset + h * w * 3].reshape(h, w, 3)

    def audio(self, i: int) -> np.ndarray:
        """Item ``i``'s stored audio (see `encode_audio`)."""
        return self._shard(i // self.shard_size)[2][i % self.shard_size]


class ShardDataset(Dataset):
    """A cache's items -> ``{"frame": [S, S, 3] uint8, "wave": [T] | "spec": [1, F, T'], "index": int}``.

    The crop and flip are drawn as `vssl.vision.crop_and_flip` draws them, from a generator seeded by
    (seed, epoch, index): a cached epoch holds exactly the pixels of a decoded one.
    """

    def __init__(self, cache: ShardCache, image_cfg: ImageConfig, seed: int = 0):
        self.cache, self.image_cfg, self.seed, self.epoch = cache, image_cfg, seed, 0
        self.audio_key = "spec" if cache.meta["audio_format"] == "spectrogram" else "wave"

    def set_epoch(self, epoch: int) -> None:
        """Select the augmentation draw of ``epoch``."""
        self.epoch = epoch

    def __len__(self) -> int:
        return self.cache.size

    def __getitem__(self, index: int) -> dict[str, torch.Tensor | int]:
        frame, size = self.cache.frame(index), self.image_cfg.size
        rng = np.random.default_rng([self.seed, self.epoch, index])
        left = int(rng.integers(frame.shape[1] - size + 1))
        top = int(rng.integers(frame.shape[0] - size + 1))
        crop = frame[top : top + size, left : left + size]
        if rng.random() < 0.5:
            crop = crop[:, ::-1]
        audio = torch.from_numpy(np.array(self.cache.audio(index)))
        return {"frame": torch.from_numpy(np.ascontiguousarray(crop)), self.audio_key: audio, "index": index}


def open_training_cache(root: str | Path, split: str, image_cfg: ImageConfig, audio_cfg: AudioConfig) -> ShardCache:
    """The cache at ``root``, checked to hold ``split`` preprocessed as a model with these configs needs."""
    cache = ShardCache(root)
    meta, problems = cache.meta, []
    if meta["split"] != split:
        problems.append(f"split {meta['split']!r}, not {split!r}")
    if meta["short_side"] != image_cfg.train_short_side:
        problems.append(f"frames resized to {meta['short_side']} px, this model trains on {image_cfg.train_short_side}")
    if meta["audio"] != to_dict(audio_cfg):
        problems.append("another audio front end")
    if problems:
        raise ConfigError(
            f"{cache.root}: cache of {meta['source']} ({meta['model']} preprocessing) does not fit: "
            f"{'; '.join(problems)}; build a cache for this run with vssl cache --model/--split"
        )
    return cache
