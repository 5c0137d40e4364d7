"""The training loop: seeded, resumable, device- and precision-aware, data-parallel under ``torchrun``.

A run folder holds ``config.yaml`` (the resolved config), ``metrics.csv``, ``tensorboard/`` (when
tensorboard is installed), ``checkpoints/last.pt`` (rewritten atomically every
``checkpoint_every`` steps and at every epoch end) and, when training ends, ``model/`` (release).
Data order, augmentation and negative audio all derive from ``seed``, so ``resume`` continues
exactly where an interrupted run stopped.

Launched by ``torchrun``, every process runs `train` on its share of each global batch
(:mod:`vssl.train.sampler`) under DistributedDataParallel (:mod:`vssl.train.distributed`); rank 0 alone
reads the resume checkpoint (and hands it to the others), logs and writes. A step is one global batch of
``batch_size`` pairs at any world size, so a run can be resumed on another number of devices.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import nullcontext
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader
from tqdm import tqdm

from vssl.atomic import write_text_atomic
from vssl.config import dump_yaml, to_dict
from vssl.data.dataset import training_dataset
from vssl.errors import ConfigError
from vssl.models.localizer import AVLocalizer
from vssl.models.objectives import ObjectiveConfig, create_objective
from vssl.models.registry import create_model, model_config
from vssl.models.release import save_release
from vssl.train.checkpoint import load_checkpoint, save_checkpoint
from vssl.train.distributed import DistEnv, init_distributed
from vssl.train.metrics import MetricsLog
from vssl.train.sampler import EpochOrder, micro_batch_size
from vssl.train.step import Inputs, TrainStep, accumulated_step, model_inputs

__all__ = ["EpochOrder", "TrainConfig", "freeze_batchnorm", "resumable", "run_differences", "train"]

log = logging.getLogger(__name__)

AMP_DTYPES = {"none": None, "bf16": torch.bfloat16, "fp16": torch.float16}
CONTRAST_POOLS = ("global", "local")


@dataclass(frozen=True)
class TrainConfig:
    """Everything that determines a training run."""

    data: str = ""  # data spec FORMAT:ROOT, e.g. synth:./vssl-demo/data, or cache:ROOT (a vssl cache folder)
    split: str = "train"  # split of the dataset to train on
    model: str = "resnet18"  # model size from the registry: resnet18, small, test
    objective: ObjectiveConfig = field(default_factory=ObjectiveConfig)
    epochs: int = 20
    batch_size: int = 128  # pairs per optimiser step, over all processes and accumulated micro-batches
    lr: float = 1e-4  # Adam learning rate (the published value)
    weight_decay: float = 1e-4
    seed: int = 0  # seeds data order, augmentation, negatives and initialisation
    device: str = "cpu"  # cpu, cuda, cuda:1, ... (under torchrun, cuda means cuda:LOCAL_RANK)
    amp: str = "none"  # autocast precision: none, bf16 or fp16 (fp16 uses a grad scaler; cuda only)
    contrast: str = "global"  # negatives of a pair under torchrun: global = every process's pairs of the
    # micro-batch (embeddings all-gathered, results independent of the world size); local = own pairs only
    accumulate: int = 1  # micro-batches per optimiser step (gradient accumulation); each is one contrast pool
    # (SLAVC's momentum encoders take their EMA step once per micro-batch)
    channels_last: bool = False  # NHWC memory format for the convolutions (faster with oneDNN and tensor cores)
    compile: bool = False  # torch.compile the image and audio trunks (slow first steps, faster later ones)
    fused_adam: bool = False  # Adam's update of all parameters in one fused kernel (faster; last-bit differences)
    sync_batchnorm: bool = False  # BatchNorm statistics over all processes' pairs (cuda only)
    num_workers: int = 0  # DataLoader worker processes per training process
    prefetch_factor: int = 2  # batches each loader worker prepares ahead (with num_workers > 0)
    freeze_audio_norm_at: float = 1.0  # fraction of training after which the audio BatchNorm layers run on
    # their running statistics (frozen), so the encoder learns on what inference computes; 1.0 = never
    cache: bool = False  # keep decoded items in memory (small datasets, num_workers=0): no decoding after epoch 1
    checkpoint_every: int = 100  # steps between resume checkpoints (also written at every epoch end)
    log_every: int = 10  # steps between metric rows
    progress: bool = True  # show a progress bar


def _validate(cfg: TrainConfig) -> None:
    if not cfg.data:
        raise ConfigError("train: no data spec given (data=FORMAT:ROOT)")
    if cfg.amp not in AMP_DTYPES:
        raise ConfigError(f"train: amp={cfg.amp!r} is not one of {sorted(AMP_DTYPES)}")
    if cfg.contrast not in CONTRAST_POOLS:
        raise ConfigError(f"train: contrast={cfg.contrast!r} is not one of {list(CONTRAST_POOLS)}")
    if cfg.batch_size < 2:
        raise ConfigError("train: batch_size must be at least 2 (the batch is the pool of negatives)")
    if cfg.accumulate < 1:
        raise ConfigError(f"train: accumulate must be >= 1, got {cfg.accumulate}")
    if cfg.sync_batchnorm and not cfg.device.startswith("cuda"):
        raise ConfigError("train: sync_batchnorm needs device=cuda (PyTorch's SyncBatchNorm runs on GPUs only)")


def _pool_size(cfg: TrainConfig, world_size: int) -> int:
    """Pairs per contrast (the negatives' pool), checked: at least 2."""
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
    "log_every",
    "progress",
}


