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

This module builds a run (the checkpoint to resume, the model, dataset and objective) and decides whether a
checkpoint can be continued; the config is :mod:`vssl.train.config`, the stages of training (step,
checkpoints, logging, PreciseBN, release) are :mod:`vssl.train.trainer`'s `Trainer`.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch

from vssl.config import from_dict, to_dict
from vssl.data.dataset import training_dataset
from vssl.devices import require_device
from vssl.errors import ConfigError
from vssl.models.image_init import init_audio_trunk, init_image_trunk
from vssl.models.localizer import AVLocalizer, ModelConfig
from vssl.models.objectives import create_objective
from vssl.models.registry import create_model, model_config
from vssl.models.release import load_model, read_architecture
from vssl.train.checkpoint import latest_checkpoint, remove_temporaries, save_checkpoint
from vssl.train.config import AMP_DTYPES as AMP_DTYPES  # re-exported: benchmarks import it from here
from vssl.train.config import RESUMABLE_CHANGES, TrainConfig, contrast_pool
from vssl.train.distributed import DistEnv, init_distributed
from vssl.train.metrics import OnLog
from vssl.train.sampler import EpochOrder
from vssl.train.trainer import Trainer, freeze_batchnorm

__all__ = ["EpochOrder", "TrainConfig", "freeze_batchnorm", "resumable", "run_differences", "train"]

log = logging.getLogger(__name__)


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
        init_audio_trunk(model, cfg.audio_init)
    if cfg.freeze_image_trunk:
        model.imgnet.requires_grad_(False)  # the optimiser gets the parameters that train (vssl.train.trainer)
    if cfg.sync_batchnorm and env.distributed:
        model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
    model.to(env.device, memory_format=torch.channels_last if cfg.channels_last else torch.contiguous_format)
    if cfg.compile:
        model.imgnet.compile()
        model.audnet.compile()
    return model


def train(cfg: TrainConfig, run_dir: str | Path, resume: bool = False, on_log: OnLog | None = None) -> Path:
    """Train per ``cfg`` into ``run_dir``; returns the release folder ``run_dir/model``.

    Under ``torchrun`` every process calls this; it joins (and finally leaves) the process group.
    ``on_log(step, values)`` is called on rank 0 with every metrics row (monitoring, benchmarks); the time
    it takes is not counted in the next row's ``samples_per_s``.
    """
    cfg.validate()
    require_device(cfg.device, "train: device")
    env = init_distributed(cfg.device)
    try:
        return _build(cfg, Path(run_dir), resume, env, on_log).fit()
    finally:
        env.close()


def _build(cfg: TrainConfig, run_dir: Path, resume: bool, env: DistEnv, on_log: OnLog | None) -> Trainer:
    """The run's `Trainer`: the checkpoint to resume (read by rank 0, handed to the others), the model with its
    weights, the dataset and the objective, in this order (the order the seeded initialisations draw in)."""
    contrast_pool(cfg, env.world_size)  # checked before anything is read or written
    ckpt_dir = run_dir / "checkpoints"
    if env.is_main:
        remove_temporaries(ckpt_dir)
    found = env.from_main(lambda: _resume_state(cfg, ckpt_dir, resume))
    model = _prepare_model(cfg, env, found[0] if found is not None else None)
    dataset = training_dataset(
        cfg.data, cfg.split, model.cfg.image, model.cfg.audio, seed=cfg.seed, in_memory=cfg.cache
    )
    if len(dataset) < cfg.batch_size:
        raise ConfigError(f"train: {len(dataset)} items is fewer than one batch of {cfg.batch_size}")
    objective = create_objective(cfg.objective, num_samples=model.cfg.audio.num_samples, seed=cfg.seed)
    # save_checkpoint is looked up here, at every run: tests (and tools) wrap this module's name
    return Trainer(cfg, run_dir, env, model, dataset, objective, found, on_log=on_log, save=save_checkpoint)
