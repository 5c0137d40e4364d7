"""Where the trunks start: ImageNet through torchvision's weights API (a pre-filled cache, no network), a
weights file, or the demo's pretraining on the benchmark's objects (image) and sounds (audio); a frozen image trunk."""

import json

import pytest
import torch
from safetensors.torch import save_file

from vssl.data.synth import SynthConfig
from vssl.errors import ConfigError
from vssl.models.image_init import init_audio_trunk, init_image_trunk
from vssl.models.registry import create_model
from vssl.train import pretrain_audio
from vssl.train.pretrain import RECORD_FILE, PretrainConfig, _cell_targets, _Frame, _view_targets, pretrain_image_trunk
from vssl.vision import ImageConfig, View

TINY = SynthConfig(image_size=64, num_classes=4, max_distractors=1)


def _random_trunk(name: str, seed: int) -> dict[str, torch.Tensor]:
    torch.manual_seed(seed)
    return {k: v.clone() for k, v in create_model(name).imgnet.state_dict().items()}


def test_imagenet_start_reads_torchvisions_cache(tmp_path, monkeypatch):
    """torchvision's own path (ResNet18_Weights.IMAGENET1K_V1 -> torch hub cache) with a file put there."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    state = _random_trunk("resnet18", seed=1) | {"fc.weight": torch.zeros(1000, 512), "fc.bias": torch.zeros(1000)}
    (tmp_path / "hub" / "checkpoints").mkdir(parents=True)
    torch.save(state, tmp_path / "hub" / "checkpoints" / "resnet18-f37072fd.pth")
    model = create_model("resnet18")
    init_image_trunk(model, "imagenet")
    loaded = model.imgnet.state_dict()
    assert all(torch.equal(loaded[k], state[k]) for k in loaded)  # every trunk tensor; the head is dropped


@pytest.mark.parametrize("size", ["test", "slavc_test"])
def test_a_weights_file_starts_the_trunk_and_its_momentum_copy(tmp_path, size):
    state = _random_trunk(size, seed=2)
    save_file(state, tmp_path / "trunk.safetensors")
    torch.manual_seed(3)
    model = create_model(size)
    init_image_trunk(model, str(tmp_path / "trunk.safetensors"))
    trunks = [model.imgnet] + ([model.momentum_imgnet] if model.cfg.momentum is not None else [])
    for trunk in trunks:
        assert all(torch.equal(v, state[k]) for k, v in trunk.state_dict().items())


def test_a_trunk_of_another_shape_is_refused_by_name(tmp_path):
    save_file(_random_trunk("test", seed=0), tmp_path / "test.safetensors")
    with pytest.raises(ConfigError, match=r"does not fit the image trunk of model 'small' \(.*wrong shape"):
        init_image_trunk(create_model("small"), str(tmp_path / "test.safetensors"))
    with pytest.raises(ConfigError, match="is not a file"):
        init_image_trunk(create_model("test"), str(tmp_path / "missing.safetensors"))
    (tmp_path / "damaged.safetensors").write_bytes(b"garbage")
    for init, key in ((init_image_trunk, "image_init"), (init_audio_trunk, "audio_init")):
        with pytest.raises(ConfigError, match=f"{key}: .*damaged.safetensors is not a readable safetensors file"):
            init(create_model("test"), str(tmp_path / "damaged.safetensors"))


@pytest.mark.parametrize("target", ["cells", "frame"])
def test_pretraining_learns_the_objects_and_is_reused(tmp_path, target):
    cfg = PretrainConfig(images=64, held_out=32, epochs=2, batch_size=16, lr=3e-3, target=target)
    path = pretrain_image_trunk(TINY, "test", cfg, tmp_path, seed=0, progress=False)
    record = json.loads((tmp_path / RECORD_FILE).read_text())
    assert record["model"] == "test" and 0.0 <= record["held_out_exact_match"] <= 1.0
    model = create_model("test")
    init_image_trunk(model, str(path))  # the file fits the trunk it was made for
    stamp = path.stat().st_mtime_ns
    assert pretrain_image_trunk(TINY, "test", cfg, tmp_path, seed=0, progress=False) == path
    assert path.stat().st_mtime_ns == stamp  # reused, not retrained
    pretrain_image_trunk(TINY, "test", PretrainConfig(images=32, held_out=0, epochs=1, batch_size=16), tmp_path)
    assert path.stat().st_mtime_ns != stamp  # another recipe: made again
    with pytest.raises(ConfigError, match="pretrain"):
        PretrainConfig(epochs=0)
    with pytest.raises(ConfigError, match="pretrain.target: 'pixels' is not one of cells, frame"):
        PretrainConfig(target="pixels")


def _frame(classes, boxes, width=100, resized=50):
    """A pretraining frame of ``width`` original pixels, resized to ``resized`` for training."""
    frame = object.__new__(_Frame)
    frame.classes, frame.boxes, frame.scale = classes, boxes, resized / width
    return frame


def test_cell_targets_follow_the_training_view():
    """The cells of a crop name the objects under their centres, in original pixels, mirrored by a flip."""
    image_cfg, cfg = ImageConfig(size=40, train_resize=246), PretrainConfig(target="cells")
    frame = _frame([1, 0], [(0, 0, 40, 100), (60, 20, 100, 40)])  # class 1: left 40 %; class 0: a box on the right
    plain = _view_targets(frame, View(left=5, top=0, flip=False), cfg, 4, image_cfg, 3)
    # the crop spans resized x 5..45 = original 10..90; cell centres at original 20, 40, 60, 80 (y: 10, 30, 50, 70)
    assert plain[1].tolist() == [[1, 0, 0, 0]] * 4  # x=20 inside [0, 40); x=40 is not
    assert plain[0].tolist() == [[0, 0, 0, 0], [0, 0, 1, 1], [0, 0, 0, 0], [0, 0, 0, 0]]  # (60, 30) and (80, 30)
    assert plain[2].sum() == 0
    flipped = _view_targets(frame, View(left=5, top=0, flip=True), cfg, 4, image_cfg, 3)
    assert torch.equal(flipped, plain.flip(-1))
    whole = _view_targets(frame, View(0, 0, False), PretrainConfig(target="frame"), 4, image_cfg, 3)
    assert whole.tolist() == [1.0, 1.0, 0.0]  # frame targets: the classes in the frame, wherever the view is
    centres = torch.tensor([12.5, 37.5, 62.5, 87.5])
    assert _cell_targets(frame.classes, frame.boxes, centres, centres, 3)[1].tolist() == [[1, 1, 0, 0]] * 4


def test_audio_pretraining_names_the_sounds_and_starts_the_audio_trunk(tmp_path):
    cfg = pretrain_audio.AudioPretrainConfig(clips=32, held_out=16, epochs=2, batch_size=16)
    path = pretrain_audio.pretrain_audio_trunk(TINY, "test", cfg, tmp_path, seed=0, progress=False)
    record = json.loads((tmp_path / pretrain_audio.RECORD_FILE).read_text())
    assert record["model"] == "test" and 0.0 <= record["held_out_accuracy"] <= 1.0
    stamp = path.stat().st_mtime_ns
    assert pretrain_audio.pretrain_audio_trunk(TINY, "test", cfg, tmp_path, seed=0, progress=False) == path
    assert path.stat().st_mtime_ns == stamp  # reused
    model = create_model("test")
    init_audio_trunk(model, str(path))
    from safetensors.torch import load_file

    assert all(torch.equal(v, load_file(path)[k]) for k, v in model.audnet.state_dict().items())
    with pytest.raises(ConfigError, match=r"audio_init=.*: does not fit the audio trunk of model 'small'"):
        init_audio_trunk(create_model("small"), str(path))
    with pytest.raises(ConfigError, match="audio_pretrain"):
        pretrain_audio.AudioPretrainConfig(batch_size=1)


def test_training_starts_from_the_file_and_records_it(tmp_path):
    from vssl.data.synth import generate
    from vssl.models.release import load_model
    from vssl.train.loop import TrainConfig, train

    data = generate(SynthConfig(n_train=8, n_calibration=0, n_test=0, image_size=64), tmp_path / "data", progress=False)
    state = _random_trunk("test", seed=4)
    save_file(state, tmp_path / "trunk.safetensors")
    cfg = TrainConfig(
        data=f"synth:{data}",
        model="test",
        epochs=1,
        batch_size=8,
        lr=1e-12,
        image_init=str(tmp_path / "trunk.safetensors"),
    )
    release = train(cfg, tmp_path / "run")
    saved = json.loads((release / "config.json").read_text())
    assert saved["training"]["image_init"] == str(tmp_path / "trunk.safetensors")
    weights = load_model(release).imgnet.state_dict()  # one step at lr 1e-12: the file's weights to float32 rounding
    assert all(
        torch.allclose(weights[k].float(), v.float(), rtol=1e-6, atol=1e-9)
        for k, v in state.items()
        if "running" not in k and "num_batches" not in k
    )
    with pytest.raises(ConfigError, match="image_init='nowhere' is neither one of"):
        train(TrainConfig(data=f"synth:{data}", model="test", image_init="nowhere"), tmp_path / "bad")
    with pytest.raises(ConfigError, match="audio_init='nowhere' is neither none nor a file"):
        train(TrainConfig(data=f"synth:{data}", model="test", audio_init="nowhere"), tmp_path / "bad")


def test_a_frozen_image_trunk_keeps_its_start_while_the_rest_trains(tmp_path):
    from vssl.data.synth import generate
    from vssl.models.release import load_model
    from vssl.train.loop import TrainConfig, train

    data = generate(SynthConfig(n_train=8, n_calibration=0, n_test=0, image_size=64), tmp_path / "data", progress=False)
    state = _random_trunk("test", seed=5)
    save_file(state, tmp_path / "trunk.safetensors")
    torch.manual_seed(0)
    start = create_model("test").state_dict()  # what create_model gives the run (seeded as train seeds it)
    cfg = TrainConfig(
        data=f"synth:{data}",
        model="test",
        epochs=2,
        batch_size=4,
        lr=1e-2,
        image_init=str(tmp_path / "trunk.safetensors"),
        freeze_image_trunk=True,
    )
    model = load_model(train(cfg, tmp_path / "run"))
    trunk = model.imgnet.state_dict()
    weights = [k for k in state if "running" not in k and "num_batches" not in k]
    assert all(torch.equal(trunk[k], state[k]) for k in weights)  # exactly the file's weights
    assert any(not torch.equal(trunk[k], state[k]) for k in state if "running" in k)  # BatchNorm still tracks
    moved = [k for k, v in model.state_dict().items() if k.startswith(("img_proj", "aud")) and "running" not in k]
    assert moved and all(not torch.equal(model.state_dict()[k], start[k]) for k in moved if "num_batches" not in k)
