"""Tests of the synthetic benchmark: determinism, layout, reader, and that the data means what it says."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from PIL import Image

from vssl.data.synth import SPLITS, SynthConfig, generate, read_synth, render_sample, synth_class_names
from vssl.data.synth import writer as synth_writer
from vssl.errors import ConfigError, DatasetError

TINY = SynthConfig(n_train=6, n_calibration=2, n_test=3, image_size=96)


@pytest.fixture(scope="module")
def tiny_root(tmp_path_factory) -> Path:
    return generate(TINY, tmp_path_factory.mktemp("synth") / "tiny", progress=False)


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_generate_is_byte_identical_for_the_same_seed(tiny_root, tmp_path):
    other = generate(TINY, tmp_path / "again", progress=False)
    first, second = _files(tiny_root), _files(other)
    assert first.keys() == second.keys()
    assert len([k for k in first if k.startswith("audio/")]) == 11
    for name in first:
        assert first[name] == second[name], name


def test_a_different_seed_gives_different_data(tiny_root, tmp_path):
    other = generate(dataclasses.replace(TINY, seed=1), tmp_path / "seed1", progress=False)
    assert (tiny_root / "annotations.json").read_bytes() != (other / "annotations.json").read_bytes()
    assert (tiny_root / "audio/train_000000.wav").read_bytes() != (other / "audio/train_000000.wav").read_bytes()
    assert (tiny_root / "masks/train_000000.png").read_bytes() != (other / "masks/train_000000.png").read_bytes()


def test_a_sample_does_not_depend_on_split_sizes():
    bigger = dataclasses.replace(TINY, n_train=500, n_calibration=0, n_test=40)
    for split, index in [("train", 4), ("test", 2), ("calibration", 1)]:
        a, b = render_sample(TINY, split, index), render_sample(bigger, split, index)
        assert a.image.tobytes() == b.image.tobytes()
        np.testing.assert_array_equal(a.waveform, b.waveform)
        np.testing.assert_array_equal(a.mask, b.mask)
        assert (a.box, a.label, a.classes_in_frame) == (b.box, b.label, b.classes_in_frame)
    assert render_sample(TINY, "train", 0).image.tobytes() != render_sample(TINY, "test", 0).image.tobytes()


def test_layout_and_reader(tiny_root):
    data = json.loads((tiny_root / "annotations.json").read_text())
    assert data["version"] == 2
    assert data["config"] == json.loads(json.dumps(dataclasses.asdict(TINY)))
    assert data["classes"] == synth_class_names(TINY.num_classes)
    counts = {"train": 6, "calibration": 2, "test": 3}
    for split in SPLITS:
        items = read_synth(tiny_root, split)
        assert len(items) == counts[split]
        for item in items:
            assert item.id.startswith(f"{split}_") and len(item.id) == len(split) + 7
            assert item.image.is_file() and item.audio.is_file() and item.mask.is_file()
            assert Image.open(item.image).size == (96, 96)
            (box,) = item.boxes
            assert all(0.0 <= v <= 1.0 for v in box) and box[0] < box[2] and box[1] < box[3]
            assert item.label == item.classes[0] and item.label in data["classes"]
            assert item.objects[0] == box and len(item.objects) == len(item.classes)  # distractors' boxes follow
            assert all(0.0 <= v <= 1.0 for obj in item.objects for v in obj)


def test_object_boxes_hold_each_object():
    """The first box is the sounding object's; every object's box lies in the frame, at an object's size."""
    cfg = dataclasses.replace(TINY, max_distractors=2)
    sample = next(s for i in range(40) if len((s := render_sample(cfg, "test", i)).objects) == 3)
    assert sample.objects[0] == sample.box
    for x0, y0, x1, y1 in sample.objects:
        assert 0 <= x0 < x1 <= cfg.image_size and 0 <= y0 < y1 <= cfg.image_size
        assert (x1 - x0) >= 0.1 * cfg.image_size  # objects are 18-40 % of the side


def test_audio_is_mono_16k_three_seconds_within_range(tiny_root):
    entries = json.loads((tiny_root / "annotations.json").read_text())["items"]
    for entry in entries:
        path = tiny_root / "audio" / f"{entry['id']}.wav"
        info = sf.info(path)
        assert (info.samplerate, info.channels, info.subtype) == (16000, 1, "PCM_16")
        wave, _ = sf.read(path, dtype="float32")
        assert wave.shape == (48000,)
        assert np.abs(wave).max() <= 1.0
        if not entry["inaudible"]:
            assert np.abs(wave).max() > 10 ** ((TINY.level_db[0] - 1) / 20)


