"""Importing official checkpoints: numerical equivalence with the authors' code, strict keys, safe loading."""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from vssl import load_model
from vssl.audio import center_window, load_audio
from vssl.cli import main
from vssl.errors import VsslError
from vssl.infer import localize_files
from vssl.maps import minmax
from vssl.models.convert import convert
from vssl.models.objectives.ezvsl import EZVSL, Batch
from vssl.models.registry import MODEL_SIZES
from vssl.vision import eval_transform, load_image

# Two float32 runs of a ResNet-18 pair: the reference's official code on the authors' CPU and ours. What separates
# them (measured with the converted model on an AMD EPYC, float32 against float64): the reference's 16-bit PCM read
# as /32767 against soundfile's /32768, 1.0e-7 on embeddings and cosines; float32 rounding, 1.1e-7 on cosines,
# times 1/tau = 33 on the logit maps (3.8e-6). Another CPU sums in another order, with rounding errors of that size
# but not the same values: the outputs lie within 7.6e-6 of the reference here (logit maps) and 1e-4 leaves more
# than 10x for any order of summation.
TOLERANCE = 1e-4


def seeded_official_state_dict(shapes: dict[str, list[int]], seed: int) -> dict[str, torch.Tensor]:
    """The weights of fixtures/reference (README): sorted keys, one generator, a rule per key name."""
    g = torch.Generator().manual_seed(seed)
    state = {}
    for key in sorted(shapes):
        shape = shapes[key]
        if key.endswith("num_batches_tracked"):
            state[key] = torch.zeros(shape, dtype=torch.long)
        elif key.endswith("running_var"):
            state[key] = torch.rand(shape, generator=g) + 0.5
        elif key.endswith(("running_mean", "bias")):
            state[key] = torch.randn(shape, generator=g) * 0.1
        elif len(shape) == 1:
            state[key] = 1.0 + torch.randn(shape, generator=g) * 0.1
        else:
            state[key] = torch.randn(shape, generator=g) * math.sqrt(2 / math.prod(shape[1:]))
    return state


@pytest.fixture(scope="module")
def reference(fixtures_dir: Path) -> dict:
    meta = json.loads((fixtures_dir / "reference" / "ezvsl_state_dict_shapes.json").read_text())
    return {
        "state": seeded_official_state_dict(meta["state_dict_shapes"], meta["seed"]),
        "names": meta["inputs"],
        "arrays": dict(np.load(fixtures_dir / "reference" / "ezvsl_seeded_reference.npz")),
        "inputs": fixtures_dir / "real" / "is3plus",
    }


def _save(tmp_path: Path, checkpoint: dict, name: str = "official.pth") -> Path:
    path = tmp_path / name
    torch.save(checkpoint, path)
    return path


def max_differences(model, reference: dict) -> dict[str, float]:
    """Max |ours - reference| for every stored output of the official model, from the real fixture files."""
    arrays, names, root = reference["arrays"], reference["names"], reference["inputs"]
    images = torch.stack([eval_transform(model.cfg.image)(load_image(root / f"{n}.jpg")) for n in names])
    waves = torch.stack([center_window(load_audio(root / f"{n}.wav"), model.cfg.audio) for n in names])
    with torch.no_grad():
        embeddings = model.encode_waveform(waves)
        loss = EZVSL()(model, Batch(images=images, waves=waves, step=0))["loss"]
        diag_logits = model.localize(images, waves) / model.cfg.tau
    diffs = {
        "batch/ezvsl_loss": abs(loss.item() - float(arrays["batch/ezvsl_loss"])),
        "batch/diag_logit_maps": float(np.abs(diag_logits.numpy() - arrays["batch/diag_logit_maps"]).max()),
    }
    for i, name in enumerate(names):
        result = localize_files(model, root / f"{name}.jpg", root / f"{name}.wav")
        ours = {
            "audio_embedding": embeddings[i].numpy(),
            "cosine_map_7x7": result.cosine_map,
            # min-max of the cosine map = min-max of the logits (cosine / tau) the reference normalised
            "heatmap_224_minmax": minmax(torch.from_numpy(result.heatmap)[None])[0].numpy(),
        }
        for key, value in ours.items():
            diffs[f"{name}/{key}"] = float(np.abs(value - arrays[f"{name}/{key}"]).max())
    return diffs


