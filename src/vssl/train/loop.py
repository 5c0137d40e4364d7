"""The training loop: seeded, resumable, device- and precision-aware.

A run folder holds ``config.yaml`` (the resolved config), ``metrics.csv``, ``tensorboard/`` (when
tensorboard is installed), ``checkpoints/last.pt`` (rewritten atomically every
``checkpoint_every`` steps and at every epoch end) and, when training ends, ``model/`` (release).
Data order, augmentation and negative audio all derive from ``seed``, so ``resume`` continues
exactly where an interrupted run stopped.
"""

from __future__ import annotations

import csv
import io
import logging
import time
from collections.abc import Iterator
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch.utils.data import DataLoader
from tqdm import tqdm

from vssl.atomic import write_text_atomic
from vssl.config import dump_yaml, to_dict
from vssl.data.dataset import AVDataset
from vssl.data.formats import read_items
from vssl.errors import ConfigError
from vssl.models.objectives import Batch, ObjectiveConfig, create_objective
from vssl.models.registry import create_model, model_config
from vssl.models.release import save_release
from vssl.train.checkpoint import load_checkpoint, save_checkpoint

log = logging.getLogger(__name__)

AMP_DTYPES = {"none": None, "bf16": torch.bfloat16, "fp16": torch.float16}


@dataclass(frozen=True)
class TrainConfig:
    """Everything that determines a training run."""

    data: str = ""  # data spec FORMAT:ROOT, e.g. synth:./vssl-demo/data
    split: str = "train"  # split of the dataset to train on
    model: str = "resnet18"  # model size from the registry: resnet18, small, test
    objective: ObjectiveConfig = field(default_factory=ObjectiveConfig)
    epochs: int = 20
    batch_size: int = 128
    lr: float = 1e-4  # Adam learning rate (the published value)
    weight_decay: float = 1e-4
    seed: int = 0  # seeds data order, augmentation, negatives and initialisation
    device: str = "cpu"  # cpu, cuda, cuda:1, ...
    amp: str = "none"  # autocast precision: none, bf16 or fp16 (fp16 uses a grad scaler; cuda only)
    num_workers: int = 0  # DataLoader worker processes
    freeze_audio_norm_at: float = 1.0  # fraction of training after which the audio BatchNorm layers run on
    # their running statistics (frozen), so the encoder learns on what inference computes; 1.0 = never
    cache: bool = False  # keep decoded items in memory (small datasets, num_workers=0): no decoding after epoch 1
    checkpoint_every: int = 100  # steps between resume checkpoints (also written at every epoch end)
    log_every: int = 10  # steps between metric rows
    progress: bool = True  # show a progress bar


