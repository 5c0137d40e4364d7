"""The trainer: a run of `vssl.train.loop.train` as named stages around one optimiser step.

A `Trainer` keeps the state of a run in attributes (model, objective, optimiser, grad scaler, position,
counts); its stages run in this order, each reading that state and moving it on:

* build (``__init__``): the optimiser, grad scaler and DDP wrapping around the model and objective that
  :mod:`vssl.train.loop` built; `restore` from the resume checkpoint; ``config.yaml``, the counts of
  skipped items and non-finite steps, the logging stage (`vssl.train.metrics.Progress`).
* `fit`: `run_epoch` until the last step or a stop signal. A step is `agree` (unreadable items taken out,
  stop requests: decided by all processes together), `run_step` (``accumulate`` micro-batches under
  autocast; a non-finite loss on any process undoes the step), then `after_step`: a metrics row
  (`log_row`), a `checkpoint`, the epoch's skipped items.
* `finish`: a last `checkpoint`; `TrainingStopped` after a stop signal; else PreciseBN
  (`recompute_batchnorm`) and the `release` folder ``model/``.
"""

from __future__ import annotations

import logging
import signal
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, nullcontext
from itertools import islice
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader

from vssl.atomic import write_text_atomic
from vssl.config import dump_yaml, to_dict
from vssl.data.cache import ShardDataset
from vssl.data.dataset import AVDataset
from vssl.data.skipping import UNREADABLE, SkipUnreadable, collate_readable, readable_count
from vssl.errors import TrainingError, TrainingStopped
from vssl.models.localizer import AVLocalizer
from vssl.models.norm import batchnorms
from vssl.models.release import save_release
from vssl.train.checkpoint import LAST, save_checkpoint
from vssl.train.config import AMP_DTYPES, TrainConfig, contrast_pool
from vssl.train.distributed import DistEnv
from vssl.train.metrics import OnLog, Progress
from vssl.train.precise_bn import precise_batchnorm
from vssl.train.sampler import EpochOrder, micro_batch_size, step_seed
from vssl.train.schedule import learning_rate, set_learning_rate
from vssl.train.signals import StopSignals, ignore_stop_signals
from vssl.train.skips import NonFiniteLosses, SkippedItems
from vssl.train.step import TrainStep, apply_update, forward_backward, model_inputs, snapshot_buffers

__all__ = ["Trainer", "freeze_batchnorm"]

log = logging.getLogger(__name__)

SIZES = "process_sizes"  # a micro-batch's number of pairs on every process, when unreadable items made them differ

Checkpoint = dict[str, Any]
SaveCheckpoint = Callable[[Path, Checkpoint], None]


def freeze_batchnorm(module: torch.nn.Module) -> None:
    """Put ``module``'s BatchNorm layers in inference mode: running statistics, no update; weights still train.

    A silent clip is an outlier in every training batch; an audio encoder normalised by batch statistics
    can learn to set silence apart only relative to its batch, which inference (running statistics)
    does not reproduce. Training the last part with frozen statistics removes that gap.
    """
    for m in batchnorms(module):
        m.eval()


def trainable(model: nn.Module) -> list[nn.Parameter]:
    """The parameters the optimiser updates (a frozen trunk's, ``TrainConfig.freeze_image_trunk``, are not)."""
    return [p for p in model.parameters() if p.requires_grad]


