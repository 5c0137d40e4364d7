import csv

import pytest
import torch
import yaml
from safetensors.torch import load_file
from support import TINY, train_cfg

from vssl import load_model
from vssl.data.synth import generate
from vssl.errors import ConfigError
from vssl.models.objectives import ObjectiveConfig
from vssl.train.checkpoint import load_checkpoint
from vssl.train.loop import EpochOrder, TrainConfig, train


@pytest.mark.parametrize("objective", ["ezvsl", "sslsan"])
def test_one_epoch_writes_every_file(tmp_path, synth_spec, objective):
    cfg = train_cfg(synth_spec, objective=ObjectiveConfig(name=objective), checkpoint_every=2)
    release = train(cfg, tmp_path / "run")
    assert (tmp_path / "run" / "config.yaml").exists()
    saved = yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())
    assert saved["objective"]["name"] == objective and saved["data"] == synth_spec
    rows = list(csv.DictReader(open(tmp_path / "run" / "metrics.csv")))
    assert [int(r["step"]) for r in rows] == [1, 2, 3]  # 12 items / batch 4
    assert all(torch.isfinite(torch.tensor(float(r["loss"]))) for r in rows)
    if objective == "sslsan":
        assert "flatness_loss" in rows[0]
    assert load_checkpoint(tmp_path / "run" / "checkpoints" / "last.pt")["step"] == 3
    assert sorted(p.name for p in release.iterdir()) == ["config.json", "model.safetensors"]
    model = load_model(release)
    assert set(load_file(str(release / "model.safetensors"))) == set(model.state_dict())
    assert not list(tmp_path.rglob("*.tmp"))  # atomic writes leave no temporaries


class Crash(Exception):
    pass


def test_resume_after_a_crash_reproduces_the_uninterrupted_run(tmp_path, synth_spec, monkeypatch):
    cfg = train_cfg(synth_spec, epochs=2, objective=ObjectiveConfig(name="sslsan"), checkpoint_every=1)
    full = load_model(train(cfg, tmp_path / "full")).state_dict()

    import vssl.train.loop as loop

    real_save = loop.save_checkpoint

    def save_then_crash(path, state):
        real_save(path, state)
        if state["step"] == 4:  # mid-way through the second epoch
            raise Crash

    monkeypatch.setattr(loop, "save_checkpoint", save_then_crash)
    with pytest.raises(Crash):
        train(cfg, tmp_path / "cut")
    monkeypatch.setattr(loop, "save_checkpoint", real_save)
    assert load_checkpoint(tmp_path / "cut" / "checkpoints" / "last.pt")["step"] == 4
    resumed = load_model(train(cfg, tmp_path / "cut", resume=True)).state_dict()
    rows = list(csv.DictReader(open(tmp_path / "cut" / "metrics.csv")))
    assert [int(r["step"]) for r in rows] == [1, 2, 3, 4, 5, 6]
    for key in full:
        assert torch.equal(full[key], resumed[key]), key


def test_resume_refuses_a_different_run(tmp_path, synth_spec):
    train(train_cfg(synth_spec), tmp_path / "run")
    with pytest.raises(ConfigError, match="lr"):
        train(train_cfg(synth_spec, lr=0.5), tmp_path / "run", resume=True)
    train(train_cfg(synth_spec, epochs=2), tmp_path / "run", resume=True)  # more epochs is a valid continuation


def test_existing_run_needs_resume(tmp_path, synth_spec):
    train(train_cfg(synth_spec), tmp_path / "run")
    with pytest.raises(ConfigError, match="--resume"):
        train(train_cfg(synth_spec), tmp_path / "run")


def test_epoch_order_is_seeded_and_skips_whole_batches():
    a = EpochOrder(10, 3, seed=1, epoch=0).indices
    assert a == EpochOrder(10, 3, seed=1, epoch=0).indices and len(a) == 9
    assert a != EpochOrder(10, 3, seed=1, epoch=1).indices
    assert EpochOrder(10, 3, seed=1, epoch=0, skip_batches=2).indices == a[6:]


def test_bad_configs_are_refused(tmp_path, synth_spec):
    with pytest.raises(ConfigError, match="data"):
        train(TrainConfig(), tmp_path / "a")
    with pytest.raises(ConfigError, match="amp"):
        train(train_cfg(synth_spec, amp="fp8"), tmp_path / "b")
    with pytest.raises(ConfigError, match="fewer than one batch"):
        train(train_cfg(synth_spec, batch_size=64), tmp_path / "c")


