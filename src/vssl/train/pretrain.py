"""(ours) The demo's stand-in for ImageNet: supervised pretraining of the image trunk on the benchmark's objects.

Every published VSSL model starts its image encoder from object-aware ImageNet weights, and that is where the
field's failure comes from: under silence, its map lights up the salient objects the trunk already knows. The
demo reproduces that start without a download: the image trunk learns to name the object classes it sees (sounding
and silent objects alike, as ImageNet labels know nothing of sound) on frames of a seed stream of their own
(`vssl.data.synth.render_frame`), never the training, calibration or test frames. Both demo arms then start from
the same trunk (``TrainConfig.image_init``).

What it names is ``PretrainConfig.target``:

* ``cells`` (the default): at every location of the trunk's output grid, the classes of the objects covering the
  location's centre (multi-label, binary cross-entropy per location, on the training views' random crops and
  flips). An ImageNet trunk's features are location-aware (its class activation maps find the object); the
  small trunk of the demo, with a receptive field of nearly the whole frame, does not become so from frame labels;
* ``frame``: the classes in the frame, from the mean-pooled features (vssl's first version). Measured on the
  demo (docs/demo.md): the map of a class's mean sound then peaks on the object in about half of the frames only.

The result is cached: ``OUT/image_trunk.safetensors`` with ``OUT/pretrain.json`` (what made it, and its accuracy
on held-out frames of the same stream); a later run with the same settings reuses it.
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
from vssl.vision import ImageConfig, View, apply_view, draw_view, eval_transform, resize_shorter

log = logging.getLogger(__name__)
TRUNK_FILE = "image_trunk.safetensors"
RECORD_FILE = "pretrain.json"
TARGETS = ("cells", "frame")

Box = tuple[int, int, int, int]


@dataclass(frozen=True)
class PretrainConfig:
    """(ours) The image trunk's supervised pretraining (the demo's ImageNet)."""

    images: int = 4000
    """Frames to learn from (indices 0.. of the pretraining stream; 0 disables pretraining)."""
    held_out: int = 500
    """Further frames of the stream on which the accuracy is measured and recorded."""
    epochs: int = 6
    """Passes over the frames."""
    batch_size: int = 64
    """Frames per step."""
    lr: float = 1e-3
    """Adam learning rate."""
    weight_decay: float = 1e-4
    """Adam weight decay."""
    target: str = "cells"
    """What the trunk learns to name: cells (the classes covering each location of its grid) or frame (the classes
    in the frame, from pooled features); see the module docstring."""

    def __post_init__(self) -> None:
        if self.images < 0 or self.held_out < 0 or self.epochs < 1 or self.batch_size < 2 or self.lr <= 0:
            raise ConfigError(
                "pretrain: images and held_out must be >= 0, epochs >= 1, batch_size >= 2 and lr > 0, got "
                f"{asdict(self)}"
            )
        if self.target not in TARGETS:
            raise ConfigError(f"pretrain.target: {self.target!r} is not one of {', '.join(TARGETS)}")


def reuse_trunk(out: Path, trunk_file: str, record_file: str, record: dict[str, Any]) -> Path | None:
    """``out/trunk_file`` when ``out/record_file`` says it was made exactly as ``record`` says, else None."""
    trunk_path, record_path = out / trunk_file, out / record_file
    if trunk_path.is_file() and record_path.is_file():
        saved = json.loads(record_path.read_text())
        if {k: saved.get(k) for k in record} == json.loads(json.dumps(record)):
            log.info("pretrained trunk at %s is up to date; reusing it", trunk_path)
            return trunk_path
    return None


def save_trunk(out: Path, trunk_file: str, record_file: str, trunk: torch.nn.Module, record: dict[str, Any]) -> Path:
    """Write ``trunk``'s weights and its ``record`` atomically (the weights first: a record names a whole file)."""
    out.mkdir(parents=True, exist_ok=True)
    state = {k: v.contiguous() for k, v in trunk.state_dict().items()}
    write_atomic(out / trunk_file, lambda tmp: save_file(state, str(tmp)))
    write_text_atomic(out / record_file, json.dumps(record, indent=1))
    return out / trunk_file


class _Frame:
    """A pretraining frame: its training-size image (`resize_shorter`), classes and boxes (original pixels)."""

    def __init__(self, synth: SynthConfig, index: int, image_cfg: ImageConfig):
        image, self.classes, self.boxes = render_frame(synth, index)
        self.image = resize_shorter(image, image_cfg)
        self.scale = self.image.width / image.width  # resized pixels per original pixel


def _multi_hot(classes: list[int], num_classes: int) -> torch.Tensor:
    """``[num_classes]``: 1 for each class in ``classes``."""
    targets = torch.zeros(num_classes)
    targets[classes] = 1.0
    return targets


def _cell_targets(
    classes: list[int], boxes: list[Box], xs: torch.Tensor, ys: torch.Tensor, num_classes: int
) -> torch.Tensor:
    """``[num_classes, g, g]``: 1 where the object of a class covers the cell centre at (``xs[j]``, ``ys[i]``),
    original pixels."""
    targets = torch.zeros(num_classes, len(ys), len(xs))
    for cls, (x0, y0, x1, y1) in zip(classes, boxes, strict=True):
        inside = ((ys >= y0) & (ys < y1))[:, None] & ((xs >= x0) & (xs < x1))[None, :]
        targets[cls] = torch.maximum(targets[cls], inside.float())
    return targets


