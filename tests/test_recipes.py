"""The presets reproduce the published recipes; runs start as the papers did (ImageNet, no network) or from a
published model (``init=``)."""

import json
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from vssl.config import apply_overrides, load_yaml
from vssl.data.synth import SynthConfig, generate
from vssl.errors import ConfigError
from vssl.models.convert import convert
from vssl.models.registry import create_model
from vssl.models.release import load_model
from vssl.train.loop import TrainConfig, train
from vssl.train.recipes import FIELDS, RECIPES, differences, preset_values

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
PRESETS = sorted(CONFIGS.glob("vggsound144k_*.yaml"))
RESNET18_FILE = "resnet18-f37072fd.pth"  # the file name torchvision's IMAGENET1K_V1 weights are cached under


def _preset(name: str) -> TrainConfig:
    return load_yaml(TrainConfig, CONFIGS / name)


@pytest.mark.parametrize("path", PRESETS, ids=lambda p: p.name)
def test_every_vggsound_preset_is_its_papers_recipe(path):
    cfg = load_yaml(TrainConfig, path)
    recipe = RECIPES[cfg.objective.name]
    assert recipe.preset == path.name
    assert differences(recipe, cfg) == []


def test_every_recipe_with_a_preset_has_one_and_says_where_it_comes_from():
    for recipe in RECIPES.values():
        assert recipe.source
        assert set(recipe.ours) <= set(FIELDS)
        if recipe.preset is not None:
            assert (CONFIGS / recipe.preset).is_file()
    assert {p.name for p in PRESETS} == {r.preset for r in RECIPES.values() if r.preset is not None}


def test_a_departure_from_the_recipe_is_named():
    cfg = _preset("vggsound144k_fnac.yaml")
    changed = apply_overrides(cfg, ["lr=0.001", "image_init=none", "objective.fnac.warmup_epochs=3"])
    found = differences(RECIPES["fnac"], changed)
    assert [d.split(":")[0] for d in found] == ["image_init", "lr", "warmup_epochs"]
    assert "published 5" in found[-1]
    unpublished = replace(RECIPES["lvs"], ours={})  # LVS publishes no batch size: a preset must say what it chose
    assert any(
        d.startswith("batch_size: not published") for d in differences(unpublished, _preset("vggsound144k_lvs.yaml"))
    )


def test_sslsan_is_the_ezvsl_recipe_plus_negatives():
    ezvsl = _preset("vggsound144k_ezvsl.yaml")
    sslsan = apply_overrides(ezvsl, ["objective.name=sslsan"])
    assert differences(RECIPES["ezvsl"], sslsan) == []
    assert preset_values(sslsan) == preset_values(ezvsl)


def _imagenet_cache(root: Path) -> dict[str, torch.Tensor]:
    """A torch hub cache holding a (random) ResNet-18 under the file name torchvision's ImageNet weights use."""
    torch.manual_seed(7)
    state = create_model("resnet18").imgnet.state_dict() | {
        "fc.weight": torch.zeros(1000, 512),
        "fc.bias": torch.zeros(1000),
    }
    (root / "hub" / "checkpoints").mkdir(parents=True)
    torch.save(state, root / "hub" / "checkpoints" / RESNET18_FILE)
    return state


@pytest.fixture(scope="module")
def synth_data(tmp_path_factory) -> str:
    root = tmp_path_factory.mktemp("synth")
    generate(SynthConfig(n_train=4, n_calibration=0, n_test=0, image_size=64), root / "data", progress=False)
    return f"synth:{root / 'data'}"


def _learned(model) -> dict[str, torch.Tensor]:
    """Trainable weights (BatchNorm running statistics move in training mode even at learning rate 0)."""
    return {k: v for k, v in model.state_dict().items() if "running" not in k and "num_batches" not in k}


@pytest.mark.slow
def test_the_resnet18_preset_starts_from_imagenet_and_records_it(tmp_path, monkeypatch, synth_data):
    """The EZ-VSL preset, a few steps on the synthetic benchmark: torchvision's ImageNet path (a pre-filled
    cache, no network), recorded in the release's config.json."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    state = _imagenet_cache(tmp_path / "torch")
    overrides = [
        f"data={synth_data}",
        "device=cpu",
        "num_workers=0",
        "batch_size=2",
        "epochs=1",
        "lr=0",
        "progress=false",
    ]
    cfg = apply_overrides(_preset("vggsound144k_ezvsl.yaml"), overrides)
    release = train(cfg, tmp_path / "run")
    saved = json.loads((release / "config.json").read_text())
    assert saved["training"]["image_init"] == "imagenet"
    trunk = _learned(load_model(release).imgnet)
    assert all(torch.equal(v, state[k]) for k, v in trunk.items())  # Adam at lr 0 leaves the start unchanged


@pytest.mark.slow
def test_sslsan_fine_tunes_a_converted_official_checkpoint(tmp_path, synth_data):
    """``init=`` a `vssl convert`ed official-format EZ-VSL checkpoint, ``objective.name=sslsan``: the run starts
    from every converted weight (checked after a step at learning rate 0), records the folder, and resumes."""
    torch.manual_seed(11)
    official = {"model": {f"module.{k}": v for k, v in create_model("resnet18").state_dict().items()}, "epoch": 20}
    torch.save(official, tmp_path / "ezvsl_vggsound144k.pth")
    converted = convert(tmp_path / "ezvsl_vggsound144k.pth", "ezvsl", tmp_path / "ezvsl")
    start = _learned(load_model(converted))
    overrides = [f"data={synth_data}", f"init={converted}", "objective.name=sslsan", "batch_size=2", "epochs=1"]
    cfg = apply_overrides(TrainConfig(model="small", lr=0.0, progress=False), overrides)
    release = train(cfg, tmp_path / "run")
    tuned = load_model(release)
    assert tuned.cfg == load_model(converted).cfg  # the folder's architecture, not model=small
    assert all(torch.equal(v, start[k]) for k, v in _learned(tuned).items())
    assert json.loads((release / "config.json").read_text())["training"]["init"] == str(converted)
    train(replace(cfg, epochs=2), tmp_path / "run", resume=True)  # resume: the architecture is still the folder's
    with pytest.raises(ConfigError, match="image_init='imagenet' would be overwritten"):
        train(replace(cfg, image_init="imagenet"), tmp_path / "other")
