"""Training that survives bad inputs and interruptions: unreadable items skipped and reported (never replaced),
non-finite losses skipped and bounded, verified checkpoints with a fallback, SIGTERM/SIGINT stops that resume,
and ``kill -9`` at a random moment followed by ``--resume`` ending with the uninterrupted run's weights, bit for bit.
"""

from __future__ import annotations

import csv
import json
import os
import random
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from support import TINY, train_cfg
from torch import nn
from torch.utils.data import DataLoader

from vssl import load_model
from vssl.config import apply_overrides
from vssl.data.dataset import AVDataset
from vssl.data.formats import read_items
from vssl.data.skipping import SkipUnreadable, collate_readable
from vssl.data.synth import generate
from vssl.errors import CheckpointError, ConfigError, DatasetError, TrainingError, TrainingStopped
from vssl.models.objectives import ObjectiveConfig
from vssl.models.registry import create_model, model_config
from vssl.train.checkpoint import latest_checkpoint, load_checkpoint, save_checkpoint
from vssl.train.loop import TrainConfig, train
from vssl.train.metrics import MetricsLog
from vssl.train.sampler import EpochOrder
from vssl.train.signals import StopSignals
from vssl.train.skips import SKIPPED_FILE

BROKEN = ("train_000003", "train_000007")


@pytest.fixture(scope="module")
def broken_spec(tmp_path_factory):
    """The tiny benchmark with one unreadable wav (train_000003) and one unreadable jpg (train_000007)."""
    root = generate(TINY, tmp_path_factory.mktemp("broken"), progress=False)
    (root / "audio" / f"{BROKEN[0]}.wav").write_bytes(b"RIFF not really a wav")
    (root / "frames" / f"{BROKEN[1]}.jpg").write_bytes(b"\xff\xd8 truncated")
    return f"synth:{root}"


def _rows(run: Path) -> list[dict[str, str]]:
    return list(csv.DictReader(open(run / "metrics.csv")))


def _weights(release: Path) -> dict[str, torch.Tensor]:
    return load_model(release).state_dict()


