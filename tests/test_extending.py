"""Extending vssl (the README's worked example): a new method in one file + one registry line, a timm trunk, one
training step on synthetic data, and the release reloaded from its config.json alone."""

import csv
import json
import math
import sys
from dataclasses import dataclass, replace

import pytest
import torch

from vssl import load_model
from vssl.data.synth import SynthConfig, generate
from vssl.errors import ConfigError, VsslError
from vssl.maps import paired_maps, pairwise_maps
from vssl.models.encoders import BackboneConfig
from vssl.models.localizer import AVLocalizer, ModelConfig
from vssl.models.method import Method
from vssl.models.objectives import METHODS, ObjectiveConfig, create_objective, objective_names
from vssl.models.objectives.base import BaseObjective, Batch, Contrast, audio_columns, diagonal_ce, encode_pairs
from vssl.models.ogl import object_guided
from vssl.models.registry import (
    BASE_SIZES,
    MODEL_SIZES,
    method_model_size,
    model_config,
    register_method,
    register_model_size,
)
from vssl.models.release import save_release
from vssl.train.loop import TrainConfig, train

# --- the method: this block is the whole "one file" (in the package: vssl/models/objectives/topk.py) ---------------


@dataclass(frozen=True)
class TopKConfig:
    """Settings of the example method."""

    k: int = 3
    """locations averaged into an image-audio score (1 = EZ-VSL's max)"""


class TopKMIL(BaseObjective):
    """A toy EZ-VSL variant for the example (not a published method): the score of image i with audio j is the
    mean of the k highest locations of their cosine map, over tau; symmetric cross-entropy towards the diagonal."""

    name = "topk"

    def __init__(self, cfg: TopKConfig):
        super().__init__()
        self.cfg = cfg

    def contrast(
        self, model: AVLocalizer, batch: Batch, negatives: torch.Tensor | None = None, negative_columns: bool = True
    ) -> Contrast:
        img, aud, neg = encode_pairs(model, batch, negatives)  # [B, D, h, w], [B, D], [K, D]
        maps = pairwise_maps(img, audio_columns(aud, neg, negative_columns))  # [B, B (+ K), h, w]
        logits = maps.flatten(2).topk(self.cfg.k, dim=-1).values.mean(dim=-1) / model.cfg.tau
        loss = diagonal_ce(logits) + diagonal_ce(logits[:, : img.shape[0]].t())
        return Contrast({"loss": loss, "topk_loss": loss.detach()}, paired_maps(img, aud), pairwise_maps(img, neg))


def finer_maps(cfg: ModelConfig) -> ModelConfig:
    """The architecture the method trains: the image trunk's last stage at stride 1 (maps twice as fine)."""
    return replace(cfg, image_backbone=replace(cfg.image_backbone, last_stride=1))


TOPK = Method("topk", objective=TopKMIL, config=TopKConfig, architecture=finer_maps)

# --- end of the method file -------------------------------------------------------------------------------------


@pytest.fixture
def registered():
    """``register_method(TOPK)`` (the registry line; in the package, ``TOPK_METHOD,`` in `METHODS`), undone after."""
    snapshots = [(table, dict(table)) for table in (METHODS, MODEL_SIZES, BASE_SIZES)]
    register_method(TOPK)
    yield TOPK
    for table, saved in snapshots:
        table.clear()
        table.update(saved)


def test_a_method_is_one_record_and_one_registry_line(registered):
    assert "topk" in objective_names() and "sslsan+topk" in objective_names()
    assert method_model_size("topk", "small") == "topk_small"
    assert model_config("topk_small") == replace(finer_maps(MODEL_SIZES["small"]), name="topk_small")
    assert isinstance(create_objective(ObjectiveConfig(name="topk"), 48000, 0), TopKMIL)
    assert create_objective(ObjectiveConfig(name="sslsan+topk"), 48000, 0).base.cfg == TopKConfig()
    with pytest.raises(VsslError, match="no published OGL rule for 'topk'"):
        object_guided("topk", torch.zeros(1, 7, 7), torch.zeros(1, 7, 7))
    with pytest.raises(ConfigError, match="taken"):
        register_method(TOPK)


def test_the_registry_is_restored_after_the_example():
    assert "topk" not in METHODS and not any(name.startswith(("topk_", "timm_")) for name in MODEL_SIZES)