class Trainer:
    """One run: ``Trainer(...).fit()`` trains ``model`` with ``objective`` on ``dataset`` into ``run_dir``.

    ``resume_from``: the checkpoint to continue and its path (its model weights already loaded), None to start
    afresh; ``save(path, checkpoint)`` writes a checkpoint (`vssl.train.checkpoint.save_checkpoint`).
    """

    def __init__(
        self,
        cfg: TrainConfig,
        run_dir: Path,
        env: DistEnv,
        model: AVLocalizer,
        dataset: AVDataset | ShardDataset,
        objective: nn.Module,
        resume_from: tuple[Checkpoint, Path] | None = None,
        on_log: OnLog | None = None,
        save: SaveCheckpoint = save_checkpoint,
    ):
        self.cfg, self.run_dir, self.env, self.save = cfg, run_dir, env, save
        self.model, self.dataset, self.objective = model, dataset, objective
        gather = env.gather if cfg.contrast == "global" and env.distributed else None
        self.module = env.wrap(TrainStep(model, objective, gather))
        fused = {"fused": True} if cfg.fused_adam else {}
        self.optimizer = torch.optim.Adam(trainable(model), lr=cfg.lr, weight_decay=cfg.weight_decay, **fused)
        self.scaler = torch.amp.GradScaler(env.device.type, enabled=cfg.amp == "fp16")
        self.ckpt_path = run_dir / "checkpoints" / LAST
        self.micro = micro_batch_size(cfg.batch_size, env.world_size, cfg.accumulate)
        self.steps_per_epoch = len(dataset) // cfg.batch_size
        self.total = self.steps_per_epoch * cfg.epochs
        self.freeze_step = int(cfg.freeze_audio_norm_at * self.total)  # audio BatchNorm frozen from this step on
        # Readable pairs every process's micro-batch needs for an update: 2 when it is a contrast pool of its own,
        # else 1 (the pool spans the processes). With fewer (unreadable items skipped) the step makes no update.
        self.need = 2 if cfg.contrast == "local" or env.world_size == 1 else 1
        self.step = 0  # optimiser steps taken (the next one is step + 1 in metrics.csv)
        self.saved_step = -1  # the step of the last checkpoint (-1: none yet)
        state = resume_from[0] if resume_from is not None else None
        if resume_from is not None:
            self.restore(*resume_from)
        if env.is_main:
            run_dir.mkdir(parents=True, exist_ok=True)
            write_text_atomic(run_dir / "config.yaml", dump_yaml(cfg))
        items_per_epoch = self.steps_per_epoch * cfg.batch_size
        self.skipped = SkippedItems(
            run_dir if env.is_main else None, cfg.max_bad_fraction, items_per_epoch, _part(state, "skipped")
        )
        self.nonfinite = NonFiniteLosses(cfg.max_bad_steps, _part(state, "nonfinite"), verbose=env.is_main)
        self.progress = Progress(cfg, env, run_dir, self.step, self.total, on_log)
        self.out: dict[str, torch.Tensor] = {}  # the objective's values at the last step run (with enough pairs)
        self.stopped: int | None = None  # the stop signal received (on any process)

    # --- resume and checkpoints ---------------------------------------------------------------------------

    def restore(self, state: Checkpoint, path: Path) -> None:
        """The optimiser, grad scaler and position of checkpoint ``state``, read from ``path``."""
        self.optimizer.load_state_dict(state["optimizer"])
        self.scaler.load_state_dict(state["scaler"])
        self.step = self.saved_step = int(state["step"])
        _warn_pool_change(self.cfg, int(state.get("world_size", 1)), self.env.world_size)
        log.info("resumed %s at step %d", path, self.step)

    def state_dict(self, replicas: list[str]) -> Checkpoint:
        """What a checkpoint holds (its keys are read back by `restore`, `vssl.train.loop` and resumed runs of
        any version: keep them); ``replicas``: every process's parameter digest."""
        return {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scaler": self.scaler.state_dict(),
            "step": self.step,
            "world_size": self.env.world_size,
            "replicas": replicas,
            "config": to_dict(self.cfg),
            "model_config": to_dict(self.model.cfg),
            "skipped": self.skipped.state(),
            "nonfinite": self.nonfinite.state(),
        }

    def checkpoint(self) -> None:
        """``checkpoints/last.pt`` (rank 0), once every process has checked that the replicas hold one model and
        no non-finite value (`TrainingError` otherwise, on every process)."""
        replicas = self.env.check_replicas(self.model)
        entries = _nonfinite_entries(self.model)
        if self.env.total([len(entries)])[0]:
            names = ", ".join(entries[:3]) or "on another process"
            raise TrainingError(
                f"step {self.step}: the model holds non-finite values ({names}): not saved; {self.last_saved()}"
            )
        if self.env.is_main:
            self.save(self.ckpt_path, self.state_dict(replicas))
        self.saved_step = self.step

    def last_saved(self) -> str:
        """Where training would resume from, for error messages."""
        if self.saved_step < 0:
            return "no checkpoint yet"
        return f"the last checkpoint is {self.ckpt_path} (step {self.saved_step})"

    # --- training -----------------------------------------------------------------------------------------

    def fit(self) -> Path:
        """Train from `step` to the end, then `finish`; returns the release folder ``run_dir/model``.

        A stop signal ends the run after the step in progress: `TrainingStopped`, once checkpointed.
        """
        cfg, env = self.cfg, self.env
        log.info(
            "%d steps of %d pairs: %d per process and micro-batch, contrast pool %d",
            self.total,
            cfg.batch_size,
            self.micro,
            contrast_pool(cfg, env.world_size),
        )
        self.progress.restart(self.step)
        with StopSignals() as signals:
            while self.step < self.total and self.stopped is None:
                self.run_epoch(signals)
        return self.finish()

    def run_epoch(self, signals: StopSignals) -> None:
        """The steps left in the current epoch, or those before a stop signal (which sets `stopped`)."""
        cfg, env = self.cfg, self.env
        epoch, done_in_epoch = divmod(self.step, self.steps_per_epoch)
        self.dataset.set_epoch(epoch)
        order = EpochOrder(
            len(self.dataset), cfg.batch_size, cfg.seed, epoch, done_in_epoch, env.rank, env.world_size, cfg.accumulate
        )
        for group, wait in _epoch_batches(self.loader(order), cfg.accumulate):
            self.progress.data_waited(wait)
            usable, stop = self.agree(group, epoch, signals.received is not None)
            if stop:
                self.stopped = signals.received or signal.SIGTERM  # SIGTERM: another process received the signal
                log.warning("%s: stopping at step %d", signal.Signals(self.stopped).name, self.step)
                return
            if usable:
                self.out = self.run_step(group, epoch)
            else:
                log.warning(
                    "step %d: a micro-batch holds fewer than %d readable pairs: no update", self.step + 1, self.need
                )
            self.step += 1
            self.progress.bar.update(1)
            self.after_step(epoch)

    def agree(self, group: list[dict[str, Any]], epoch: int, stop: bool) -> tuple[bool, bool]:
        """Whether the step's micro-batches (unreadable items taken out and recorded) hold enough pairs on every
        process, and whether to stop: decided by all processes together. When some process skipped items, each
        micro-batch is told every process's number of pairs (for the gather)."""
        records = [r for batch in group for r in batch.pop(UNREADABLE)]
        sizes = [readable_count(batch) for batch in group]
        rows = self.env.gather_counts([len(records), int(stop), *sizes])  # [process][bad, stop, size per micro-batch]
        if any(row[1] for row in rows):  # the step will run after resume: its unreadable items are recorded then
            return False, True
        if any(row[0] for row in rows):
            self.skipped.add([r for part in self.env.gather_objects(records) for r in part], self.step + 1, epoch)
            for k, batch in enumerate(group):
                batch[SIZES] = [row[2 + k] for row in rows]
        return min(min(row[2:]) for row in rows) >= self.need, False

    def run_step(self, group: list[dict[str, Any]], epoch: int) -> dict[str, torch.Tensor]:
        """One optimiser step on ``accumulate`` micro-batches: forward/backward, then the update; when the loss is
        not finite on some process, no update and the BatchNorm statistics of before the step (the forward may
        have fed them NaNs). Returns the objective's values, averaged over the micro-batches."""
        cfg, env, model = self.cfg, self.env, self.model
        self.module.train()
        if self.step >= self.freeze_step:
            freeze_batchnorm(model.audnet)
        torch.manual_seed(step_seed(cfg.seed, self.step, env.rank))
        inputs = [
            {**model_inputs(batch, env.device, model.cfg.image, cfg.channels_last), "sizes": batch.get(SIZES)}
            for batch in group
        ]
        restore_buffers = snapshot_buffers(model)
        out = forward_backward(self.module, inputs, self.optimizer, self.scaler, self.autocast, self.step, epoch)
        (bad,) = env.total([~torch.isfinite(out["loss"])])
        if bad:
            self.optimizer.zero_grad(set_to_none=True)
            restore_buffers()
        else:
            set_learning_rate(self.optimizer, learning_rate(cfg.lr, cfg.lr_schedule, self.step, self.total))
            apply_update(self.optimizer, self.scaler)
        self.nonfinite.record(not bad, self.step + 1, out["loss"], self.last_saved())
        return out

    def after_step(self, epoch: int) -> None:
        """A metrics row every ``log_every`` steps and at the last; a checkpoint every ``checkpoint_every`` steps and
        at every epoch end, where the epoch's skipped items are reported too."""
        cfg, step = self.cfg, self.step
        if (step % cfg.log_every == 0 or step == self.total) and self.out:
            self.log_row(epoch)
        epoch_ends = step % self.steps_per_epoch == 0
        if step % cfg.checkpoint_every == 0 or epoch_ends:
            self.checkpoint()
        if epoch_ends:
            self.skipped.end_epoch(epoch)

    def log_row(self, epoch: int) -> None:
        """A metrics row: the last update's values averaged over the processes (every process takes part), the
        throughput, and the items and steps skipped since the previous row."""
        values = self.env.mean(self.out)
        values.update(self.progress.rates(self.step))
        values["skipped_items"] = self.skipped.take_interval()
        values["nonfinite_steps"] = self.nonfinite.take_interval()
        self.progress.write(self.step, epoch, values)

    def loader(self, order: EpochOrder) -> DataLoader:
        """Micro-batches of this process in ``order``; unreadable items come out as records (`SkipUnreadable`)."""
        cfg = self.cfg
        return DataLoader(
            SkipUnreadable(self.dataset),
            batch_size=self.micro,
            sampler=order,
            num_workers=cfg.num_workers,
            collate_fn=collate_readable,
            pin_memory=self.env.device.type == "cuda",
            drop_last=True,
            worker_init_fn=ignore_stop_signals,
            prefetch_factor=cfg.prefetch_factor if cfg.num_workers else None,
        )

    def autocast(self) -> AbstractContextManager:
        """The forward's autocast context (``amp``), or none."""
        dtype = AMP_DTYPES[self.cfg.amp]
        return torch.autocast(self.env.device.type, dtype=dtype) if dtype is not None else nullcontext()

    # --- end ----------------------------------------------------------------------------------------------

    def finish(self) -> Path:
        """A last checkpoint (unless the last step has one) and ``skipped.json``; then `TrainingStopped` when a
        signal stopped the run, else PreciseBN (``precise_bn_batches``) and the release."""
        self.progress.bar.close()
        if self.saved_step != self.step:
            self.checkpoint()
        self.skipped.write()
        if self.stopped is not None:
            self.progress.close()
            raise TrainingStopped(self.stopped, self.step, self.ckpt_path)
        if self.cfg.precise_bn_batches:
            self.recompute_batchnorm()
        return self.release()

    def recompute_batchnorm(self) -> None:
        """PreciseBN over micro-batches of an epoch no training epoch used (seeded: a resumed run gets the same),
        composed as in training (the objective's forward, its negatives included; each process its own)."""
        cfg, env, model = self.cfg, self.env, self.model
        epoch = cfg.epochs
        self.dataset.set_epoch(epoch)
        order = EpochOrder(
            len(self.dataset), cfg.batch_size, cfg.seed, epoch, 0, env.rank, env.world_size, cfg.accumulate
        )
        batches = (b for b in self.loader(order) if readable_count(b) >= 2)
        stats_step = TrainStep(model, self.objective)  # no gather: the statistics are each process's, as in training
        self.module.train()
        if self.freeze_step < self.total:  # as in the last training steps
            freeze_batchnorm(model.audnet)

        def forward(item: tuple[int, dict[str, Any]]) -> None:
            i, batch = item
            batch.pop(UNREADABLE, None)
            with self.autocast():
                inputs = model_inputs(batch, env.device, model.cfg.image, cfg.channels_last)
                stats_step(**inputs, step=self.total + i, epoch=epoch)

        used = precise_batchnorm(model, forward, enumerate(islice(batches, cfg.precise_bn_batches)))
        log.info("BatchNorm statistics recomputed over %d micro-batches (PreciseBN)", used)

    def release(self) -> Path:
        """The release folder ``run_dir/model`` (written by rank 0; it exists on return, on every process)."""
        release = self.run_dir / "model"
        if self.env.is_main:
            self.progress.close()
            self.model.to("cpu", memory_format=torch.contiguous_format)
            save_release(self.model, release, extra={"training": to_dict(self.cfg)})
            log.info("trained %d steps; release written to %s", self.step, release)
        self.env.barrier()
        return release


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


def _nonfinite_entries(model: nn.Module) -> list[str]:
    """Names of the model's parameters and buffers holding a NaN or an infinity."""
    return [k for k, v in model.state_dict().items() if v.is_floating_point() and not bool(torch.isfinite(v).all())]


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


def _part(state: Checkpoint | None, key: str) -> dict[str, Any] | None:
    """A part of the resume checkpoint (None: no checkpoint, or one written before vssl kept that part)."""
    return None if state is None else state.get(key)
