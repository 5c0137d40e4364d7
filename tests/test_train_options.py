"""The trainer's scale and speed options in one process: the per-process schedule, gradient accumulation,
channels-last, torch.compile, and the checks on their combinations."""

from __future__ import annotations

import csv
from contextlib import nullcontext

import pytest
import torch
from support import train_cfg

from vssl.config import to_dict
from vssl.errors import ConfigError
from vssl.models.objectives import ObjectiveConfig, create_objective
from vssl.models.objectives.base import Batch, gather_pairs
from vssl.models.registry import create_model, model_config
from vssl.train.loop import TrainConfig, run_differences, train
from vssl.train.sampler import EpochOrder, micro_batch_size
from vssl.train.schedule import learning_rate
from vssl.train.step import TrainStep, apply_update, forward_backward


def _losses(run) -> list[float]:
    return [float(r["loss"]) for r in csv.DictReader(open(run / "metrics.csv"))]


@pytest.mark.parametrize("world,accumulate", [(2, 1), (4, 1), (2, 3), (1, 3)])
def test_every_world_size_trains_each_step_on_the_same_global_batch(world, accumulate):
    n, batch = 50, 12
    single = EpochOrder(n, batch, seed=5, epoch=2).indices
    parts = [EpochOrder(n, batch, 5, 2, rank=r, world_size=world, accumulate=accumulate).indices for r in range(world)]
    micro = batch // (world * accumulate)
    for step in range(n // batch):
        got = []
        for m in range(accumulate):  # micro-batch m of the step: every rank's slice, in rank order
            start = (step * accumulate + m) * micro
            got += [i for part in parts for i in part[start : start + micro]]
        assert got == single[step * batch : (step + 1) * batch]
    last = world - 1
    skipped = EpochOrder(n, batch, 5, 2, skip_batches=1, rank=last, world_size=world, accumulate=accumulate).indices
    assert skipped == parts[last][batch // world :]


def test_schedules_that_do_not_split_are_refused(tmp_path, synth_spec):
    with pytest.raises(ConfigError, match="split evenly"):
        micro_batch_size(12, world_size=5)
    with pytest.raises(ConfigError, match="at least 2"):
        train(train_cfg(synth_spec, accumulate=4), tmp_path / "a")  # micro-batches of one pair: nothing to contrast
    with pytest.raises(ConfigError, match="contrast"):
        train(train_cfg(synth_spec, contrast="everything"), tmp_path / "b")
    with pytest.raises(ConfigError, match="sync_batchnorm"):
        train(train_cfg(synth_spec, sync_batchnorm=True), tmp_path / "c")
    with pytest.raises(ConfigError, match=r"lr_schedule='step' is not one of \['constant', 'cosine'\]"):
        train(train_cfg(synth_spec, lr_schedule="step"), tmp_path / "d")


def test_cosine_schedule_decays_to_zero_by_the_last_step(tmp_path, synth_spec):
    assert [learning_rate(1.0, "cosine", s, 4) for s in range(5)] == pytest.approx(
        [1, 0.853553, 0.5, 0.146447, 0], abs=1e-6
    )
    assert learning_rate(0.1, "constant", 3, 4) == 0.1
    release = train(train_cfg(synth_spec, lr_schedule="cosine", lr=1e-3, batch_size=4, epochs=2), tmp_path / "run")
    state = torch.load(release.parent / "checkpoints" / "last.pt", weights_only=True)
    total = int(state["step"])  # 12 pairs, 4 per step, 2 epochs
    assert total == 6 and state["optimizer"]["param_groups"][0]["lr"] == pytest.approx(
        1e-3 * learning_rate(1, "cosine", 5, 6)
    )


def test_without_a_gather_the_batch_is_all_there_is():
    img, aud = torch.randn(3, 4, 2, 2), torch.randn(3, 4)
    batch = Batch(images=torch.zeros(3), waves=torch.zeros(3), step=0)
    assert gather_pairs(batch, img, aud) == (img, aud)
    doubled = Batch(images=torch.zeros(3), waves=torch.zeros(3), step=0, gather=lambda x: torch.cat([x, x + 1]))
    g_img, g_aud = gather_pairs(doubled, img, aud)  # the negative clips are not gathered: every process has them
    assert g_img.shape == (6, 4, 2, 2) and torch.equal(g_aud, torch.cat([aud, aud + 1]))


def test_accumulated_micro_batches_update_as_their_mean_loss():
    torch.manual_seed(0)
    model = create_model("test")
    step = TrainStep(model, create_objective(ObjectiveConfig(name="ezvsl"), model.cfg.audio.num_samples, seed=0))
    g = torch.Generator().manual_seed(1)
    micro = [{"images": torch.randn(2, 3, 64, 64, generator=g), "waves": torch.rand(2, 48000, generator=g) - 0.5}]
    micro.append({"images": torch.randn(2, 3, 64, 64, generator=g), "waves": torch.rand(2, 48000, generator=g) - 0.5})
    for m in micro:
        m["specs"] = None
    start = {k: v.clone() for k, v in model.state_dict().items()}
    sgd = torch.optim.SGD(model.parameters(), lr=1.0)
    scaler = torch.amp.GradScaler("cpu", enabled=False)
    forward_backward(step, micro, sgd, scaler, nullcontext, 3, 0)
    apply_update(sgd, scaler)
    updated = {k: v.clone() for k, v in model.state_dict().items()}
    model.load_state_dict(start)
    model.zero_grad()
    (sum(step(**m, step=3, epoch=0)["loss"] for m in micro) / 2).backward()
    for name, p in model.named_parameters():
        assert torch.allclose(start[name] - p.grad, updated[name], atol=1e-6), name


def test_accumulation_keeps_the_step_count(tmp_path, synth_spec):
    train(train_cfg(synth_spec, batch_size=6, accumulate=2), tmp_path / "run")
    rows = list(csv.DictReader(open(tmp_path / "run" / "metrics.csv")))
    assert [(int(r["step"]), int(r["epoch"])) for r in rows] == [(1, 0), (2, 0)]  # 12 pairs, 6 per step
    assert all(0.0 <= float(r["data_wait"]) <= 1.0 and float(r["samples_per_s"]) > 0 for r in rows)


def test_channels_last_trains_like_the_default_layout(tmp_path, synth_spec):
    plain = _losses(train(train_cfg(synth_spec), tmp_path / "plain").parent)
    nhwc_release = train(train_cfg(synth_spec, channels_last=True), tmp_path / "nhwc")
    nhwc = _losses(nhwc_release.parent)
    # other convolution kernels: the same first loss up to rounding, then steps that drift apart a little
    assert nhwc[0] == pytest.approx(plain[0], rel=1e-4) and nhwc == pytest.approx(plain, rel=1e-2)
    assert (nhwc_release / "model.safetensors").exists()  # written in the standard layout


@pytest.mark.slow
def test_compiled_trunks_train(tmp_path, synth_spec):  # torch._inductor is part of torch: no skip
    plain = _losses(train(train_cfg(synth_spec, objective=ObjectiveConfig(name="ezvsl")), tmp_path / "plain").parent)
    compiled = _losses(
        train(train_cfg(synth_spec, objective=ObjectiveConfig(name="ezvsl"), compile=True), tmp_path / "c").parent
    )
    assert compiled == pytest.approx(plain, rel=1e-3)


def test_checkpoints_of_older_versions_resume_with_the_new_options_at_their_defaults():
    cfg = TrainConfig(data="synth:x", model="test")
    new = (
        "contrast",
        "accumulate",
        "channels_last",
        "compile",
        "fused_adam",
        "sync_batchnorm",
        "prefetch_factor",
        "lr_schedule",
    )
    architecture = to_dict(model_config("test"))
    architecture["audio"] = {k: v for k, v in architecture["audio"].items() if k not in ("features", "n_mels")}
    old = {"config": {k: v for k, v in to_dict(cfg).items() if k not in new}, "model_config": architecture}
    assert run_differences(old, cfg) == []
    assert run_differences(old, TrainConfig(data="synth:x", model="test", accumulate=2)) == ["accumulate: 1 -> 2"]
    assert run_differences(old, TrainConfig(data="synth:x", model="small")) == [
        "model: 'test' -> 'small'",
        "architecture of model 'small'",
    ]
