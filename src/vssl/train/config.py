"""What determines a training run: `TrainConfig`, its checks (a table of rules, one per key), and the fields a
resumed run may change.

`TrainConfig.validate` runs before anything is read or written; `contrast_pool` checks what depends on the
number of processes too, once it is known.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import torch

from vssl.devices import check_device
from vssl.errors import ConfigError
from vssl.models.image_init import IMAGE_INITS
from vssl.models.objectives import ObjectiveConfig
from vssl.train.sampler import micro_batch_size
from vssl.train.schedule import LR_SCHEDULES

__all__ = ["AMP_DTYPES", "CONTRAST_POOLS", "RESUMABLE_CHANGES", "TrainConfig", "contrast_pool"]

AMP_DTYPES = {"none": None, "bf16": torch.bfloat16, "fp16": torch.float16}
CONTRAST_POOLS = ("global", "local")


@dataclass(frozen=True)
class TrainConfig:
    """Everything that determines a training run."""

    data: str = ""
    """data spec FORMAT:ROOT, e.g. synth:./vssl-demo/data, or cache:ROOT (a vssl cache folder)"""
    split: str = "train"
    """split of the dataset to train on"""
    model: str = "resnet18"
    """model size from the registry: resnet18, small, test"""
    image_init: str = "none"
    """image trunk's start: none, imagenet (torchvision's ResNet-18 weights) or a weights file"""
    audio_init: str = "none"
    """audio trunk's start: none or a weights file of the trunk (the demo's: vssl.train.pretrain_audio)"""
    freeze_image_trunk: bool = False
    """keep the image trunk's weights as image_init gave them (heads and the audio side train); its BatchNorm layers
    still normalise by batch statistics in training"""
    init: str = ""
    """a release folder (vssl train / convert / demo) to start every weight from, e.g. a converted official checkpoint;
    its architecture replaces `model`, and its keys must match exactly; "" = no folder"""
    objective: ObjectiveConfig = field(default_factory=ObjectiveConfig)
    epochs: int = 20
    """passes over the training split"""
    batch_size: int = 128
    """pairs per optimiser step, over all processes and accumulated micro-batches"""
    lr: float = 1e-4
    """Adam learning rate (the published value)"""
    lr_schedule: str = "constant"
    """constant (the published recipes) or cosine (decays to 0 over the run)"""
    weight_decay: float = 1e-4
    """Adam's L2 weight decay (EZ-VSL and SLAVC publish 0, FNAC 1e-4; see vssl.train.recipes)"""
    seed: int = 0
    """seeds data order, augmentation, negatives and initialisation"""
    device: str = "cpu"
    """cpu, cuda, cuda:1, ... (under torchrun, cuda means cuda:LOCAL_RANK)"""
    amp: str = "none"
    """autocast precision: none, bf16 or fp16 (fp16 uses a grad scaler; cuda only)"""
    contrast: str = "global"
    """negatives of a pair under torchrun: global = every process's pairs of the micro-batch (embeddings all-gathered,
    results independent of the world size); local = own pairs only"""
    accumulate: int = 1
    """micro-batches per optimiser step (gradient accumulation); each is one contrast pool (SLAVC's momentum encoders
    take their EMA step once per micro-batch)"""
    channels_last: bool = False
    """NHWC memory format for the convolutions (faster with oneDNN and tensor cores)"""
    compile: bool = False
    """torch.compile the image and audio trunks (slow first steps, faster later ones)"""
    fused_adam: bool = False
    """Adam's update of all parameters in one fused kernel (faster; last-bit differences)"""
    sync_batchnorm: bool = False
    """BatchNorm statistics over all processes' pairs (cuda only)"""
    num_workers: int = 0
    """DataLoader worker processes per training process"""
    prefetch_factor: int = 2
    """batches each loader worker prepares ahead (with num_workers > 0)"""
    freeze_audio_norm_at: float = 1.0
    """fraction of training after which the audio BatchNorm layers run on their running statistics (frozen), so the
    encoder learns on what inference computes; 1.0 = never"""
    cache: bool = False
    """keep decoded items in memory (small datasets, num_workers=0): no decoding after epoch 1"""
    precise_bn_batches: int = 0
    """after training, BatchNorm running statistics recomputed as the average over this many training micro-batches
    with the final weights (PreciseBN, train/precise_bn.py); 0 = the moving averages"""
    checkpoint_every: int = 100
    """steps between resume checkpoints (also written at every epoch end)"""
    max_bad_fraction: float = 0.01
    """unreadable items an epoch may skip (fraction of its items); more stops the run"""
    max_bad_steps: int = 5
    """steps in a row with a non-finite loss (each skipped: no update) that stop the run"""
    log_every: int = 10
    """steps between metric rows"""
    progress: bool = True
    """show a progress bar"""

    def validate(self) -> None:
        """`ConfigError` naming the key of the first rule (`RULES`, in order) this config breaks."""
        for rule in RULES:
            if not rule.holds(self):
                raise ConfigError(f"train: {rule.problem(self)}")