class EpochOrder:
    """Index order of one epoch, a permutation seeded by (seed, epoch), started at ``skip`` batches in."""

    def __init__(self, n: int, batch_size: int, seed: int, epoch: int, skip_batches: int = 0):
        g = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
        order = torch.randperm(n, generator=g).tolist()
        usable = (n // batch_size) * batch_size  # drop the last partial batch: contrastive needs full batches
        self.indices = order[skip_batches * batch_size : usable]

    def __iter__(self) -> Iterator[int]:
        return iter(self.indices)

    def __len__(self) -> int:
        return len(self.indices)


def _validate(cfg: TrainConfig) -> None:
    if not cfg.data:
        raise ConfigError("train: no data spec given (data=FORMAT:ROOT)")
    if cfg.amp not in AMP_DTYPES:
        raise ConfigError(f"train: amp={cfg.amp!r} is not one of {sorted(AMP_DTYPES)}")
    if cfg.batch_size < 2:
        raise ConfigError("train: batch_size must be at least 2 (the batch is the pool of negatives)")


# Fields that may change when a run is resumed (how long, where and how verbosely it runs).
RESUMABLE_CHANGES = {"epochs", "device", "num_workers", "cache", "checkpoint_every", "log_every", "progress"}


def run_differences(state: dict, cfg: TrainConfig) -> list[str]:
    """What stops a checkpoint ``state`` from being continued with ``cfg`` (empty: it can be resumed).

    The architecture is compared too: a size name such as ``small`` may mean another network in
    another version of vssl.
    """
    saved, current = state["config"], to_dict(cfg)
    changed = [
        f"{k}: {saved.get(k)!r} -> {current[k]!r}"
        for k in current
        if k not in RESUMABLE_CHANGES and saved.get(k) != current[k]
    ]
    if state.get("model_config") != to_dict(model_config(cfg.model)):
        changed.append(f"architecture of model {cfg.model!r}")
    return changed


def resumable(run_dir: str | Path, cfg: TrainConfig) -> bool:
    """Whether ``run_dir`` holds a checkpoint that ``cfg`` can continue (or no checkpoint at all)."""
    path = Path(run_dir) / "checkpoints" / "last.pt"
    return not path.exists() or not run_differences(load_checkpoint(path), cfg)


def freeze_batchnorm(module: torch.nn.Module) -> None:
    """Put ``module``'s BatchNorm layers in inference mode: running statistics, no update; weights still train.

    A silent clip is an outlier in every training batch; an audio encoder normalised by batch statistics
    can learn to set silence apart only relative to its batch, which inference (running statistics)
    does not reproduce. Training the last part with frozen statistics removes that gap.
    """
    for m in module.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.eval()


class _MetricsLog:
    """CSV rows (and TensorBoard scalars when available) of whatever the objective returns.

    On resume, rows logged after the checkpoint's step are dropped: they will be logged again.
    """

    def __init__(self, run_dir: Path, resume_step: int):
        self.path = run_dir / "metrics.csv"
        self.fields: list[str] | None = None
        if self.path.exists():
            with open(self.path, newline="") as fh:
                rows = list(csv.reader(fh))
            self.fields = rows[0] if rows else None
            kept = [r for r in rows[1:] if r and int(r[0]) <= resume_step]
            if rows:
                text = io.StringIO()
                csv.writer(text).writerows([rows[0], *kept])
                write_text_atomic(self.path, text.getvalue())
        try:
            from torch.utils.tensorboard import SummaryWriter

            self.tb = SummaryWriter(str(run_dir / "tensorboard"))
        except ImportError:
            log.info("tensorboard is not installed: logging to metrics.csv only")
            self.tb = None

    def write(self, step: int, epoch: int, values: dict[str, float]) -> None:
        row = {"step": step, "epoch": epoch, **values}
        if self.fields is None:
            self.fields = list(row)
            with open(self.path, "w", newline="") as fh:
                csv.writer(fh).writerow(self.fields)
        with open(self.path, "a", newline="") as fh:
            csv.DictWriter(fh, fieldnames=self.fields, extrasaction="ignore").writerow(row)
        if self.tb is not None:
            for key, value in values.items():
                self.tb.add_scalar(f"train/{key}", value, step)

    def close(self) -> None:
        if self.tb is not None:
            self.tb.close()


def train(cfg: TrainConfig, run_dir: str | Path, resume: bool = False) -> Path:
    """Train per ``cfg`` into ``run_dir``; returns the release folder ``run_dir/model``."""
    _validate(cfg)
    run_dir = Path(run_dir)
    ckpt_path = run_dir / "checkpoints" / "last.pt"
    if ckpt_path.exists() and not resume:
        raise ConfigError(f"{run_dir}: holds a checkpoint already; pass --resume to continue it or use a new folder")
    run_dir.mkdir(parents=True, exist_ok=True)
    device = torch.device(cfg.device)

    torch.manual_seed(cfg.seed)
    model = create_model(cfg.model).to(device)
    dataset = AVDataset(
        read_items(cfg.data, cfg.split), model.cfg.image, model.cfg.audio, train=True, seed=cfg.seed, cache=cfg.cache
    )
    if len(dataset) < cfg.batch_size:
        raise ConfigError(f"train: {len(dataset)} items is fewer than one batch of {cfg.batch_size}")
    objective = create_objective(cfg.objective, num_samples=model.cfg.audio.num_samples, seed=cfg.seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    scaler = torch.amp.GradScaler(device.type, enabled=cfg.amp == "fp16")
    steps_per_epoch = len(dataset) // cfg.batch_size
    step = 0
    if resume and ckpt_path.exists():
        state = load_checkpoint(ckpt_path)
        changed = run_differences(state, cfg)  # before loading: a changed architecture would not load
        if changed:
            details = ", ".join(changed)
            raise ConfigError(f"{ckpt_path}: cannot resume with a different config ({details}); use a new run folder")
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scaler.load_state_dict(state["scaler"])
        step = int(state["step"])
        log.info("resumed %s at step %d", ckpt_path, step)
    write_text_atomic(run_dir / "config.yaml", dump_yaml(cfg))

    def checkpoint() -> None:
        save_checkpoint(
            ckpt_path,
            {
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "scaler": scaler.state_dict(),
                "step": step,
                "config": to_dict(cfg),
                "model_config": to_dict(model.cfg),
            },
        )

    metrics = _MetricsLog(run_dir, resume_step=step)
    total = steps_per_epoch * cfg.epochs
    bar = tqdm(total=total, initial=step, disable=not cfg.progress, desc=f"train {cfg.objective.name}", unit="step")
    autocast = (
        torch.autocast(device.type, dtype=AMP_DTYPES[cfg.amp]) if AMP_DTYPES[cfg.amp] is not None else nullcontext()
    )
    freeze_step = int(cfg.freeze_audio_norm_at * total)
    started, start_step = time.perf_counter(), step
    while step < total:
        epoch, done_in_epoch = divmod(step, steps_per_epoch)
        dataset.set_epoch(epoch)
        order = EpochOrder(len(dataset), cfg.batch_size, cfg.seed, epoch, skip_batches=done_in_epoch)
        loader = DataLoader(
            dataset,
            batch_size=cfg.batch_size,
            sampler=order,
            num_workers=cfg.num_workers,
            pin_memory=device.type == "cuda",
            drop_last=True,
            persistent_workers=False,
        )
        for sample in loader:
            model.train()
            if step >= freeze_step:
                freeze_batchnorm(model.audnet)
            batch = Batch(
                images=sample["image"].to(device, non_blocking=True),
                waves=sample["wave"].to(device, non_blocking=True),
                step=step,
                epoch=epoch,
            )
            with autocast:
                out = objective(model, batch)
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(out["loss"]).backward()
            scaler.step(optimizer)
            scaler.update()
            step += 1
            bar.update(1)
            if step % cfg.log_every == 0 or step == total:
                values = {k: float(v.detach()) for k, v in out.items()}
                values["samples_per_s"] = (
                    (step - start_step) * cfg.batch_size / max(time.perf_counter() - started, 1e-9)
                )
                metrics.write(step, epoch, values)
                bar.set_postfix(loss=f"{values['loss']:.3f}")
            if step % cfg.checkpoint_every == 0 or step % steps_per_epoch == 0:
                checkpoint()
    bar.close()
    metrics.close()
    checkpoint()
    release = save_release(model.cpu(), run_dir / "model", extra={"training": to_dict(cfg)})
    log.info("trained %d steps; release written to %s", step, release)
    return release
