"""Where the image trunk starts: ImageNet through torchvision's weights API (a pre-filled cache, no network), a
weights file, or the demo's pretraining on the benchmark's objects."""

import json

import pytest
import torch
from safetensors.torch import save_file

from vssl.data.synth import SynthConfig
from vssl.errors import ConfigError
from vssl.models.image_init import init_image_trunk
from vssl.models.registry import create_model
from vssl.train.pretrain import RECORD_FILE, PretrainConfig, pretrain_image_trunk

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


def test_pretraining_learns_the_objects_and_is_reused(tmp_path):
    cfg = PretrainConfig(images=64, held_out=32, epochs=2, batch_size=16, lr=3e-3)
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