def _assert_identical(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


# --- unreadable items ---------------------------------------------------------------------------------------


def test_unreadable_items_leave_their_batch_shorter_in_worker_processes(broken_spec):
    cfg = model_config("test")
    items = read_items(broken_spec, "train")
    bad = {i for i, item in enumerate(items) if item.id in BROKEN}
    dataset = SkipUnreadable(AVDataset(items, cfg.image, cfg.audio, train=True))
    order = EpochOrder(len(items), 4, seed=0, epoch=0)
    loader = DataLoader(dataset, batch_size=4, sampler=order, num_workers=2, collate_fn=collate_readable)
    seen, records = [], []
    for batch, expected in zip(loader, [order.indices[k : k + 4] for k in range(0, 12, 4)], strict=True):
        kept = [i for i in expected if i not in bad]
        assert batch["index"].tolist() == kept  # the same items, in order: nothing stands in for a broken one
        assert batch["image"].shape[0] == batch["wave"].shape[0] == len(kept)
        seen += kept
        records += batch["unreadable"]
    assert sorted(seen + [r["index"] for r in records]) == list(range(12))
    assert {Path(r["file"]).stem for r in records} == set(BROKEN)
    assert all(r["error"].startswith(r["file"]) for r in records)


def test_training_skips_and_reports_unreadable_items(tmp_path, broken_spec):
    cfg = train_cfg(broken_spec, epochs=2, max_bad_fraction=0.2)  # 2 of 12 allowed
    release = train(cfg, tmp_path / "run")
    rows = _rows(tmp_path / "run")
    per_epoch = {e: sum(int(float(r["skipped_items"])) for r in rows if int(r["epoch"]) == e) for e in (0, 1)}
    assert per_epoch == {0: 2, 1: 2} and all(float(r["nonfinite_steps"]) == 0 for r in rows)
    report = json.loads((tmp_path / "run" / SKIPPED_FILE).read_text())
    assert report["skipped_per_epoch"] == {"0": 2, "1": 2} and report["items_per_epoch"] == 12
    assert {Path(r["file"]).stem for r in report["items"]} == set(BROKEN)
    assert all((r["step"] - 1) // 3 == r["epoch"] for r in report["items"])  # steps 1-3, 4-6
    # worker processes skip the same items: the same weights, bit for bit
    with_workers = train(train_cfg(broken_spec, epochs=2, max_bad_fraction=0.2, num_workers=2), tmp_path / "w")
    _assert_identical(_weights(release), _weights(with_workers))


def test_too_many_unreadable_items_stop_the_run_with_counts_and_files(tmp_path, broken_spec):
    with pytest.raises(DatasetError, match=r"2 unreadable items .* max_bad_fraction=0.1 .* 12 items allows \(1\)") as e:
        train(train_cfg(broken_spec, max_bad_fraction=0.1), tmp_path / "run")
    assert all(name in str(e.value) for name in BROKEN) and SKIPPED_FILE in str(e.value)
    assert len(json.loads((tmp_path / "run" / SKIPPED_FILE).read_text())["items"]) == 2


def test_policy_keys_are_checked_and_may_change_on_resume(tmp_path, synth_spec):
    with pytest.raises(ConfigError, match="max_bad_fraction"):
        train(train_cfg(synth_spec, max_bad_fraction=1.5), tmp_path / "a")
    with pytest.raises(ConfigError, match="max_bad_steps"):
        train(train_cfg(synth_spec, max_bad_steps=0), tmp_path / "b")
    train(train_cfg(synth_spec), tmp_path / "c")
    train(train_cfg(synth_spec, epochs=2, max_bad_fraction=0.5, max_bad_steps=2), tmp_path / "c", resume=True)


# --- non-finite losses --------------------------------------------------------------------------------------


class _LossOverride(nn.Module):
    """An objective whose loss is multiplied by ``steps[step]`` (NaN, inf) at the given steps."""

    def __init__(self, inner: nn.Module, steps: dict[int, float]):
        super().__init__()
        self.inner, self.steps = inner, steps

    def forward(self, model, batch):
        out = self.inner(model, batch)
        if batch.step in self.steps:
            out = {**out, "loss": out["loss"] * self.steps[batch.step]}
        return out


def _override_loss(monkeypatch, steps: dict[int, float]) -> None:
    import vssl.train.loop as loop

    real = loop.create_objective
    monkeypatch.setattr(loop, "create_objective", lambda *a, **kw: _LossOverride(real(*a, **kw), steps))


def test_a_nonfinite_loss_skips_its_update_and_is_counted(tmp_path, synth_spec, monkeypatch):
    _override_loss(monkeypatch, {1: float("nan"), 4: float("inf")})
    train(train_cfg(synth_spec, epochs=2), tmp_path / "run")
    rows = _rows(tmp_path / "run")
    assert [float(r["nonfinite_steps"]) for r in rows] == [0, 1, 0, 0, 1, 0]
    assert rows[1]["loss"] == "nan" and rows[4]["loss"] == "inf"
    state = load_checkpoint(tmp_path / "run" / "checkpoints" / "last.pt")
    assert state["nonfinite"] == {"in_row": 0, "total": 2}
    adam_steps = {float(s["step"]) for s in state["optimizer"]["state"].values()}
    assert adam_steps == {4.0}  # 6 steps, 2 without an update


def test_nonfinite_losses_in_a_row_stop_the_run_with_the_weights_before_them(tmp_path, synth_spec, monkeypatch):
    _override_loss(monkeypatch, {0: float("nan"), 1: float("nan"), 2: float("inf")})
    with pytest.raises(TrainingError, match=r"steps 1-3: 3 non-finite losses in a row \(max_bad_steps=3\)"):
        train(train_cfg(synth_spec, max_bad_steps=3, checkpoint_every=1), tmp_path / "run")
    state = load_checkpoint(tmp_path / "run" / "checkpoints" / "last.pt")
    torch.manual_seed(0)
    _assert_identical(state["model"], create_model("test").state_dict())  # no update, BatchNorm statistics restored
    assert state["step"] == 2 and state["nonfinite"]["in_row"] == 2


# --- checkpoints --------------------------------------------------------------------------------------------


def _flip_a_weight_byte(path: Path, tensor: torch.Tensor) -> None:
    data = bytearray(path.read_bytes())
    where = bytes(data).find(tensor.contiguous().numpy().tobytes()[:32])
    assert where > 0
    data[where + 5] ^= 0x40
    path.write_bytes(bytes(data))


def test_damaged_checkpoints_are_refused_by_name_and_resume_uses_the_previous_one(tmp_path, synth_spec, caplog):
    cfg = train_cfg(synth_spec, epochs=2, checkpoint_every=1, objective=ObjectiveConfig(name="sslsan"))
    full = _weights(train(cfg, tmp_path / "full"))
    run = tmp_path / "cut"
    train(train_cfg(synth_spec, epochs=1, checkpoint_every=1, objective=ObjectiveConfig(name="sslsan")), run)
    ckpt = run / "checkpoints"
    last, previous = ckpt / "last.pt", ckpt / "last.previous.pt"
    assert load_checkpoint(last)["step"] == 3 and load_checkpoint(previous)["step"] == 2
    _flip_a_weight_byte(last, load_checkpoint(last)["model"]["aud_proj.weight"])
    with pytest.raises(CheckpointError, match=r"last\.pt: damaged checkpoint .*SHA-256"):
        load_checkpoint(last)
    state, path = latest_checkpoint(ckpt)
    assert path == previous and state["step"] == 2 and "previous checkpoint" in caplog.text
    _assert_identical(full, _weights(train(cfg, run, resume=True)))  # one step repeated, same end
    last.write_bytes(last.read_bytes()[:1000])  # truncated
    with pytest.raises(CheckpointError, match=r"last\.pt: not a readable PyTorch checkpoint"):
        load_checkpoint(last)
    previous.write_bytes(b"")
    with pytest.raises(CheckpointError, match="no readable checkpoint in .*last.pt.*last.previous.pt"):
        train(cfg, run, resume=True)


class _Opaque:
    pass


def test_a_checkpoint_needing_arbitrary_unpickling_is_refused(tmp_path):
    torch.save({"format": "vssl-train-checkpoint/1", "step": 1, "extra": _Opaque()}, tmp_path / "last.pt")
    with pytest.raises(CheckpointError, match=r"last.pt: .*\(test_train_reliability._Opaque\).*weights_only=True"):
        load_checkpoint(tmp_path / "last.pt")
    save_checkpoint(tmp_path / "ok.pt", {"step": 1, "t": torch.arange(3, dtype=torch.bfloat16)})
    assert load_checkpoint(tmp_path / "ok.pt")["step"] == 1


def test_a_half_written_metrics_row_is_dropped_on_resume(tmp_path):
    (tmp_path / "metrics.csv").write_text("step,epoch,loss\r\n1,0,0.5\r\n2,0,0.4\r\n3,0,0.3")  # killed mid-row
    MetricsLog(tmp_path, resume_step=10).close()
    assert (tmp_path / "metrics.csv").read_text().splitlines() == ["step,epoch,loss", "1,0,0.5", "2,0,0.4"]


def test_resume_reproduces_slavc_s_dropout_and_momentum_encoders(tmp_path, synth_spec):
    cfg = train_cfg(
        synth_spec, model="slavc_test", epochs=2, checkpoint_every=1, objective=ObjectiveConfig(name="slavc")
    )
    full = _weights(train(cfg, tmp_path / "full"))
    train(replace(cfg, epochs=1), tmp_path / "cut")
    _assert_identical(full, _weights(train(cfg, tmp_path / "cut", resume=True)))


# --- signals and kill -9: `python -m vssl.cli train` in a subprocess -----------------------------------------

RUN = {"model": "test", "epochs": 6, "batch_size": 4, "lr": 1e-3, "log_every": 1, "progress": False}
RUN.update({"checkpoint_every": 2, "objective.name": "fnac"})  # FNAC: its dropout draws must resume too


def _config(spec: str, **overrides) -> TrainConfig:
    return apply_overrides(TrainConfig(data=spec), [f"{k}={v}" for k, v in {**RUN, **overrides}.items()])


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory, synth_spec) -> dict[str, torch.Tensor]:
    return _weights(train(_config(synth_spec), tmp_path_factory.mktemp("uninterrupted") / "run"))


def _start(spec: str, run: Path, **overrides) -> subprocess.Popen:
    """``python -m vssl.cli train`` in its own session (so a signal to its group reaches no one else)."""
    keys = {**RUN, "data": spec, **overrides}
    cmd = [sys.executable, "-m", "vssl.cli", "train", "--out", str(run), *[f"{k}={v}" for k, v in keys.items()]]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)