def test_inaudible_sources_only_in_training_and_below_the_floor():
    cfg = dataclasses.replace(
        TINY, image_size=32, inaudible_fraction=0.5, noisy_fraction=0.0, ambience_db=(-130.0, -120.0)
    )
    train = [render_sample(cfg, "train", i) for i in range(40)]
    assert 10 <= sum(s.inaudible for s in train) <= 30
    assert not any(render_sample(cfg, split, i).inaudible for split in ("calibration", "test") for i in range(20))
    for s in train:
        peak = np.abs(s.waveform).max()
        assert (peak < 10 ** (-54 / 20)) if s.inaudible else (peak > 10 ** ((cfg.level_db[0] - 1) / 20))
    wave = render_sample(TINY, "train", 3).waveform
    assert wave.dtype == np.float32 and wave.shape == (48000,) and np.abs(wave).max() <= 1.0


def test_muted_and_noisy_training_tracks():
    """Muted tracks are digital silence, noisy ones broadband noise at its level over an inaudible source;
    adding them leaves the other pairs as they were (one uniform draw per pair, partitioned)."""
    cfg = dataclasses.replace(TINY, image_size=32, inaudible_fraction=0.2, muted_fraction=0.3, noisy_fraction=0.3)
    train = [render_sample(cfg, "train", i) for i in range(40)]
    tracks = [s.track for s in train]
    assert {"audible", "quiet", "muted", "noisy"} <= set(tracks) and all(
        s.inaudible == (t != "audible") for s, t in zip(train, tracks, strict=True)
    )
    for s in train:
        rms = float(np.sqrt(np.mean(s.waveform.astype(np.float64) ** 2)))
        if s.track == "muted":
            assert not s.waveform.any()
        elif s.track == "noisy":
            assert 10 ** ((cfg.noisy_db[0] - 1) / 20) < rms < 10 ** ((cfg.noisy_db[1] + 1) / 20)
    plain = dataclasses.replace(cfg, muted_fraction=0.0, noisy_fraction=0.0)
    for i, s in enumerate(train):
        if s.track in ("audible", "quiet"):
            assert np.array_equal(render_sample(plain, "train", i).waveform, s.waveform)
    assert all(render_sample(cfg, "test", i).track == "audible" for i in range(10))
    base = dataclasses.replace(TINY, noisy_fraction=0.0)
    away = dataclasses.replace(base, image_size=32, inaudible_fraction=0.0, offscreen_fraction=0.5)
    for i in range(12):
        s, plain_sample = render_sample(away, "train", i), render_sample(base, "train", i)
        assert s.label == plain_sample.label and s.classes_in_frame == plain_sample.classes_in_frame
        assert (s.track == "offscreen") == (not np.array_equal(s.waveform, plain_sample.waveform))
    with pytest.raises(ConfigError, match="sum"):
        dataclasses.replace(TINY, muted_fraction=0.6, noisy_fraction=0.6)


def test_sound_covers_at_least_half_the_clip_and_its_centre():
    quiet_room = dataclasses.replace(TINY, ambience_db=(-130.0, -120.0))  # the sound alone stands out
    for index in range(8):
        wave = render_sample(quiet_room, "test", index).waveform.astype(np.float64)
        frames = wave.reshape(-1, 800)  # 50 ms frames
        sounding = np.flatnonzero(np.sqrt((frames**2).mean(axis=1)) > 10 ** (-90 / 20))
        first, last = sounding.min(), sounding.max()
        assert (last - first + 1) / len(frames) >= 0.45
        assert first <= len(frames) // 2 <= last


def test_mask_is_binary_and_the_box_is_tight_around_it(tiny_root):
    data = json.loads((tiny_root / "annotations.json").read_text())
    for entry in data["items"]:
        mask = np.asarray(Image.open(tiny_root / "masks" / f"{entry['id']}.png"))
        assert mask.shape == (96, 96) and set(np.unique(mask)) <= {0, 255}
        ys, xs = np.nonzero(mask)
        assert entry["box"] == [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]
        # objects span 18-40 % of the frame side; shapes fill part of their square patch
        assert 0.08 * 96 <= entry["box"][2] - entry["box"][0] <= 0.41 * 96


def test_distractors_never_share_the_sounding_class():
    cfg = dataclasses.replace(TINY, num_classes=4, max_distractors=3, image_size=64)
    counts = set()
    for index in range(24):
        sample = render_sample(cfg, "train", index)
        assert sample.classes_in_frame[0] == sample.label
        assert len(set(sample.classes_in_frame)) == len(sample.classes_in_frame)
        counts.add(len(sample.classes_in_frame) - 1)
    assert counts == {0, 1, 2, 3}


