"""The training loop: seeded, resumable, device- and precision-aware, data-parallel under ``torchrun``.

A run folder holds ``config.yaml`` (the resolved config), ``metrics.csv``, ``tensorboard/`` (when
tensorboard is installed), ``checkpoints/last.pt`` (rewritten atomically every ``checkpoint_every`` steps
and at every epoch end, the one before kept as ``last.previous.pt``; see :mod:`vssl.train.checkpoint`),
``skipped.json`` (unreadable items left out, see :mod:`vssl.train.skips`) and, when training ends,
``model/`` (release). Data order, augmentation, negative audio and dropout all derive from ``seed``
(dropout through `step_seed`), so ``resume`` continues exactly where an interrupted run stopped, even
after ``kill -9``: it repeats at most the steps since the last checkpoint, and ends with the weights of
an uninterrupted run. SIGTERM or SIGINT stops a run cleanly after a final checkpoint
(:mod:`vssl.train.signals`).

Launched by ``torchrun``, every process runs `train` on its share of each global batch
(:mod:`vssl.train.sampler`) under DistributedDataParallel (:mod:`vssl.train.distributed`); rank 0 alone
reads the resume checkpoint (and hands it to the others), logs and writes. A step is one global batch of
``batch_size`` pairs at any world size, so a run can be resumed on another number of devices.
"""

from __future__ import annotations

import logging
import signal
import time
from collections.abc import Callable, Iterator
from contextlib import nullcontext
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader
from tqdm import tqdm

from vssl.atomic import write_text_atomic
from vssl.config import dump_yaml, from_dict, to_dict
from vssl.data.dataset import training_dataset
from vssl.data.skipping import UNREADABLE, SkipUnreadable, collate_readable, readable_count
from vssl.errors import ConfigError, TrainingError, TrainingStopped
from vssl.models.image_init import IMAGE_INITS, init_image_trunk
from vssl.models.localizer import AVLocalizer, ModelConfig
from vssl.models.norm import batchnorms
from vssl.models.objectives import ObjectiveConfig, create_objective
from vssl.models.registry import create_model, model_config
from vssl.models.release import load_model, read_architecture, save_release
from vssl.train.checkpoint import LAST, latest_checkpoint, remove_temporaries, save_checkpoint
from vssl.train.distributed import DistEnv, init_distributed
from vssl.train.metrics import MetricsLog
from vssl.train.precise_bn import precise_batchnorm
from vssl.train.sampler import EpochOrder, micro_batch_size, step_seed
from vssl.train.schedule import LR_SCHEDULES, learning_rate, set_learning_rate
from vssl.train.signals import StopSignals, ignore_stop_signals
from vssl.train.skips import NonFiniteLosses, SkippedItems
from vssl.train.step import TrainStep, apply_update, forward_backward, model_inputs, snapshot_buffers

__all__ = ["EpochOrder", "TrainConfig", "freeze_batchnorm", "resumable", "run_differences", "train"]

log = logging.getLogger(__name__)

AMP_DTYPES = {"none": None, "bf16": torch.bfloat16, "fp16": torch.float16}
CONTRAST_POOLS = ("global", "local")
SIZES = "process_sizes"  # a micro-batch's number of pairs on every process, when unreadable items made them differ


