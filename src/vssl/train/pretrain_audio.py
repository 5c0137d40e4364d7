"""(ours) The demo's stand-in for a pretrained audio encoder: supervised pretraining of the audio trunk on the
benchmark's sound classes.

Published VSSL models start their audio encoder from pretrained weights too (ImageNet's ResNet-18 for LVS,
EZ-VSL, SLAVC and FNAC; VGGish or PANNs trained on AudioSet for others): it hears sound classes from the first
step. The demo's stand-in learns to name the class of clips of a seed stream of their own
(`vssl.data.synth.render_sound`: one class's sound over faint ambience; never a training, calibration or test clip,
never silence or noise), from the max-pooled trunk features as the model pools them (cross-entropy). Both demo arms
then start from the same audio trunk (``TrainConfig.audio_init``).

Why (measured on the demo, seed 0, AMD EPYC, 2 threads, one run each; docs/demo.md): from a random audio trunk,
the contrastive loss of both arms sits at chance for the first 400 of 992 steps, and SSL-SaN's negative terms,
active from the first step, keep it there to the end (every map near 0.2); from this trunk both arms leave chance
in the first epoch.

The result is cached as the image trunk's is: ``OUT/audio_trunk.safetensors`` with ``OUT/pretrain_audio.json``
(what made it, and its accuracy on held-out clips of the same stream).
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from vssl.data.synth import SynthConfig, render_sound
from vssl.errors import ConfigError
from vssl.models.registry import create_model
from vssl.train.pretrain import reuse_trunk, save_trunk

log = logging.getLogger(__name__)
TRUNK_FILE = "audio_trunk.safetensors"
RECORD_FILE = "pretrain_audio.json"


@dataclass(frozen=True)
class AudioPretrainConfig:
    """(ours) The audio trunk's supervised pretraining on the sound classes."""

    clips: int = 2000
    """Clips to learn from (indices 0.. of the sounds-only stream; 0 disables pretraining)."""
    held_out: int = 400
    """Further clips of the stream on which the accuracy is measured and recorded."""
    epochs: int = 4
    """Passes over the clips."""
    batch_size: int = 64
    """Clips per step."""
    lr: float = 1e-3
    """Adam learning rate."""
    weight_decay: float = 1e-4
    """Adam weight decay."""

    def __post_init__(self) -> None:
        if self.clips < 0 or self.held_out < 0 or self.epochs < 1 or self.batch_size < 2 or self.lr <= 0:
            raise ConfigError(
                "audio_pretrain: clips and held_out must be >= 0, epochs >= 1, batch_size >= 2 and lr > 0, got "
                f"{asdict(self)}"
            )


def _record(synth: SynthConfig, model: str, cfg: AudioPretrainConfig, seed: int) -> dict[str, Any]:
    """What determines the trunk: the clips' settings, the architecture, the recipe and the seed."""
    keys = ("seed", "num_classes", "sample_rate", "duration", "level_db", "ambience_db")
    return {"clips": {k: getattr(synth, k) for k in keys}, "model": model, "pretrain": asdict(cfg), "seed": seed}


@torch.no_grad()
def _spectrograms(net, synth: SynthConfig, indices: range) -> tuple[torch.Tensor, torch.Tensor]:
    """The log-spectrograms ``[N, 1, F, T]`` of the stream's clips ``indices`` and their classes ``[N]``."""
    clips = [render_sound(synth, i) for i in indices]
    waves = torch.from_numpy(np.stack([wave for wave, _ in clips]))
    labels = torch.tensor([label for _, label in clips])
    return torch.cat([net.spectrogram(chunk) for chunk in waves.split(256)]), labels


def _logits(trunk: torch.nn.Module, head: torch.nn.Linear, specs: torch.Tensor) -> torch.Tensor:
    """Class logits ``[N, classes]`` of the trunk's features max-pooled over time and frequency, as the model pools
    them (`AVLocalizer.audio_heads`)."""
    return head(trunk(specs).amax(dim=(2, 3)))


def pretrain_audio_trunk(
    synth: SynthConfig, model: str, cfg: AudioPretrainConfig, out: str | Path, seed: int = 0, progress: bool = True
) -> Path:
    """Pretrain (or reuse) the audio trunk of model size ``model``; returns the trunk's weights file."""
    out = Path(out)
    record = _record(synth, model, cfg, seed)
    reused = reuse_trunk(out, TRUNK_FILE, RECORD_FILE, record)
    if reused is not None:
        return reused
    torch.manual_seed(seed)
    net = create_model(model)
    trunk = net.audnet.train()
    head = torch.nn.Linear(net.cfg.audio_backbone.out_channels, synth.num_classes)
    optimizer = torch.optim.Adam([*trunk.parameters(), *head.parameters()], lr=cfg.lr, weight_decay=cfg.weight_decay)
    specs, labels = _spectrograms(net, synth, range(cfg.clips))
    generator = torch.Generator().manual_seed(seed)
    steps = cfg.epochs * (cfg.clips // cfg.batch_size)
    bar = tqdm(total=steps, desc="pretrain audio trunk", unit="step", disable=not progress)
    for _ in range(cfg.epochs):
        order = torch.randperm(cfg.clips, generator=generator)
        for start in range(0, cfg.clips - cfg.batch_size + 1, cfg.batch_size):
            idx = order[start : start + cfg.batch_size]
            loss = F.cross_entropy(_logits(trunk, head, specs[idx]), labels[idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            bar.update()
            bar.set_postfix(loss=f"{loss.item():.3f}")
    bar.close()
    record["held_out_accuracy"] = _accuracy(net, head, synth, cfg)
    log.info("audio trunk pretrained: accuracy %s on held-out clips", record["held_out_accuracy"])
    return save_trunk(out, TRUNK_FILE, RECORD_FILE, trunk, record)


@torch.no_grad()
def _accuracy(net, head, synth: SynthConfig, cfg: AudioPretrainConfig) -> float | None:
    """Share of held-out clips whose class is named (arg max), in inference mode."""
    if not cfg.held_out:
        return None
    trunk = net.audnet.eval()
    specs, labels = _spectrograms(net, synth, range(cfg.clips, cfg.clips + cfg.held_out))
    predicted = torch.cat([_logits(trunk, head, chunk).argmax(dim=1) for chunk in specs.split(cfg.batch_size)])
    return float((predicted == labels).double().mean())