def _view_targets(frame: _Frame, view: View, cfg: PretrainConfig, grid: int, image_cfg: ImageConfig, n: int):
    """The targets of ``frame`` seen through the training ``view``: ``[n]`` multi-hot (frame) or ``[n, g, g]``."""
    if cfg.target == "frame":
        return _multi_hot(frame.classes, n)
    centres = (torch.arange(grid) + 0.5) * image_cfg.size / grid  # in the crop, resized pixels
    xs = (centres.flip(0) if view.flip else centres) + view.left  # a flipped crop's column j shows column g-1-j
    return _cell_targets(frame.classes, frame.boxes, xs / frame.scale, (centres + view.top) / frame.scale, n)


def _training_batch(
    frames: list[_Frame], cfg: PretrainConfig, grid: int, image_cfg: ImageConfig, n: int, rng: np.random.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """Training views of ``frames`` (random crop and flip, as the arms train) and their targets."""
    images, targets = [], []
    for frame in frames:
        view = draw_view(frame.image.size, image_cfg, rng)
        images.append(apply_view(frame.image, view, image_cfg))
        targets.append(_view_targets(frame, view, cfg, grid, image_cfg, n))
    return torch.stack(images), torch.stack(targets)


def _logits(head: torch.nn.Linear, features: torch.Tensor, target: str) -> torch.Tensor:
    """Class logits ``[B, n]`` of the pooled features (frame) or ``[B, n, g, g]`` at every location (cells)."""
    if target == "frame":
        return head(features.mean(dim=(2, 3)))
    return head(features.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


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
    reused = reuse_trunk(out, TRUNK_FILE, RECORD_FILE, record)
    if reused is not None:
        return reused
    torch.manual_seed(seed)
    net = create_model(model)
    trunk, image_cfg = net.imgnet.train(), net.cfg.image
    head = torch.nn.Linear(net.cfg.image_backbone.out_channels, synth.num_classes)
    optimizer = torch.optim.Adam([*trunk.parameters(), *head.parameters()], lr=cfg.lr, weight_decay=cfg.weight_decay)
    grid = _grid(trunk, image_cfg)
    frames = [_Frame(synth, i, image_cfg) for i in range(cfg.images)]
    rng = np.random.default_rng([seed, 7])
    steps = cfg.epochs * (len(frames) // cfg.batch_size)
    bar = tqdm(total=steps, desc="pretrain image trunk", unit="step", disable=not progress)
    for _ in range(cfg.epochs):
        order = rng.permutation(len(frames))
        for start in range(0, len(order) - cfg.batch_size + 1, cfg.batch_size):
            batch = [frames[i] for i in order[start : start + cfg.batch_size]]
            images, targets = _training_batch(batch, cfg, grid, image_cfg, synth.num_classes, rng)
            loss = F.binary_cross_entropy_with_logits(_logits(head, trunk(images), cfg.target), targets)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            bar.update()
            bar.set_postfix(loss=f"{loss.item():.3f}")
    bar.close()
    record["held_out_exact_match"] = _exact_match(trunk, head, synth, image_cfg, cfg, grid)
    log.info("image trunk pretrained: exact-match accuracy %.3f on held-out frames", record["held_out_exact_match"])
    return save_trunk(out, TRUNK_FILE, RECORD_FILE, trunk, record)


@torch.no_grad()
def _grid(trunk: torch.nn.Module, image_cfg: ImageConfig) -> int:
    """The side of the trunk's output grid for its input size."""
    mode = trunk.training
    side = trunk.eval()(torch.zeros(1, 3, image_cfg.size, image_cfg.size)).shape[-1]
    trunk.train(mode)
    return side


@torch.no_grad()
def _exact_match(trunk, head, synth: SynthConfig, image_cfg, cfg: PretrainConfig, grid: int) -> float | None:
    """Share of held-out frames (target frame) or of their grid cells (cells) whose set of classes (logit > 0)
    is named exactly, in inference mode, on the whole frame as inference sees it (`eval_transform`)."""
    if not cfg.held_out:
        return None
    trunk.eval()
    transform = eval_transform(image_cfg)
    centres = (torch.arange(grid) + 0.5) / grid * synth.image_size  # original pixels (square frames)
    hits = []
    for start in range(cfg.images, cfg.images + cfg.held_out, cfg.batch_size):
        frames = [render_frame(synth, i) for i in range(start, min(start + cfg.batch_size, cfg.images + cfg.held_out))]
        images = torch.stack([transform(image) for image, _, _ in frames])
        n = synth.num_classes
        if cfg.target == "frame":
            targets = torch.stack([_multi_hot(c, n) for _, c, _ in frames])
        else:
            targets = torch.stack([_cell_targets(c, b, centres, centres, n) for _, c, b in frames])
        predicted = _logits(head, trunk(images), cfg.target) > 0
        hits.append((predicted == targets.bool()).all(dim=1).flatten())
    return float(torch.cat(hits).double().mean())