@pytest.mark.parametrize("prefix", ["", "module."])
def test_converted_ezvsl_matches_the_official_model(tmp_path, reference, prefix):
    state = {prefix + k: v for k, v in reference["state"].items()}
    out = convert(_save(tmp_path, {"model": state}), "ezvsl", tmp_path / "model")
    model = load_model(out)
    assert model.cfg == MODEL_SIZES["resnet18"]
    diffs = max_differences(model, reference)
    # Every stored output is compared but the front ends' own (test_audio.py and test_vision.py check those).
    assert set(diffs) == {k for k in reference["arrays"] if not k.endswith(("/image_tensor", "/spectrogram"))}
    assert max(diffs.values()) <= TOLERANCE, diffs


def test_fnac_checkpoint_with_training_state_converts(tmp_path, reference):
    checkpoint = {
        "model": reference["state"],
        "optimizer": {"state": {}, "param_groups": [{"lr": 1e-4, "params": [0, 1]}]},
        "epoch": 20,
    }
    path = _save(tmp_path, checkpoint, "fnac.pth")
    out = convert(path, "fnac", tmp_path / "model")
    source = json.loads((out / "config.json").read_text())["converted_from"]
    assert source["format"] == "fnac" and source["file"] == "fnac.pth" and len(source["sha256"]) == 64
    converted = load_model(out).state_dict()
    assert all(torch.equal(converted[k], v) for k, v in reference["state"].items())


def test_key_and_shape_problems_are_all_listed(tmp_path, reference):
    state = dict(reference["state"])
    del state["aud_proj.bias"]
    state["imgnet.fc.weight"] = torch.zeros(1000, 512)
    state["img_proj.weight"] = torch.zeros(256, 512, 1, 1)
    path = _save(tmp_path, {"model": state})
    with pytest.raises(VsslError) as info:
        convert(path, "ezvsl", tmp_path / "model")
    message = str(info.value)
    assert str(path) in message
    assert "missing keys (1): aud_proj.bias" in message
    assert "unexpected keys (1): imgnet.fc.weight" in message
    assert "shape mismatches (1): img_proj.weight [256, 512, 1, 1] (model [512, 512, 1, 1])" in message
    assert not (tmp_path / "model").exists()


def test_a_checkpoint_of_another_architecture_lists_the_missing_keys(tmp_path):
    path = _save(tmp_path, {"model": {"module.encoder.weight": torch.zeros(2)}})
    with pytest.raises(VsslError, match=r"missing keys \(\d+\): aud_proj.bias, .*and \d+ more.*encoder.weight"):
        convert(path, "ezvsl", tmp_path / "model")


def test_files_needing_arbitrary_pickle_are_refused(tmp_path):
    path = _save(tmp_path, {"model": {}, "args": argparse.Namespace(lr=1e-4)})
    with pytest.raises(VsslError, match=r"argparse.Namespace.*arbitrary code.*weights_only=True"):
        convert(path, "fnac", tmp_path / "model")


@pytest.mark.parametrize(
    "content,match",
    [
        (b"not a checkpoint", "not a readable PyTorch checkpoint"),
        (b"", "not a readable PyTorch checkpoint"),
    ],
)
def test_unreadable_files_are_named(tmp_path, content, match):
    path = tmp_path / "broken.pth"
    path.write_bytes(content)
    with pytest.raises(VsslError, match=match):
        convert(path, "ezvsl", tmp_path / "model")
    with pytest.raises(VsslError, match="not found"):
        convert(tmp_path / "nowhere.pth", "ezvsl", tmp_path / "model")


def test_wrong_layout_is_explained(tmp_path):
    path = _save(tmp_path, {"model_state_dict": {}})
    with pytest.raises(VsslError, match=r"entry 'model'; found \['model_state_dict'\]"):
        convert(path, "ezvsl", tmp_path / "model")
    path = _save(tmp_path, {"model": {"a": 1}}, "odd.pth")
    with pytest.raises(VsslError, match="not a state dict of tensors"):
        convert(path, "ezvsl", tmp_path / "model")


def test_unknown_format_lists_the_known_ones(tmp_path):
    with pytest.raises(VsslError, match="unknown checkpoint format 'avel'; known: ezvsl, fnac"):
        convert(tmp_path / "any.pth", "avel", tmp_path / "model")


# ---------------------------------------------------------------- vssl convert


def test_cli_convert(tmp_path, reference, capsys, caplog):
    path = _save(tmp_path, {"model": reference["state"]})
    assert main(["convert", "--format", "ezvsl", str(path), "--out", str(tmp_path / "model")]) == 0
    assert "model written to" in capsys.readouterr().out
    assert load_model(tmp_path / "model").cfg.name == "resnet18"
    assert main(["convert", "--format", "ssltie", str(path), "--out", str(tmp_path / "tie")]) == 2
    assert "a ssltie checkpoint is a dict with the entry 'state_dict'; found ['model']" in caplog.text
    assert not (tmp_path / "tie").exists()