def test_a_new_method_with_a_timm_trunk_trains_saves_and_reloads(registered, require, tmp_path):
    require("timm", "timm")
    trunk = BackboneConfig(kind="timm", model="test_efficientnet")  # timm's tiny test net, pretrained=False
    timm_test = register_model_size(replace(MODEL_SIZES["test"], name="timm_test", image_backbone=trunk))
    # (also registered: topk_timm_test, slavc_timm_test, lvs_timm_test)
    data = generate(SynthConfig(n_train=8, n_calibration=0, n_test=0, image_size=64), tmp_path / "data", False)
    cfg = TrainConfig(
        data=f"synth:{data}",
        model="topk_timm_test",
        objective=ObjectiveConfig(name="sslsan+topk"),
        epochs=1,
        batch_size=8,
        lr=1e-3,
        progress=False,
    )
    release = train(cfg, tmp_path / "run")
    rows = list(csv.DictReader(open(tmp_path / "run" / "metrics.csv")))
    assert len(rows) == 1 and all(math.isfinite(float(rows[0][k])) for k in ("loss", "topk_loss", "flatness_loss"))

    recorded = json.loads((release / "config.json").read_text())["model"]["image_backbone"]
    assert (recorded["kind"], recorded["model"], recorded["last_stride"]) == ("timm", "test_efficientnet", 1)
    for table in (MODEL_SIZES, BASE_SIZES):  # the release rebuilds its network from config.json, not from a name
        for name in [n for n in table if "timm_test" in n]:
            del table[name]
    model = load_model(release)
    assert model.cfg == replace(finer_maps(timm_test), name="topk_timm_test")
    images, waves = torch.randn(2, 3, 64, 64), torch.randn(2, 48000)
    assert model.localize(images, waves).shape == (2, 4, 4)  # stride 16 (finer_maps): 64 / 16


def test_a_timm_trunk_takes_spectrograms_and_halves_its_stride(require):
    require("timm", "timm")
    cfg = replace(MODEL_SIZES["test"], audio_backbone=BackboneConfig(kind="timm", model="test_resnet"), embed_dim=8)
    model = AVLocalizer(cfg).eval()
    assert model.encode_waveform(torch.randn(2, 48000)).shape == (2, 8)
    assert model.audnet.out_channels == cfg.audio_backbone.out_channels == 96
    fine = replace(cfg.audio_backbone, last_stride=1)
    specs = torch.randn(1, 1, 257, 200)
    assert AVLocalizer(replace(cfg, audio_backbone=fine)).audnet(specs).shape[-2:] == (17, 13)
    assert model.audnet(specs).shape[-2:] == (9, 7)


def test_trunk_errors_name_the_key_and_the_extra(monkeypatch, tmp_path):
    with pytest.raises(ConfigError, match=r"image_backbone.kind='vit': unknown trunk; known: resnet, timm"):
        replace(MODEL_SIZES["test"], image_backbone=BackboneConfig(kind="vit"))
    with pytest.raises(ConfigError, match=r"audio_backbone.model: name the timm model"):
        replace(MODEL_SIZES["test"], audio_backbone=BackboneConfig(kind="timm"))
    folder = save_release(AVLocalizer(MODEL_SIZES["test"]), tmp_path / "release")
    config = json.loads((folder / "config.json").read_text())
    config["model"]["image_backbone"].update(kind="timm", model="test_efficientnet")
    (folder / "config.json").write_text(json.dumps(config))
    monkeypatch.setitem(sys.modules, "timm", None)  # as if timm were not installed
    with pytest.raises(ConfigError, match=r"config.json: image_backbone.kind='timm' needs the timm package: pip "):
        load_model(folder)


def test_releases_written_before_trunk_kinds_still_load(tmp_path):
    model = AVLocalizer(MODEL_SIZES["slavc_test"]).eval()
    folder = save_release(model, tmp_path / "release")
    config = json.loads((folder / "config.json").read_text())
    for trunk in ("image_backbone", "audio_backbone"):
        assert config["model"][trunk].pop("kind") == "resnet"
        del config["model"][trunk]["model"], config["model"][trunk]["out_index"]
    (folder / "config.json").write_text(json.dumps(config))
    reloaded = load_model(folder)
    assert reloaded.cfg == model.cfg
    assert all(
        torch.equal(a, b) for a, b in zip(reloaded.state_dict().values(), model.state_dict().values(), strict=True)
    )
