"""What `Localizer.localize` accepts, turned into RGB frames and mono waveforms.

Images: a path, a PIL image, a numpy array ``[H, W, 3]`` / ``[H, W]`` (uint8 0-255 or float 0-1), a torch
tensor ``[3, H, W]`` (channels first, as torchvision; uint8 or float 0-1), or a batch: a list of those,
an array ``[B, H, W, 3]`` or a tensor ``[B, 3, H, W]``. Every image becomes an 8-bit RGB PIL image and is
then preprocessed exactly as in evaluation (bicubic resize of the whole frame, no crop, normalised).

Audio: a path (audio or video file, any rate and channel count), a mono waveform ``[T]`` at the model's
sample rate (numpy or torch, float in [-1, 1]), a ``(waveform [T], sample_rate)`` pair (resampled), or a
batch: a list of those or ``[B, T]``. Negative audio comes from `silence_clip` and `noise_clip`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from vssl.audio import AudioConfig, load_audio, resample
from vssl.errors import VsslError
from vssl.negatives import silence, white_noise
from vssl.vision import load_image

ImageInput = Any  # str | Path | Image.Image | np.ndarray | torch.Tensor, or a batch of them
AudioInput = Any  # str | Path | np.ndarray | torch.Tensor | tuple[waveform, rate], or a batch of them
DEFAULT_AUDIO = AudioConfig()


def _array_to_image(pixels: np.ndarray) -> Image.Image:
    """``[H, W, 3]`` or ``[H, W]`` uint8 (0-255) or float (0-1) -> RGB image."""
    if pixels.dtype != np.uint8:
        if not np.issubdtype(pixels.dtype, np.floating):
            raise VsslError(f"image arrays must be uint8 or float in [0, 1], got {pixels.dtype}")
        pixels = (np.clip(pixels, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    if pixels.ndim == 3 and pixels.shape[2] == 1:
        pixels = pixels[:, :, 0]
    if pixels.ndim not in (2, 3) or (pixels.ndim == 3 and pixels.shape[2] not in (3, 4)):
        raise VsslError(f"an image array must be [H, W], [H, W, 3] or [H, W, 4], got shape {list(pixels.shape)}")
    return Image.fromarray(pixels).convert("RGB")


def as_frames(images: ImageInput) -> tuple[list[Image.Image], bool]:
    """Images -> (RGB frames, whether a batch was given)."""
    if isinstance(images, torch.Tensor):
        array = images.detach().cpu()
        if array.dim() == 4:
            return [_array_to_image(x.permute(1, 2, 0).numpy()) for x in array], True
        if array.dim() == 3:
            return [_array_to_image(array.permute(1, 2, 0).numpy())], False
        raise VsslError(f"an image tensor must be [3, H, W] or [B, 3, H, W], got shape {list(array.shape)}")
    if isinstance(images, np.ndarray):
        if images.ndim == 4:
            return [_array_to_image(x) for x in images], True
        return [_array_to_image(images)], False
    if isinstance(images, Image.Image):
        return [images.convert("RGB")], False
    if isinstance(images, str | Path):
        return [load_image(images)], False
    if isinstance(images, Sequence) and images:
        frames = [as_frames(x) for x in images]
        if any(batched for _, batched in frames):
            raise VsslError("a list of images must hold single images, not batches")
        return [f for fs, _ in frames for f in fs], True
    raise VsslError(f"cannot read an image from {type(images).__name__}")


def _wave_tensor(wave: np.ndarray | torch.Tensor) -> torch.Tensor:
    tensor = torch.as_tensor(np.asarray(wave) if not isinstance(wave, torch.Tensor) else wave.detach().cpu())
    if not tensor.is_floating_point():
        raise VsslError(f"waveforms must be float in [-1, 1], got {tensor.dtype}")
    if tensor.numel() == 0:
        raise VsslError("empty waveform (0 samples)")
    return tensor.float()


def as_waves(audios: AudioInput, cfg: AudioConfig) -> tuple[list[torch.Tensor], bool]:
    """Audio -> (mono waveforms ``[T]`` at ``cfg.sample_rate``, whether a batch was given)."""
    if isinstance(audios, str | Path):
        return [load_audio(audios, cfg.sample_rate)], False
    if isinstance(audios, tuple) and len(audios) == 2 and isinstance(audios[1], int | np.integer):
        wave = _wave_tensor(audios[0])
        if wave.dim() != 1:
            raise VsslError(f"a (waveform, rate) pair needs a mono waveform [T], got shape {list(wave.shape)}")
        return [resample(wave, int(audios[1]), cfg.sample_rate)], False
    if isinstance(audios, np.ndarray | torch.Tensor):
        wave = _wave_tensor(audios)
        if wave.dim() == 1:
            return [wave], False
        if wave.dim() == 2:
            return list(wave), True
        raise VsslError(f"a waveform must be [T] or [B, T], got shape {list(wave.shape)}")
    if isinstance(audios, Sequence) and audios:
        waves = [as_waves(x, cfg) for x in audios]
        if any(batched for _, batched in waves):
            raise VsslError("a list of audio clips must hold single clips, not batches")
        return [w for ws, _ in waves for w in ws], True
    raise VsslError(f"cannot read audio from {type(audios).__name__}")


def silence_clip(cfg: AudioConfig = DEFAULT_AUDIO) -> torch.Tensor:
    """One window of silence ``[num_samples]`` (zeros): negative audio."""
    return silence(1, cfg.num_samples)[0]


def noise_clip(cfg: AudioConfig = DEFAULT_AUDIO, seed: int = 0) -> torch.Tensor:
    """One window of white Gaussian noise (sigma 1, clipped to [-1, 1]) ``[num_samples]``: negative audio,
    the SSL-SaN authors' demo noise; seeded."""
    return white_noise(1, cfg.num_samples, torch.Generator().manual_seed(seed))[0]