def run_differences(state: dict, cfg: TrainConfig) -> list[str]:
    """What stops a checkpoint ``state`` from being continued with ``cfg`` (empty: it can be resumed).

    The architecture is compared too: a size name such as ``small`` may mean another network in
    another version of vssl. The number of processes is free to change (see :mod:`vssl.train.sampler`).
    """
    # A key absent from the checkpoint was added to vssl since: that run used its default.
    saved, current = {**to_dict(TrainConfig()), **state["config"]}, to_dict(cfg)
    changed = [
        f"{k}: {saved[k]!r} -> {current[k]!r}" for k in current if k not in RESUMABLE_CHANGES and saved[k] != current[k]
    ]
    if state.get("model_config") != to_dict(model_config(cfg.model)):
        changed.append(f"architecture of model {cfg.model!r}")
    return changed


def resumable(run_dir: str | Path, cfg: TrainConfig) -> bool:
    """Whether ``run_dir`` holds a checkpoint that ``cfg`` can continue (or no checkpoint at all)."""
    path = Path(run_dir) / "checkpoints" / "last.pt"
    return not path.exists() or not run_differences(load_checkpoint(path), cfg)


def _resume_state(cfg: TrainConfig, ckpt_path: Path, resume: bool) -> dict[str, Any] | None:
    """The checkpoint to continue (None: start afresh); refuses to overwrite a run or change its config."""
    if not ckpt_path.exists():
        return None
    if not resume:
        raise ConfigError(
            f"{ckpt_path.parents[1]}: holds a checkpoint already; pass --resume to continue it or use a new folder"
        )
    state = load_checkpoint(ckpt_path)
    changed = run_differences(state, cfg)  # before loading: a changed architecture would not load
    if changed:
        details = ", ".join(changed)
        raise ConfigError(f"{ckpt_path}: cannot resume with a different config ({details}); use a new run folder")
    return state


def freeze_batchnorm(module: torch.nn.Module) -> None:
    """Put ``module``'s BatchNorm layers in inference mode: running statistics, no update; weights still train.

    A silent clip is an outlier in every training batch; an audio encoder normalised by batch statistics
    can learn to set silence apart only relative to its batch, which inference (running statistics)
    does not reproduce. Training the last part with frozen statistics removes that gap.
    """
    for m in module.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.eval()