@dataclass(frozen=True)
class TrainConfig:
    """Everything that determines a training run."""

    data: str = ""  # data spec FORMAT:ROOT, e.g. synth:./vssl-demo/data, or cache:ROOT (a vssl cache folder)
    split: str = "train"  # split of the dataset to train on
    model: str = "resnet18"  # model size from the registry: resnet18, small, test
    image_init: str = "none"  # image trunk's start: none, imagenet (torchvision's ResNet-18 weights) or a weights file
    init: str = ""  # a release folder (vssl train / convert / demo) to start every weight from, e.g. a converted
    # official checkpoint; its architecture replaces `model`, and its keys must match exactly; "" = no folder
    objective: ObjectiveConfig = field(default_factory=ObjectiveConfig)
    epochs: int = 20
    batch_size: int = 128  # pairs per optimiser step, over all processes and accumulated micro-batches
    lr: float = 1e-4  # Adam learning rate (the published value)
    lr_schedule: str = "constant"  # constant (the published recipes) or cosine (decays to 0 over the run)
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
    precise_bn_batches: int = 0  # after training, BatchNorm running statistics recomputed as the average over this
    # many training micro-batches with the final weights (PreciseBN, train/precise_bn.py); 0 = the moving averages
    checkpoint_every: int = 100  # steps between resume checkpoints (also written at every epoch end)
    max_bad_fraction: float = 0.01  # unreadable items an epoch may skip (fraction of its items); more stops the run
    max_bad_steps: int = 5  # steps in a row with a non-finite loss (each skipped: no update) that stop the run
    log_every: int = 10  # steps between metric rows
    progress: bool = True  # show a progress bar


def _validate(cfg: TrainConfig) -> None:
    if not cfg.data:
        raise ConfigError("train: no data spec given (data=FORMAT:ROOT)")
    if cfg.image_init not in IMAGE_INITS and not Path(cfg.image_init).is_file():
        raise ConfigError(f"train: image_init={cfg.image_init!r} is neither one of {list(IMAGE_INITS)} nor a file")
    if cfg.init and cfg.image_init != "none":
        raise ConfigError(
            f"train: init={cfg.init} sets every weight; image_init={cfg.image_init!r} would be overwritten"
        )
    if cfg.amp not in AMP_DTYPES:
        raise ConfigError(f"train: amp={cfg.amp!r} is not one of {sorted(AMP_DTYPES)}")
    if cfg.lr_schedule not in LR_SCHEDULES:
        raise ConfigError(f"train: lr_schedule={cfg.lr_schedule!r} is not one of {list(LR_SCHEDULES)}")
    if cfg.contrast not in CONTRAST_POOLS:
        raise ConfigError(f"train: contrast={cfg.contrast!r} is not one of {list(CONTRAST_POOLS)}")
    if cfg.batch_size < 2:
        raise ConfigError("train: batch_size must be at least 2 (the batch is the pool of negatives)")
    if cfg.accumulate < 1:
        raise ConfigError(f"train: accumulate must be >= 1, got {cfg.accumulate}")
    if cfg.precise_bn_batches < 0 or (cfg.precise_bn_batches and cfg.sync_batchnorm):
        raise ConfigError(
            f"train: precise_bn_batches must be >= 0 (and 0 with sync_batchnorm), got {cfg.precise_bn_batches}"
        )
    if cfg.sync_batchnorm and not cfg.device.startswith("cuda"):
        raise ConfigError("train: sync_batchnorm needs device=cuda (PyTorch's SyncBatchNorm runs on GPUs only)")
    if not 0.0 <= cfg.max_bad_fraction <= 1.0:
        raise ConfigError(f"train: max_bad_fraction must be in [0, 1], got {cfg.max_bad_fraction}")
    if cfg.max_bad_steps < 1:
        raise ConfigError(f"train: max_bad_steps must be >= 1, got {cfg.max_bad_steps}")


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
    "max_bad_fraction",
    "max_bad_steps",
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
    if _saved_architecture(state) != architecture(cfg):
        changed.append(f"architecture of model {cfg.init or cfg.model!r}")
    return changed


def architecture(cfg: TrainConfig) -> ModelConfig:
    """The network a run trains: the ``init`` folder's architecture when given, else the ``model`` size's."""
    return read_architecture(cfg.init) if cfg.init else model_config(cfg.model)


def _saved_architecture(state: dict) -> ModelConfig | None:
    """The checkpoint's model config, keys added to vssl since at their defaults (None: none, or unknown keys)."""
    try:
        return from_dict(ModelConfig, state["model_config"])
    except (KeyError, TypeError, ConfigError):
        return None


