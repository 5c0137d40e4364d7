import json

import pytest
import torch

from vssl import load_model, save_release
from vssl.errors import VsslError
from vssl.models.registry import create_model


def test_release_round_trip(tmp_path):
    torch.manual_seed(0)
    model = create_model("test").eval()
    save_release(model, tmp_path / "m", extra={"calibration": {"thresholds": {"maxq3": 0.6}}})
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == ["config.json", "model.safetensors"]
    loaded = load_model(tmp_path / "m")
    assert loaded.cfg == model.cfg
    images, waves = torch.randn(2, 3, 64, 64), torch.randn(2, 48000) * 0.1
    with torch.no_grad():
        assert torch.equal(model.localize(images, waves), loaded.localize(images, waves))
    assert json.loads((tmp_path / "m" / "config.json").read_text())["calibration"]["thresholds"]["maxq3"] == 0.6


def test_bad_release_folders_are_named(tmp_path):
    with pytest.raises(VsslError, match="config.json"):
        load_model(tmp_path)
    save_release(create_model("test"), tmp_path / "m")
    (tmp_path / "m" / "model.safetensors").write_bytes(b"garbage")
    with pytest.raises(VsslError, match="model.safetensors"):
        load_model(tmp_path / "m")
    save_release(create_model("small"), tmp_path / "other")
    (tmp_path / "m" / "model.safetensors").write_bytes((tmp_path / "other" / "model.safetensors").read_bytes())
    with pytest.raises(VsslError, match="do not match"):
        load_model(tmp_path / "m")


def test_named_size_gives_a_fresh_model():
    assert load_model("test").cfg.name == "test"
