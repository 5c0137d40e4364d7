"""(ours) The demo's stand-in for ImageNet: supervised pretraining of the image trunk on the benchmark's objects.

Every published VSSL model starts its image encoder from object-aware ImageNet weights, and that is where the
field's failure comes from: under silence, its map lights up the salient objects the trunk already knows. The
demo reproduces that start without a download: the image trunk learns to name every object class in a frame
(multi-label, binary cross-entropy; sounding and silent objects alike, as ImageNet labels know nothing of sound)
on frames of a seed stream of their own (`vssl.data.synth.render_frame`), never the training, calibration or test
frames. Both demo arms then start from the same trunk (``TrainConfig.image_init``).

The result is cached: ``OUT/image_trunk.safetensors`` with ``OUT/pretrain.json`` (what made it, and its
exact-match accuracy on held-out frames of the same stream); a later run with the same settings reuses it.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import save_file
from tqdm import tqdm

from vssl.atomic import write_atomic, write_text_atomic
from vssl.data.synth import SynthConfig, render_frame
from vssl.errors import ConfigError
from vssl.models.registry import create_model
from vssl.vision import crop_and_flip, eval_transform, resize_shorter

log = logging.getLogger(__name__)
TRUNK_FILE = "image_trunk.safetensors"
RECORD_FILE = "pretrain.json"


@dataclass(frozen=True)
class PretrainConfig:
    """(ours) The image trunk's supervised pretraining (the demo's ImageNet)."""

    images: int = 4000
    """Frames to learn from (indices 0.. of the pretraining stream; 0 disables pretraining)."""
    held_out: int = 500
    """Further frames of the stream on which the exact-match accuracy is measured and recorded."""
    epochs: int = 6
    """Passes over the frames."""
    batch_size: int = 64
    """Frames per step."""
    lr: float = 1e-3
    """Adam learning rate."""
    weight_decay: float = 1e-4
    """Adam weight decay."""

    def __post_init__(self) -> None:
        if self.images < 0 or self.held_out < 0 or self.epochs < 1 or self.batch_size < 2 or self.lr <= 0:
            raise ConfigError(
                "pretrain: images and held_out must be >= 0, epochs >= 1, batch_size >= 2 and lr > 0, got "
                f"{asdict(self)}"
            )


def _frames(synth: SynthConfig, indices: range) -> tuple[list, torch.Tensor]:
    """The frames of ``indices`` and their multi-hot class targets ``[N, num_classes]``."""
    frames, targets = [], torch.zeros(len(indices), synth.num_classes)
    for row, index in enumerate(indices):
        image, classes = render_frame(synth, index)
        frames.append(image)
        targets[row, classes] = 1.0
    return frames, targets


def _record(synth: SynthConfig, model: str, cfg: PretrainConfig, seed: int) -> dict[str, Any]:
    """What determines the trunk: the frames' settings, the architecture, the recipe and the seed."""
    frames = {k: getattr(synth, k) for k in ("seed", "image_size", "num_classes", "max_distractors")}
    return {"frames": frames, "model": model, "pretrain": asdict(cfg), "seed": seed}


def pretrain_image_trunk(
    synth: SynthConfig, model: str, cfg: PretrainConfig, out: str | Path, seed: int = 0, progress: bool = True
) -> Path:
    """Pretrain (or reuse) the image trunk of model size ``model``; returns the trunk's weights file."""
    out = Path(out)
    record = _record(synth, model, cfg, seed)
    trunk_path, record_path = out / TRUNK_FILE, out / RECORD_FILE
    if trunk_path.is_file() and record_path.is_file():
        saved = json.loads(record_path.read_text())
        if {k: saved.get(k) for k in record} == json.loads(json.dumps(record)):
            log.info("pretrained image trunk at %s is up to date; reusing it", trunk_path)
            return trunk_path
    torch.manual_seed(seed)
    net = create_model(model)
    trunk, image_cfg = net.imgnet.train(), net.cfg.image
    head = torch.nn.Linear(net.cfg.image_backbone.out_channels, synth.num_classes)
    params = [*trunk.parameters(), *head.parameters()]
    optimizer = torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    frames, targets = _frames(synth, range(cfg.images))
    frames = [resize_shorter(frame, image_cfg) for frame in frames]
    rng = np.random.default_rng([seed, 7])
    steps = cfg.epochs * (len(frames) // cfg.batch_size)
    bar = tqdm(total=steps, desc="pretrain image trunk", unit="step", disable=not progress)
    for _ in range(cfg.epochs):
        order = rng.permutation(len(frames))
        for start in range(0, len(order) - cfg.batch_size + 1, cfg.batch_size):
            idx = order[start : start + cfg.batch_size]
            images = torch.stack([crop_and_flip(frames[i], image_cfg, rng) for i in idx])
            loss = F.binary_cross_entropy_with_logits(head(trunk(images).mean(dim=(2, 3))), targets[idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            bar.update()
            bar.set_postfix(loss=f"{loss.item():.3f}")
    bar.close()
    record["held_out_exact_match"] = _exact_match(trunk, head, synth, image_cfg, cfg)
    log.info("image trunk pretrained: exact-match accuracy %.3f on held-out frames", record["held_out_exact_match"])
    out.mkdir(parents=True, exist_ok=True)
    state = {k: v.contiguous() for k, v in trunk.state_dict().items()}
    write_atomic(trunk_path, lambda tmp: save_file(state, str(tmp)))
    write_text_atomic(record_path, json.dumps(record, indent=1))
    return trunk_path


@torch.no_grad()
def _exact_match(trunk, head, synth: SynthConfig, image_cfg, cfg: PretrainConfig) -> float | None:
    """Share of held-out frames whose set of classes (logit > 0) is named exactly, in inference mode."""
    if not cfg.held_out:
        return None
    trunk.eval()
    frames, targets = _frames(synth, range(cfg.images, cfg.images + cfg.held_out))
    transform = eval_transform(image_cfg)
    hits = []
    for start in range(0, len(frames), cfg.batch_size):
        images = torch.stack([transform(frame) for frame in frames[start : start + cfg.batch_size]])
        predicted = head(trunk(images).mean(dim=(2, 3))) > 0
        hits.append((predicted == targets[start : start + len(images)].bool()).all(dim=1))
    return float(torch.cat(hits).double().mean())