def resumable(run_dir: str | Path, cfg: TrainConfig) -> bool:
    """Whether ``run_dir`` holds a checkpoint that ``cfg`` can continue (or no checkpoint at all)."""
    found = latest_checkpoint(Path(run_dir) / "checkpoints")
    return found is None or not run_differences(found[0], cfg)


def _resume_state(cfg: TrainConfig, ckpt_dir: Path, resume: bool) -> tuple[dict[str, Any], Path] | None:
    """The checkpoint to continue and its path (None: start afresh); refuses to overwrite a run or change its
    config."""
    found = latest_checkpoint(ckpt_dir) if resume else None
    if not resume and any(ckpt_dir.glob("*.pt")):
        raise ConfigError(
            f"{ckpt_dir.parent}: holds a checkpoint already; pass --resume to continue it or use a new folder"
        )
    if found is None:
        return None
    state, path = found
    changed = run_differences(state, cfg)  # before loading: a changed architecture would not load
    if changed:
        details = ", ".join(changed)
        raise ConfigError(f"{path}: cannot resume with a different config ({details}); use a new run folder")
    return state, path


def freeze_batchnorm(module: torch.nn.Module) -> None:
    """Put ``module``'s BatchNorm layers in inference mode: running statistics, no update; weights still train.

    A silent clip is an outlier in every training batch; an audio encoder normalised by batch statistics
    can learn to set silence apart only relative to its batch, which inference (running statistics)
    does not reproduce. Training the last part with frozen statistics removes that gap.
    """
    for m in batchnorms(module):
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
    model = create_model(architecture(cfg))
    if state is not None:
        model.load_state_dict(state["model"])
    elif cfg.init:
        model.load_state_dict(load_model(cfg.init).state_dict())  # strict: every key, every shape
        log.info("every weight starts from %s", cfg.init)
    else:
        init_image_trunk(model, cfg.image_init)
    if cfg.sync_batchnorm and env.distributed:
        model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
    model.to(env.device, memory_format=torch.channels_last if cfg.channels_last else torch.contiguous_format)
    if cfg.compile:
        model.imgnet.compile()
        model.audnet.compile()
    return model


def _epoch_batches(loader: DataLoader, accumulate: int) -> Iterator[tuple[list[dict[str, Any]], float]]:
    """The loader's micro-batches in groups of ``accumulate`` (one optimiser step each), with the seconds spent
    waiting for each group."""
    it = iter(loader)
    while True:
        started = time.perf_counter()
        group = list(islice(it, accumulate))
        if len(group) < accumulate:
            return
        yield group, time.perf_counter() - started


def _min_pairs(cfg: TrainConfig, world_size: int) -> int:
    """Readable pairs every process's micro-batch needs for an update: 2 when it is a contrast pool of its own,
    else 1 (the pool spans the processes). With fewer (unreadable items skipped) the step makes no update."""
    return 2 if cfg.contrast == "local" or world_size == 1 else 1