def test_labels_are_balanced():
    labels = [render_sample(dataclasses.replace(TINY, image_size=32), "train", i).label for i in range(16)]
    assert labels == synth_class_names(8) * 2


def _mean_spectrum(wave: np.ndarray) -> np.ndarray:
    """Unit-norm mean magnitude spectrum (512-sample frames, hop 238): gain-invariant, dominated by the sound."""
    frames = np.lib.stride_tricks.sliding_window_view(wave, 512)[::238] * np.hanning(512)
    spectrum = np.sqrt((np.abs(np.fft.rfft(frames, axis=1)) ** 2).mean(axis=0))
    return spectrum / np.linalg.norm(spectrum)


def test_classes_are_distinguishable_by_their_spectra():
    """Nearest class-mean spectrum (4 examples per class) names held-out samples' classes.

    Spectra alone ignore rhythm (tick vs buzz, beeps vs tone), which a CNN on the spectrogram also
    sees, so a few misses are tolerated. Loud sources only: whether a faint one (the default levels reach the
    ambience's) can be heard is another question than whether the classes sound different.
    """
    cfg = dataclasses.replace(TINY, image_size=32, level_db=(-20.0, -3.0))
    n = cfg.num_classes
    spectra = np.stack([_mean_spectrum(render_sample(cfg, "test", i).waveform) for i in range(8 * n)])
    spectra = spectra.reshape(8, n, -1)  # [example, class, frequency]: labels are index % n
    centroids = spectra[:4].mean(axis=0)
    predicted = (spectra[4:] @ centroids.T).argmax(axis=-1)
    assert (predicted == np.arange(n)).mean() >= 0.85  # 28/32 with near-silent rooms (ambience down to -80 dBFS)
    # and every class has its own spectrum: class means are far from each other
    centroids /= np.linalg.norm(centroids, axis=1, keepdims=True)
    similarity = centroids @ centroids.T
    assert similarity[~np.eye(n, dtype=bool)].max() < 0.95


def test_all_twelve_classes_render():
    cfg = dataclasses.replace(TINY, num_classes=12, image_size=48)
    names = synth_class_names(12)
    assert len(set(names)) == 12
    assert {render_sample(cfg, "test", i).label for i in range(12)} == set(names)


def test_reuse_does_not_rewrite(tiny_root):
    files = [tiny_root / "annotations.json", tiny_root / "frames" / "train_000000.jpg"]
    before = [p.stat().st_mtime_ns for p in files]
    assert generate(TINY, tiny_root, progress=False) == tiny_root
    assert [p.stat().st_mtime_ns for p in files] == before


def test_a_changed_config_regenerates_and_removes_stale_samples(tmp_path):
    root = generate(TINY, tmp_path / "d", progress=False)
    smaller = dataclasses.replace(TINY, n_train=2)
    generate(smaller, root, progress=False)
    assert len(read_synth(root, "train")) == 2
    assert sorted(p.stem for p in (root / "frames").glob("train_*")) == ["train_000000", "train_000001"]


def test_an_interrupted_run_leaves_no_annotations(tmp_path, monkeypatch):
    calls = []
    real = synth_writer._write_sample

    def failing(*args):
        calls.append(args)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(*args)

    monkeypatch.setattr(synth_writer, "_write_sample", failing)
    with pytest.raises(KeyboardInterrupt):
        generate(TINY, tmp_path / "d", progress=False)
    assert not (tmp_path / "d" / "annotations.json").exists()
    assert list((tmp_path / "d").glob(".annotations*")) == []


def test_reader_errors(tiny_root, tmp_path):
    with pytest.raises(DatasetError, match="annotations.json"):
        read_synth(tmp_path, "train")
    with pytest.raises(DatasetError, match="calibration"):
        read_synth(tiny_root, "val")
    (tmp_path / "annotations.json").write_text((tiny_root / "annotations.json").read_text())
    with pytest.raises(DatasetError, match="frames"):
        read_synth(tmp_path, "train")
    (tmp_path / "frames").mkdir()
    (tmp_path / "audio").mkdir()
    (tmp_path / "annotations.json").write_text("{not json")
    with pytest.raises(DatasetError, match=str(tmp_path / "annotations.json")):
        read_synth(tmp_path, "train")


def test_bad_configs_are_rejected():
    with pytest.raises(ConfigError):
        SynthConfig(num_classes=13)
    with pytest.raises(ConfigError):
        SynthConfig(num_classes=3, max_distractors=3)
    with pytest.raises(ConfigError):
        synth_class_names(0)


def test_inaudible_fraction_is_checked():
    with pytest.raises(ConfigError, match="inaudible_fraction"):
        dataclasses.replace(TINY, inaudible_fraction=1.5)
