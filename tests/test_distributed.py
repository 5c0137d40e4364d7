"""Data-parallel training: two gloo processes on the CPU, launched by torchrun, against one process.

The comparison model is the ``test`` size with GroupNorm (registered here as ``test_gn``): BatchNorm
statistics depend on how a batch is split over processes, GroupNorm's do not, so with global-batch
contrast two processes must compute the loss one process computes on the same global batch.
This file is also the torchrun worker: run as a script it registers ``test_gn`` and calls ``vssl``.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from vssl.models.registry import MODEL_SIZES

GN_SIZE = "test_gn"


def _groupnorm_test_size():
    base = MODEL_SIZES["test"]
    group = {"image_backbone": replace(base.image_backbone, norm="group")}
    group["audio_backbone"] = replace(base.audio_backbone, norm="group")
    return replace(base, name=GN_SIZE, **group)


if __name__ == "__main__":  # a torchrun worker (see _torchrun)
    from vssl.cli import main

    MODEL_SIZES[GN_SIZE] = _groupnorm_test_size()
    sys.exit(main(sys.argv[1:]))

from support import TINY  # noqa: E402

from vssl.data.synth import generate  # noqa: E402
from vssl.models.objectives import ObjectiveConfig  # noqa: E402
from vssl.models.registry import create_model  # noqa: E402
from vssl.train.checkpoint import load_checkpoint  # noqa: E402
from vssl.train.distributed import parameter_digest  # noqa: E402
from vssl.train.loop import TrainConfig, train  # noqa: E402

RUN = {"model": GN_SIZE, "batch_size": 4, "lr": 1e-3, "log_every": 1, "progress": False}


@pytest.fixture(scope="module")
def groupnorm_size():
    with pytest.MonkeyPatch.context() as mp:
        mp.setitem(MODEL_SIZES, GN_SIZE, _groupnorm_test_size())
        yield GN_SIZE


def _torchrun(out: Path, overrides: dict, *flags: str) -> None:
    """``torchrun --standalone --nproc_per_node 2`` of ``vssl train`` (this file as the worker)."""
    args = [f"{k}={v}" for k, v in overrides.items()]
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", __file__]
    cmd += ["train", "--out", str(out), *flags, *args]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr[-4000:]


def _losses(run: Path) -> dict[int, float]:
    return {int(r["step"]): float(r["loss"]) for r in csv.DictReader(open(run / "metrics.csv"))}


@pytest.fixture(scope="module")
def two_processes(tmp_path_factory, synth_spec, groupnorm_size):
    """One epoch (3 steps of 4 pairs: 2 per process) of SSL-SaN on two processes."""
    out = tmp_path_factory.mktemp("dist") / "run"
    _torchrun(out, {**RUN, "data": synth_spec, "epochs": 1, "objective.name": "sslsan"})
    return out


@pytest.fixture(scope="module")
def one_process(tmp_path_factory, synth_spec, groupnorm_size):
    """The same run in one process, for two epochs."""
    out = tmp_path_factory.mktemp("single") / "run"
    train(TrainConfig(data=synth_spec, epochs=2, objective=ObjectiveConfig(name="sslsan"), **RUN), out)
    return out


def test_both_ranks_hold_identical_parameters(two_processes, groupnorm_size):
    state = load_checkpoint(two_processes / "checkpoints" / "last.pt")
    assert state["step"] == 3 and state["world_size"] == 2
    rank0, rank1 = state["replicas"]  # each process's SHA-256 of its parameters, gathered at the checkpoint
    model = create_model(groupnorm_size)
    model.load_state_dict(state["model"])
    assert rank0 == rank1 == parameter_digest(model)
    assert sorted(p.name for p in (two_processes / "model").iterdir()) == ["config.json", "model.safetensors"]


def test_two_processes_compute_the_loss_of_one_process_on_the_global_batch(two_processes, one_process):
    ours, single = _losses(two_processes), _losses(one_process)
    assert list(ours) == [1, 2, 3]
    assert ours[1] == pytest.approx(single[1], rel=1e-6)  # same weights, same 4 pairs, same negatives
    for step in (2, 3):  # after updates from gradients averaged in another order
        assert ours[step] == pytest.approx(single[step], rel=1e-4)


def test_resume_on_another_world_size_continues_the_schedule(tmp_path, two_processes, one_process, synth_spec):
    run = tmp_path / "run"
    shutil.copytree(two_processes, run)
    cfg = TrainConfig(data=synth_spec, epochs=2, objective=ObjectiveConfig(name="sslsan"), **RUN)
    resumed = train(cfg, run, resume=True)  # stopped after epoch 1 on two processes, continued on one
    ours, single = _losses(run), _losses(one_process)
    assert list(ours) == [1, 2, 3, 4, 5, 6]
    # Steps 4-6 train on the global batches (and negatives) of the one-process run's steps 4-6: the first
    # agrees as closely as the weights do; rounding differences then grow, amplified by Adam on 4-pair batches.
    assert ours[4] == pytest.approx(single[4], rel=1e-4)
    assert [ours[s] for s in (5, 6)] == pytest.approx([single[s] for s in (5, 6)], rel=2e-2)
    a = load_checkpoint(one_process / "checkpoints" / "last.pt")["model"]
    b = load_checkpoint(resumed.parent / "checkpoints" / "last.pt")["model"]
    assert max(float((a[k].float() - b[k].float()).abs().max()) for k in a) < 2e-3  # two Adam steps of lr 1e-3


@pytest.mark.slow
def test_batchnorm_model_with_accumulation_and_local_contrast(tmp_path, synth_spec):
    overrides = {"model": "test", "batch_size": 8, "accumulate": 2, "contrast": "local", "num_workers": 1}
    _torchrun(tmp_path / "run", {**RUN, **overrides, "data": synth_spec, "epochs": 2, "checkpoint_every": 1})
    state = load_checkpoint(tmp_path / "run" / "checkpoints" / "last.pt")
    assert state["step"] == 2 and len(set(state["replicas"])) == 1
    assert list(_losses(tmp_path / "run")) == [1, 2]


@pytest.mark.slow
def test_unreadable_items_leave_the_processes_uneven_and_the_loss_unchanged(tmp_path, groupnorm_size):
    """A skipped item makes one process's share of a micro-batch shorter; the gather still joins the global
    batch a single process would hold (without the item), so the losses agree with one process's."""
    root = generate(TINY, tmp_path / "data", progress=False)
    (root / "audio" / "train_000003.wav").write_bytes(b"RIFF not really a wav")
    keys = {**RUN, "data": f"synth:{root}", "epochs": 1, "objective.name": "sslsan", "max_bad_fraction": 0.1}
    _torchrun(tmp_path / "two", keys)
    single = {k: v for k, v in keys.items() if k not in ("objective.name", "data")}
    cfg = TrainConfig(data=f"synth:{root}", objective=ObjectiveConfig(name="sslsan"), **single)
    train(cfg, tmp_path / "one")
    skipped = json.loads((tmp_path / "two" / "skipped.json").read_text())["items"]
    assert [Path(r["file"]).name for r in skipped] == ["train_000003.wav"]
    ours, one = _losses(tmp_path / "two"), _losses(tmp_path / "one")
    step = skipped[0]["step"]  # the step that trained on 3 pairs, split 1 + 2 or 2 + 1 over the processes
    assert ours[step] == pytest.approx(one[step], rel=1e-4 if step > 1 else 1e-6)
    assert list(ours.values()) == pytest.approx(list(one.values()), rel=1e-4)