def _nonfinite_entries(model: nn.Module) -> list[str]:
    """Names of the model's parameters and buffers holding a NaN or an infinity."""
    return [k for k, v in model.state_dict().items() if v.is_floating_point() and not bool(torch.isfinite(v).all())]


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
    ckpt_dir = run_dir / "checkpoints"
    ckpt_path = ckpt_dir / LAST
    micro = micro_batch_size(cfg.batch_size, env.world_size, cfg.accumulate)
    pool = _pool_size(cfg, env.world_size)
    if env.is_main:
        remove_temporaries(ckpt_dir)
    found = env.from_main(lambda: _resume_state(cfg, ckpt_dir, resume))
    state = found[0] if found is not None else None
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
        log.info("resumed %s at step %d", found[1], step)
    if env.is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
        write_text_atomic(run_dir / "config.yaml", dump_yaml(cfg))
    items_per_epoch = steps_per_epoch * cfg.batch_size
    skipped = SkippedItems(
        run_dir if env.is_main else None, cfg.max_bad_fraction, items_per_epoch, _part(state, "skipped")
    )
    nonfinite = NonFiniteLosses(cfg.max_bad_steps, _part(state, "nonfinite"), verbose=env.is_main)

    saved_step = step if state is not None else -1

    def last_saved() -> str:
        return f"the last checkpoint is {ckpt_path} (step {saved_step})" if saved_step >= 0 else "no checkpoint yet"

    def checkpoint() -> None:
        nonlocal saved_step
        replicas = env.check_replicas(model)  # every process: the replicas must hold one model
        nonfinite_entries = _nonfinite_entries(model)
        if env.total([len(nonfinite_entries)])[0]:  # every process: all stop together
            names = ", ".join(nonfinite_entries[:3]) or "on another process"
            raise TrainingError(f"step {step}: the model holds non-finite values ({names}): not saved; {last_saved()}")
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
                    "skipped": skipped.state(),
                    "nonfinite": nonfinite.state(),
                },
            )
        saved_step = step

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

    need = _min_pairs(cfg, env.world_size)

    def agree(group: list[dict[str, Any]], epoch: int, stop: bool) -> tuple[bool, bool]:
        """Whether to stop, and whether the step's micro-batches (unreadable items taken out and recorded)
        hold enough pairs on every process: decided by all processes together. When some process skipped
        items, each micro-batch is told every process's number of pairs (for the gather)."""
        records = [r for batch in group for r in batch.pop(UNREADABLE)]
        sizes = [readable_count(batch) for batch in group]
        rows = env.gather_counts([len(records), int(stop), *sizes])  # [process][bad, stop, size per micro-batch]
        if any(row[1] for row in rows):  # the step will run after resume: its unreadable items are recorded then
            return False, True
        if any(row[0] for row in rows):
            skipped.add([r for part in env.gather_objects(records) for r in part], step + 1, epoch)
            for k, batch in enumerate(group):
                batch[SIZES] = [row[2 + k] for row in rows]
        return min(min(row[2:]) for row in rows) >= need, False

    def train_step(group: list[dict[str, Any]], epoch: int) -> dict[str, torch.Tensor]:
        """Forward/backward, then the update; when the loss is not finite on some process, no update and the
        BatchNorm statistics of before the step (the forward may have fed them NaNs)."""
        module.train()
        if step >= freeze_step:
            freeze_batchnorm(model.audnet)
        torch.manual_seed(step_seed(cfg.seed, step, env.rank))
        inputs = [
            {**model_inputs(batch, env.device, model.cfg.image, cfg.channels_last), "sizes": batch.get(SIZES)}
            for batch in group
        ]
        restore_buffers = snapshot_buffers(model)
        out = forward_backward(module, inputs, optimizer, scaler, autocast, step, epoch)
        (bad,) = env.total([~torch.isfinite(out["loss"])])
        if bad:
            optimizer.zero_grad(set_to_none=True)
            restore_buffers()
        else:
            set_learning_rate(optimizer, learning_rate(cfg.lr, cfg.lr_schedule, step, total))
            apply_update(optimizer, scaler)
        nonfinite.record(not bad, step + 1, out["loss"], last_saved())
        return out

    def loader(order: EpochOrder) -> DataLoader:
        return DataLoader(
            SkipUnreadable(dataset),
            batch_size=micro,
            sampler=order,
            num_workers=cfg.num_workers,
            collate_fn=collate_readable,
            pin_memory=env.device.type == "cuda",
            drop_last=True,
            worker_init_fn=ignore_stop_signals,
            prefetch_factor=cfg.prefetch_factor if cfg.num_workers else None,
        )

    def recompute_batchnorm() -> None:
        """PreciseBN over micro-batches of an epoch no training epoch used (seeded: a resumed run gets the same),
        composed as in training (the objective's forward, its negatives included; each process its own)."""
        epoch = cfg.epochs
        dataset.set_epoch(epoch)
        order = EpochOrder(len(dataset), cfg.batch_size, cfg.seed, epoch, 0, env.rank, env.world_size, cfg.accumulate)
        batches = (b for b in loader(order) if readable_count(b) >= 2)
        stats_step = TrainStep(model, objective)  # no gather: the statistics are each process's, as in training
        module.train()
        if freeze_step < total:  # as in the last training steps
            freeze_batchnorm(model.audnet)

        def forward(item: tuple[int, dict[str, Any]]) -> None:
            i, batch = item
            batch.pop(UNREADABLE, None)
            with autocast():
                stats_step(
                    **model_inputs(batch, env.device, model.cfg.image, cfg.channels_last), step=total + i, epoch=epoch
                )

        used = precise_batchnorm(model, forward, enumerate(islice(batches, cfg.precise_bn_batches)))
        log.info("BatchNorm statistics recomputed over %d micro-batches (PreciseBN)", used)

    freeze_step = int(cfg.freeze_audio_norm_at * total)
    log.info(
        "%d steps of %d pairs: %d per process and micro-batch, contrast pool %d", total, cfg.batch_size, micro, pool
    )
    interval_start, interval_step, waited = time.perf_counter(), step, 0.0
    out: dict[str, torch.Tensor] = {}
    stopped: int | None = None
    with StopSignals() as signals:
        while step < total and stopped is None:
            epoch, done_in_epoch = divmod(step, steps_per_epoch)
            dataset.set_epoch(epoch)
            order = EpochOrder(
                len(dataset), cfg.batch_size, cfg.seed, epoch, done_in_epoch, env.rank, env.world_size, cfg.accumulate
            )
            for group, wait in _epoch_batches(loader(order), cfg.accumulate):
                waited += wait
                usable, stop = agree(group, epoch, signals.received is not None)
                if stop:
                    stopped = signals.received or signal.SIGTERM  # SIGTERM: another process received the signal
                    log.warning("%s: stopping at step %d", signal.Signals(stopped).name, step)
                    break
                if usable:
                    out = train_step(group, epoch)
                else:
                    log.warning("step %d: a micro-batch holds fewer than %d readable pairs: no update", step + 1, need)
                step += 1
                bar.update(1)
                if (step % cfg.log_every == 0 or step == total) and out:
                    values = env.mean(out)  # every process takes part
                    elapsed = max(time.perf_counter() - interval_start, 1e-9)
                    values["samples_per_s"] = (step - interval_step) * cfg.batch_size / elapsed
                    values["data_wait"] = waited / elapsed  # fraction of the time rank 0 waited for its loader
                    values["skipped_items"] = skipped.take_interval()
                    values["nonfinite_steps"] = nonfinite.take_interval()
                    if metrics is not None:
                        metrics.write(step, epoch, values)
                    if on_log is not None and env.is_main:
                        on_log(step, values)
                    bar.set_postfix(loss=f"{values['loss']:.3f}")
                    interval_start, interval_step, waited = time.perf_counter(), step, 0.0
                if step % cfg.checkpoint_every == 0 or step % steps_per_epoch == 0:
                    checkpoint()
                if step % steps_per_epoch == 0:
                    skipped.end_epoch(epoch)
    bar.close()
    if saved_step != step:
        checkpoint()
    skipped.write()
    if stopped is not None:
        if metrics is not None:
            metrics.close()
        raise TrainingStopped(stopped, step, ckpt_path)
    if cfg.precise_bn_batches:
        recompute_batchnorm()
    release = run_dir / "model"
    if env.is_main:
        metrics.close()
        model.to("cpu", memory_format=torch.contiguous_format)
        save_release(model, release, extra={"training": to_dict(cfg)})
        log.info("trained %d steps; release written to %s", step, release)
    env.barrier()  # the release exists when train returns, on every process
    return release


def _part(state: dict[str, Any] | None, key: str) -> dict[str, Any] | None:
    """A part of the resume checkpoint (None: no checkpoint, or one written before vssl kept that part)."""
    return None if state is None else state.get(key)