def test_cached_dataset_gives_the_same_samples(synth_spec):
    from vssl.data.dataset import AVDataset
    from vssl.data.formats import read_items
    from vssl.models.registry import model_config

    cfg = model_config("test")
    items = read_items(synth_spec, "train")
    plain, cached = (AVDataset(items, cfg.image, cfg.audio, train=True, seed=3, cache=c) for c in (False, True))
    for epoch in (0, 1):
        plain.set_epoch(epoch)
        cached.set_epoch(epoch)
        for i in (0, 5):
            a, b = plain[i], cached[i]
            assert torch.equal(a["image"], b["image"]) and torch.equal(a["wave"], b["wave"])
    plain.set_epoch(0)
    cached.set_epoch(1)
    assert not torch.equal(plain[0]["image"], cached[0]["image"])  # crops stay random per epoch


def test_a_broken_file_stops_training_with_its_name(tmp_path):
    from vssl.errors import DatasetError

    # 12 items and max_bad_fraction=0.01: no unreadable item is allowed (tests/test_train_reliability.py skips some)
    root = generate(TINY, tmp_path / "data", progress=False)
    broken = root / "audio" / "train_000003.wav"
    broken.write_bytes(b"RIFF not really a wav")
    with pytest.raises(DatasetError, match="train_000003.wav"):
        train(train_cfg(f"synth:{root}"), tmp_path / "run")
    (root / "frames" / "train_000005.jpg").write_bytes(b"")
    broken.unlink()
    with pytest.raises(DatasetError, match="train_00000[35]"):
        train(train_cfg(f"synth:{root}"), tmp_path / "run2")


def test_resume_refuses_a_changed_architecture(tmp_path, synth_spec, monkeypatch):
    import dataclasses

    import vssl.train.loop as loop
    from vssl.models.localizer import AVLocalizer
    from vssl.models.registry import model_config

    cfg = train_cfg(synth_spec)
    train(cfg, tmp_path / "run")
    assert loop.resumable(tmp_path / "run", cfg) and loop.resumable(tmp_path / "none", cfg)
    wider = dataclasses.replace(model_config("test"), embed_dim=32)  # its weights would not even load
    monkeypatch.setattr(loop, "model_config", lambda name: wider)
    monkeypatch.setattr(loop, "create_model", lambda name: AVLocalizer(wider))
    assert not loop.resumable(tmp_path / "run", cfg)
    with pytest.raises(ConfigError, match="architecture"):
        train(cfg, tmp_path / "run", resume=True)


def test_bf16_autocast_runs_on_cpu(tmp_path, synth_spec):
    release = train(train_cfg(synth_spec, amp="bf16", objective=ObjectiveConfig(name="sslsan")), tmp_path / "run")
    rows = list(csv.DictReader(open(tmp_path / "run" / "metrics.csv")))
    assert all(torch.isfinite(torch.tensor(float(r["loss"]))) for r in rows)
    assert load_model(release).state_dict()["aud_proj.weight"].dtype == torch.float32  # weights stay fp32


def test_frozen_audio_norm_keeps_running_statistics(tmp_path, synth_spec):
    state = load_model(train(train_cfg(synth_spec, freeze_audio_norm_at=0.0), tmp_path / "run")).state_dict()
    assert torch.all(state["audnet.bn1.running_mean"] == 0) and torch.all(state["audnet.bn1.running_var"] == 1)
    assert not torch.all(state["imgnet.bn1.running_mean"] == 0)  # the image trunk keeps learning its statistics


def test_precise_batchnorm_changes_only_the_released_statistics(tmp_path, synth_spec):
    """The release's BatchNorm statistics are recomputed (frozen audio layers excepted); the weights are those
    of the same run without PreciseBN; a resumed finished run gives the same release."""
    sslsan = ObjectiveConfig(name="sslsan")
    cfg = train_cfg(synth_spec, objective=sslsan, precise_bn_batches=2, freeze_audio_norm_at=0.5)
    precise = load_model(train(cfg, tmp_path / "precise")).state_dict()
    frozen = load_model(
        train(train_cfg(synth_spec, objective=sslsan, freeze_audio_norm_at=0.5), tmp_path / "f")
    ).state_dict()
    stats = ("running_mean", "running_var", "num_batches_tracked")
    for key, value in precise.items():
        if key.endswith(stats) and not key.startswith("audnet."):
            assert not torch.equal(value, frozen[key]), key  # recomputed
        else:  # weights, and the frozen audio statistics, are the run's
            assert torch.equal(value, frozen[key]), key
    again = load_model(train(cfg, tmp_path / "precise", resume=True)).state_dict()
    assert all(torch.equal(again[k], v) for k, v in precise.items())
    with pytest.raises(ConfigError, match="precise_bn_batches"):
        train(train_cfg(synth_spec, precise_bn_batches=-1), tmp_path / "bad")