def _names_a_device(device: str) -> bool:
    try:
        check_device(device)
    except ConfigError:
        return False
    return True


class Rule(NamedTuple):
    """A check of `TrainConfig`: ``holds(cfg)``, else ``problem(cfg)`` (which names ``key``) is the error."""

    key: str
    holds: Callable[[TrainConfig], bool]
    problem: Callable[[TrainConfig], str]


RULES = (
    Rule("data", lambda c: bool(c.data), lambda c: "no data spec given (data=FORMAT:ROOT)"),
    Rule("device", lambda c: _names_a_device(c.device), lambda c: f"device={c.device!r} is not a torch device"),
    Rule(
        "image_init",
        lambda c: c.image_init in IMAGE_INITS or Path(c.image_init).is_file(),
        lambda c: f"image_init={c.image_init!r} is neither one of {list(IMAGE_INITS)} nor a file",
    ),
    Rule(
        "audio_init",
        lambda c: c.audio_init == "none" or Path(c.audio_init).is_file(),
        lambda c: f"audio_init={c.audio_init!r} is neither none nor a file",
    ),
    Rule(
        "init",
        lambda c: not (c.init and (c.image_init != "none" or c.audio_init != "none")),
        lambda c: (
            f"init={c.init} sets every weight; "
            + ", ".join(f"{k}={getattr(c, k)!r}" for k in ("image_init", "audio_init") if getattr(c, k) != "none")
            + " would be overwritten"
        ),
    ),
    Rule("amp", lambda c: c.amp in AMP_DTYPES, lambda c: f"amp={c.amp!r} is not one of {sorted(AMP_DTYPES)}"),
    Rule(
        "lr_schedule",
        lambda c: c.lr_schedule in LR_SCHEDULES,
        lambda c: f"lr_schedule={c.lr_schedule!r} is not one of {list(LR_SCHEDULES)}",
    ),
    Rule(
        "contrast",
        lambda c: c.contrast in CONTRAST_POOLS,
        lambda c: f"contrast={c.contrast!r} is not one of {list(CONTRAST_POOLS)}",
    ),
    Rule(
        "batch_size",
        lambda c: c.batch_size >= 2,
        lambda c: "batch_size must be at least 2 (the batch is the pool of negatives)",
    ),
    Rule("accumulate", lambda c: c.accumulate >= 1, lambda c: f"accumulate must be >= 1, got {c.accumulate}"),
    Rule(
        "precise_bn_batches",
        lambda c: c.precise_bn_batches >= 0 and not (c.precise_bn_batches and c.sync_batchnorm),
        lambda c: f"precise_bn_batches must be >= 0 (and 0 with sync_batchnorm), got {c.precise_bn_batches}",
    ),
    Rule(
        "sync_batchnorm",
        lambda c: not c.sync_batchnorm or c.device.startswith("cuda"),
        lambda c: "sync_batchnorm needs device=cuda (PyTorch's SyncBatchNorm runs on GPUs only)",
    ),
    Rule(
        "max_bad_fraction",
        lambda c: 0.0 <= c.max_bad_fraction <= 1.0,
        lambda c: f"max_bad_fraction must be in [0, 1], got {c.max_bad_fraction}",
    ),
    Rule(
        "max_bad_steps", lambda c: c.max_bad_steps >= 1, lambda c: f"max_bad_steps must be >= 1, got {c.max_bad_steps}"
    ),
)


def contrast_pool(cfg: TrainConfig, world_size: int) -> int:
    """Pairs per contrast (the negatives' pool) on ``world_size`` processes, checked: at least 2 (and the batch
    split evenly, see `micro_batch_size`)."""
    micro = micro_batch_size(cfg.batch_size, world_size, cfg.accumulate)
    pool = micro * world_size if cfg.contrast == "global" else micro
    if pool < 2:
        raise ConfigError(
            f"train: each contrast would hold {pool} pair(s) (batch_size={cfg.batch_size}, {world_size} "
            f"process(es), accumulate={cfg.accumulate}, contrast={cfg.contrast}); it needs at least 2"
        )
    return pool


# Fields that may change when a run is resumed (how long, where, how fast and how verbosely it runs).
RESUMABLE_CHANGES = {
    "epochs",
    "device",
    "num_workers",
    "prefetch_factor",
    "channels_last",
    "compile",
    "fused_adam",
    "cache",
    "checkpoint_every",
    "max_bad_fraction",
    "max_bad_steps",
    "log_every",
    "progress",
}
