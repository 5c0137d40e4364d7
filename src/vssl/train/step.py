"""One optimiser step: loader batches -> device inputs -> forward/backward per micro-batch -> update.

The model and its objective run as one module, `TrainStep`, so that DistributedDataParallel wraps the
whole forward (DDP must see one forward per backward) and the objective can gather embeddings across
processes inside it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from functools import partial
from typing import Any

import torch
from torch import nn

from vssl.data.cache import decode_audio, frames_to_images
from vssl.models.localizer import AVLocalizer
from vssl.models.objectives import Batch
from vssl.vision import ImageConfig

Inputs = dict[str, Any]  # images, waves, specs (tensors or None) and sizes (see `TrainStep.forward`)


class TrainStep(nn.Module):
    """``(images, waves, specs, step, epoch) -> {"loss": ..., parts}``: the objective on the model.

    ``gather``: see `Batch.gather` (None: each process contrasts its own pairs).
    """

    def __init__(
        self,
        model: AVLocalizer,
        objective: nn.Module,
        gather: Callable[..., torch.Tensor] | None = None,
    ):
        super().__init__()
        self.model, self.objective, self.gather = model, objective, gather

    def forward(
        self,
        images: torch.Tensor,
        waves: torch.Tensor,
        specs: torch.Tensor | None,
        step: int,
        epoch: int,
        sizes: list[int] | None = None,
    ) -> dict[str, torch.Tensor]:
        """``sizes``: every process's number of pairs in this micro-batch when they differ (unreadable items
        skipped), for the gather; None: all hold as many as this one."""
        gather = self.gather if self.gather is None or sizes is None else partial(self.gather, sizes=sizes)
        batch = Batch(images=images, waves=waves, step=step, epoch=epoch, specs=specs, gather=gather)
        return self.objective(self.model, batch)


def model_inputs(
    sample: dict[str, Any], device: torch.device, image_cfg: ImageConfig, channels_last: bool = False
) -> Inputs:
    """A loader batch -> `TrainStep` inputs on ``device``: ``images [B, 3, S, S]`` float32, normalised;
    ``waves [B, T]`` float32 (empty ``[B, 0]`` when the batch holds ``specs [B, 1, F, T']`` instead).

    Decoded batches carry normalised ``image``; cached ones uint8 ``frame`` crops ``[B, S, S, 3]`` and
    compact audio, widened here, on the device, after a 4x smaller copy.
    """
    if "frame" in sample:
        images = frames_to_images(sample["frame"].to(device, non_blocking=True), image_cfg)
    else:
        images = sample["image"].to(device, non_blocking=True)
    images = images.contiguous(memory_format=torch.channels_last if channels_last else torch.contiguous_format)
    specs = sample.get("spec")
    if specs is not None:
        specs = decode_audio(specs.to(device, non_blocking=True))
        waves = torch.zeros(len(specs), 0, device=device)
    else:
        waves = decode_audio(sample["wave"].to(device, non_blocking=True))
    return {"images": images, "waves": waves, "specs": specs}


def forward_backward(
    module: nn.Module,
    micro_batches: Sequence[Inputs],
    optimizer: torch.optim.Optimizer,
    scaler: torch.amp.GradScaler,
    autocast: Callable[[], AbstractContextManager],
    step: int,
    epoch: int,
) -> dict[str, torch.Tensor]:
    """Gradients of one optimiser step: forward/backward every micro-batch; the objective's values averaged.

    Each micro-batch's loss is divided by their number, so the gradient is that of the mean loss. Under
    DDP, gradients are averaged over processes once, on the last micro-batch (``no_sync`` before it).
    """
    optimizer.zero_grad(set_to_none=True)
    totals: dict[str, torch.Tensor] = {}
    n = len(micro_batches)
    for k, inputs in enumerate(micro_batches):
        last = k == n - 1
        no_sync = getattr(module, "no_sync", None)
        with nullcontext() if last or no_sync is None else no_sync():
            with autocast():
                out = module(**inputs, step=step, epoch=epoch)
            scaler.scale(out["loss"] / n).backward()
        for key, value in out.items():
            totals[key] = totals.get(key, 0.0) + value.detach().float() / n
    return totals


def snapshot_buffers(module: nn.Module) -> Callable[[], None]:
    """Copy ``module``'s buffers (BatchNorm statistics: small) and return a function that puts the copy back.

    One concatenation per dtype, cheap enough to take before every step; restored only when a step is undone.
    """
    buffers = list(module.buffers())
    by_dtype: dict[torch.dtype, list[torch.Tensor]] = {}
    for b in buffers:
        by_dtype.setdefault(b.dtype, []).append(b)
    saved = {dtype: torch.cat([b.detach().reshape(-1) for b in group]) for dtype, group in by_dtype.items()}

    def restore() -> None:
        with torch.no_grad():
            for dtype, group in by_dtype.items():
                for b, before in zip(group, saved[dtype].split([b.numel() for b in group]), strict=True):
                    b.copy_(before.view_as(b))

    return restore


def apply_update(optimizer: torch.optim.Optimizer, scaler: torch.amp.GradScaler) -> None:
    """The optimiser update from the gradients `forward_backward` left (through the fp16 grad scaler)."""
    scaler.step(optimizer)
    scaler.update()