def _wait_for_checkpoint(proc: subprocess.Popen, run: Path, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while not (run / "checkpoints" / "last.pt").exists():
        assert proc.poll() is None, proc.communicate()[1][-3000:]
        assert time.monotonic() < deadline, "no checkpoint written"
        time.sleep(0.01)


def _wait_for_row(proc: subprocess.Popen, run: Path, step: int, timeout: float = 300) -> None:
    """Until ``metrics.csv`` holds the row of ``step`` (written right after the step)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if any(int(r["step"]) >= step for r in _rows(run)):
                return
        except (OSError, KeyError, ValueError):  # no file yet, or a header being written
            pass
        assert proc.poll() is None, proc.communicate()[1][-3000:]
        assert time.monotonic() < deadline, f"step {step} never logged"
        time.sleep(0.005)


def _stopped_cleanly(proc: subprocess.Popen, sig: signal.Signals, run: Path) -> None:
    """The process exited with 128 + ``sig`` after checkpointing the last step it took, without a release."""
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 128 + sig, err[-3000:]
    assert f"stopped by {sig.name} at step" in err and "Traceback" not in err
    step = load_checkpoint(run / "checkpoints" / "last.pt")["step"]
    assert int(_rows(run)[-1]["step"]) == step < 18  # nothing lost: the checkpoint is at the last step taken
    assert not (run / "model").exists()


def test_kill_9_at_a_random_moment_then_resume_gives_the_uninterrupted_weights(tmp_path, synth_spec, uninterrupted):
    run = tmp_path / "run"
    proc = _start(synth_spec, run)
    moment = (random.randint(3, 14), random.uniform(0.0, 0.03))  # after this step's row, plus part of a step
    _wait_for_row(proc, run, moment[0])
    time.sleep(moment[1])
    proc.kill()  # SIGKILL: no handler, no cleanup; mid-step, mid-row or mid-checkpoint
    proc.communicate()
    assert not (run / "model").exists(), f"the run finished before the kill at {moment}"
    # read as resume reads it: last.pt, or the previous checkpoint when the kill fell between the two renames of a
    # checkpoint write (last.pt already stepped back, the new one not yet in place: one more interval lost)
    state, source = latest_checkpoint(run / "checkpoints")
    step, lost = state["step"], 2 if source.name == "last.pt" else 4
    logged = max(int(r["step"]) for r in _rows(run))
    assert 0 < step and logged - step <= lost, (moment, source.name, step, logged)
    _assert_identical(uninterrupted, _weights(train(_config(synth_spec), run, resume=True)))
    assert [int(r["step"]) for r in _rows(run)] == list(range(1, 19))
    assert not list(run.rglob("*.tmp"))  # the killed run's temporaries are cleared on resume


def test_sigterm_writes_a_final_checkpoint_and_resume_continues_exactly(tmp_path, synth_spec, uninterrupted):
    run = tmp_path / "run"
    proc = _start(synth_spec, run)
    _wait_for_checkpoint(proc, run)
    proc.send_signal(signal.SIGTERM)
    _stopped_cleanly(proc, signal.SIGTERM, run)
    _assert_identical(uninterrupted, _weights(train(_config(synth_spec), run, resume=True)))


@pytest.mark.slow
def test_ctrl_c_with_loader_workers_stops_cleanly(tmp_path, broken_spec):
    keys = {"num_workers": 2, "max_bad_fraction": 0.2}
    run = tmp_path / "run"
    proc = _start(broken_spec, run, **keys)
    _wait_for_checkpoint(proc, run)
    os.killpg(proc.pid, signal.SIGINT)  # every process of the group, loader workers included, as Ctrl-C does
    _stopped_cleanly(proc, signal.SIGINT, run)
    full = _weights(train(_config(broken_spec, **keys), tmp_path / "full"))
    _assert_identical(full, _weights(train(_config(broken_spec, **keys), run, resume=True)))


def test_stop_signals_are_restored_and_a_second_one_acts_at_once():
    before = signal.getsignal(signal.SIGINT)
    with StopSignals() as stop:
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.01)
        assert stop.received == signal.SIGINT
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(1)
    assert signal.getsignal(signal.SIGINT) is before
    with pytest.raises(TrainingStopped, match="SIGTERM at step 3"):
        raise TrainingStopped(signal.SIGTERM, 3, "run/checkpoints/last.pt")
