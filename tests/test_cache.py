"""``vssl cache``: shards that hold exactly the decoded samples, written atomically and resumably."""

from __future__ import annotations

import csv

import pytest
import torch

import vssl.data.cache as cache_mod
from vssl.audio import log_spectrogram
from vssl.cli import main
from vssl.data.cache import CacheConfig, ShardCache, build_cache
from vssl.data.dataset import AVDataset, training_dataset
from vssl.data.formats import read_items
from vssl.errors import ConfigError, DatasetError
from vssl.models.registry import model_config
from vssl.train.loop import TrainConfig, train
from vssl.train.step import model_inputs

TEST = model_config("test")
FRONT_ENDS = (TEST.image, TEST.audio)  # what build_cache preprocesses for


@pytest.fixture(scope="module")
def int16_cache(tmp_path_factory, synth_spec):
    return build_cache(
        synth_spec, tmp_path_factory.mktemp("c") / "int16", CacheConfig(model="test", shard_size=5), *FRONT_ENDS
    )


def _inputs(sample: dict) -> dict:
    """One sample through the trainer's input path (batched, on the CPU)."""
    batch = {k: v[None] if isinstance(v, torch.Tensor) else v for k, v in sample.items()}
    return model_inputs(batch, torch.device("cpu"), TEST.image)


def test_cached_epochs_hold_exactly_the_decoded_samples(synth_spec, int16_cache):
    decoded = AVDataset(read_items(synth_spec, "train"), TEST.image, TEST.audio, train=True, seed=7)
    cached = training_dataset(f"cache:{int16_cache}", "train", TEST.image, TEST.audio, seed=7)
    assert len(cached) == len(decoded) == 12
    for epoch in (0, 1):
        decoded.set_epoch(epoch)
        cached.set_epoch(epoch)
        for i in (0, 4, 5, 11):  # both ends of the first two shards (5 items each) and the last, short one
            want, got = decoded[i], _inputs(cached[i])
            assert got["images"][0].shape == want["image"].shape
            assert torch.equal(got["images"][0], want["image"]), (epoch, i)  # same crop, flip, arithmetic
            assert torch.equal(got["waves"][0], want["wave"]), (epoch, i)  # 16-bit sources are stored exactly
    cached.set_epoch(0)
    first = _inputs(cached[0])["images"]
    cached.set_epoch(1)
    assert not torch.equal(first, _inputs(cached[0])["images"])  # augmentation stays random per epoch


@pytest.mark.parametrize("fmt,tolerance", [("float16", 1e-3), ("spectrogram", 2e-3)])
def test_compact_audio_formats_are_close(tmp_path, synth_spec, fmt, tolerance):
    root = build_cache(synth_spec, tmp_path / fmt, CacheConfig(model="test", audio=fmt), *FRONT_ENDS, progress=False)
    decoded = AVDataset(read_items(synth_spec, "train"), TEST.image, TEST.audio, train=True)
    got = _inputs(training_dataset(f"cache:{root}", "train", TEST.image, TEST.audio)[3])
    want = decoded[3]["wave"]
    if fmt == "spectrogram":
        assert got["specs"][0].dtype == torch.float32 and got["waves"].shape == (1, 0)
        assert torch.allclose(got["specs"][0], log_spectrogram(want, TEST.audio), atol=tolerance)
    else:
        assert torch.allclose(got["waves"][0], want, atol=tolerance)


def test_an_interrupted_cache_is_finished_by_running_it_again(tmp_path, synth_spec, int16_cache, monkeypatch):
    real_finish = cache_mod._ShardWriter.finish

    def finish_then_crash(self):
        if self.final.name == "shard-00001":
            raise KeyboardInterrupt
        real_finish(self)

    monkeypatch.setattr(cache_mod._ShardWriter, "finish", finish_then_crash)
    cfg = CacheConfig(model="test", shard_size=5, workers=1)
    with pytest.raises(KeyboardInterrupt):
        build_cache(synth_spec, tmp_path / "c", cfg, *FRONT_ENDS, progress=False)
    assert (tmp_path / "c" / "shard-00000").is_dir() and not (tmp_path / "c" / "shard-00001").exists()
    with pytest.raises(DatasetError, match="incomplete cache"):
        ShardCache(tmp_path / "c")
    monkeypatch.setattr(cache_mod._ShardWriter, "finish", real_finish)
    build_cache(synth_spec, tmp_path / "c", cfg, *FRONT_ENDS, progress=False)
    files = sorted(p.relative_to(int16_cache) for p in int16_cache.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(tmp_path / "c") for p in (tmp_path / "c").rglob("*") if p.is_file())
    for f in files:  # no temporaries left, and the same bytes as an uninterrupted build
        assert (tmp_path / "c" / f).read_bytes() == (int16_cache / f).read_bytes(), f


def test_a_cache_of_something_else_is_refused(tmp_path, synth_spec, int16_cache):
    with pytest.raises(ConfigError, match="audio_format"):
        build_cache(synth_spec, int16_cache, CacheConfig(model="test", shard_size=5, audio="float16"), *FRONT_ENDS)
    small = model_config("small")
    with pytest.raises(ConfigError, match="70 px, this model trains on 123"):  # test frames are 70 px high
        training_dataset(f"cache:{int16_cache}", "train", small.image, small.audio)
    with pytest.raises(ConfigError, match="split"):
        training_dataset(f"cache:{int16_cache}", "test", TEST.image, TEST.audio)
    with pytest.raises(DatasetError, match="not a vssl shard cache"):
        training_dataset(f"cache:{tmp_path}", "train", TEST.image, TEST.audio)


def test_training_on_the_cache_equals_training_on_the_files(tmp_path, synth_spec, capsys):
    assert main(["cache", synth_spec, str(tmp_path / "cache"), "--model", "test", "--no-progress"]) == 0
    assert f"data spec: cache:{tmp_path / 'cache'}" in capsys.readouterr().out
    runs = {}
    for name, spec in (("files", synth_spec), ("cache", f"cache:{tmp_path / 'cache'}")):
        cfg = TrainConfig(data=spec, model="test", epochs=1, batch_size=4, lr=1e-3, progress=False, log_every=1)
        runs[name] = train(cfg, tmp_path / name).parent
    rows = {k: [r["loss"] for r in csv.DictReader(open(v / "metrics.csv"))] for k, v in runs.items()}
    assert rows["cache"] == rows["files"] and len(rows["files"]) == 3  # bit for bit


def test_cache_command_has_help(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["cache", "--help"])
    assert exc.value.code == 0 and "--shard-size" in capsys.readouterr().out