def _warn_pool_change(cfg: TrainConfig, saved_world: int, world: int) -> None:
    """With local contrast the pool of negatives depends on the number of processes: say so when it changes."""
    if saved_world != world and cfg.contrast == "local":
        before, now = (cfg.batch_size // (w * cfg.accumulate) for w in (saved_world, world))
        log.warning(
            "resumed on %d processes instead of %d with contrast=local: the pool of negatives changes from %d to "
            "%d pairs (contrast=global keeps it)",
            world,
            saved_world,
            before,
            now,
        )


def _prepare_model(cfg: TrainConfig, env: DistEnv, state: dict[str, Any] | None) -> AVLocalizer:
    """The model on its device, in its memory format, with the checkpoint's weights and the speed options."""
    torch.manual_seed(cfg.seed)
    model = create_model(cfg.model)
    if env.rank:  # decorrelate dropout between processes; rank 0 keeps the one-process stream
        torch.manual_seed(cfg.seed * 1_000_003 + env.rank)
    if state is not None:
        model.load_state_dict(state["model"])
    if cfg.sync_batchnorm and env.distributed:
        model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
    model.to(env.device, memory_format=torch.channels_last if cfg.channels_last else torch.contiguous_format)
    if cfg.compile:
        model.imgnet.compile()
        model.audnet.compile()
    return model


def _epoch_batches(
    loader: DataLoader, accumulate: int, prepare: Callable[[dict], Inputs]
) -> Iterator[tuple[list[Inputs], float]]:
    """The loader's micro-batches, prepared, in groups of ``accumulate`` (one optimiser step each),
    with the seconds spent waiting for each group."""
    it = iter(loader)
    while True:
        started = time.perf_counter()
        group = [prepare(sample) for sample in islice(it, accumulate)]
        if len(group) < accumulate:
            return
        yield group, time.perf_counter() - started


OnLog = Callable[[int, dict[str, float]], None]


def train(cfg: TrainConfig, run_dir: str | Path, resume: bool = False, on_log: OnLog | None = None) -> Path:
    """Train per ``cfg`` into ``run_dir``; returns the release folder ``run_dir/model``.

    Under ``torchrun`` every process calls this; it joins (and finally leaves) the process group.
    ``on_log(step, values)`` is called on rank 0 with every metrics row (monitoring, benchmarks); the time
    it takes is not counted in the next row's ``samples_per_s``.
    """
    _validate(cfg)
    env = init_distributed(cfg.device)
    try:
        return _train(cfg, Path(run_dir), resume, env, on_log)
    finally:
        env.close()


def _train(cfg: TrainConfig, run_dir: Path, resume: bool, env: DistEnv, on_log: OnLog | None) -> Path:
    ckpt_path = run_dir / "checkpoints" / "last.pt"
    micro = micro_batch_size(cfg.batch_size, env.world_size, cfg.accumulate)
    pool = _pool_size(cfg, env.world_size)
    state = env.from_main(lambda: _resume_state(cfg, ckpt_path, resume))
    model = _prepare_model(cfg, env, state)
    dataset = training_dataset(
        cfg.data, cfg.split, model.cfg.image, model.cfg.audio, seed=cfg.seed, in_memory=cfg.cache
    )
    if len(dataset) < cfg.batch_size:
        raise ConfigError(f"train: {len(dataset)} items is fewer than one batch of {cfg.batch_size}")
    objective = create_objective(cfg.objective, num_samples=model.cfg.audio.num_samples, seed=cfg.seed)
    gather = env.gather if cfg.contrast == "global" and env.distributed else None
    module = env.wrap(TrainStep(model, objective, gather))
    fused = {"fused": True} if cfg.fused_adam else {}
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay, **fused)
    scaler = torch.amp.GradScaler(env.device.type, enabled=cfg.amp == "fp16")
    steps_per_epoch = len(dataset) // cfg.batch_size
    step = 0
    if state is not None:
        optimizer.load_state_dict(state["optimizer"])
        scaler.load_state_dict(state["scaler"])
        step = int(state["step"])
        _warn_pool_change(cfg, int(state.get("world_size", 1)), env.world_size)
        log.info("resumed %s at step %d", ckpt_path, step)
    if env.is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
        write_text_atomic(run_dir / "config.yaml", dump_yaml(cfg))

    saved_step = step if state is not None else -1

    def checkpoint() -> None:
        nonlocal saved_step
        saved_step = step
        replicas = env.check_replicas(model)  # every process: the replicas must hold one model
        if env.is_main:
            save_checkpoint(
                ckpt_path,
                {
                    "model": model.state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "scaler": scaler.state_dict(),
                    "step": step,
                    "world_size": env.world_size,
                    "replicas": replicas,
                    "config": to_dict(cfg),
                    "model_config": to_dict(model.cfg),
                },
            )

    metrics = MetricsLog(run_dir, resume_step=step) if env.is_main else None
    total = steps_per_epoch * cfg.epochs
    bar = tqdm(
        total=total,
        initial=step,
        disable=not (cfg.progress and env.is_main),
        desc=f"train {cfg.objective.name}",
        unit="step",
    )
    amp_dtype = AMP_DTYPES[cfg.amp]

    def autocast():
        return torch.autocast(env.device.type, dtype=amp_dtype) if amp_dtype is not None else nullcontext()

    def prepare(sample):
        return model_inputs(sample, env.device, model.cfg.image, cfg.channels_last)

    freeze_step = int(cfg.freeze_audio_norm_at * total)
    log.info(
        "%d steps of %d pairs: %d per process and micro-batch, contrast pool %d", total, cfg.batch_size, micro, pool
    )
    interval_start, interval_step, waited = time.perf_counter(), step, 0.0
    while step < total:
        epoch, done_in_epoch = divmod(step, steps_per_epoch)
        dataset.set_epoch(epoch)
        order = EpochOrder(
            len(dataset), cfg.batch_size, cfg.seed, epoch, done_in_epoch, env.rank, env.world_size, cfg.accumulate
        )
        loader = DataLoader(
            dataset,
            batch_size=micro,
            sampler=order,
            num_workers=cfg.num_workers,
            pin_memory=env.device.type == "cuda",
            drop_last=True,
            prefetch_factor=cfg.prefetch_factor if cfg.num_workers else None,
        )
        for micro_batches, wait in _epoch_batches(loader, cfg.accumulate, prepare):
            waited += wait
            module.train()
            if step >= freeze_step:
                freeze_batchnorm(model.audnet)
            out = accumulated_step(module, micro_batches, optimizer, scaler, autocast, step, epoch)
            step += 1
            bar.update(1)
            if step % cfg.log_every == 0 or step == total:
                values = env.mean(out)  # every process takes part
                elapsed = max(time.perf_counter() - interval_start, 1e-9)
                values["samples_per_s"] = (step - interval_step) * cfg.batch_size / elapsed
                values["data_wait"] = waited / elapsed  # fraction of the time rank 0 waited for its loader
                if metrics is not None:
                    metrics.write(step, epoch, values)
                if on_log is not None and env.is_main:
                    on_log(step, values)
                bar.set_postfix(loss=f"{values['loss']:.3f}")
                interval_start, interval_step, waited = time.perf_counter(), step, 0.0
            if step % cfg.checkpoint_every == 0 or step % steps_per_epoch == 0:
                checkpoint()
    bar.close()
    if saved_step != step:
        checkpoint()
    release = run_dir / "model"
    if env.is_main:
        metrics.close()
        model.to("cpu", memory_format=torch.contiguous_format)
        save_release(model, release, extra={"training": to_dict(cfg)})
        log.info("trained %d steps; release written to %s", step, release)
    env.barrier()  # the release exists when train returns, on every process
    return release
