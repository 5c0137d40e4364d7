"""Inference on files: absolute cosine maps, the JSON record, the overlay, and ``vssl localize``."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from vssl import load_model, save_release
from vssl.audio import waveform_to_input
from vssl.cli import main
from vssl.errors import MediaError
from vssl.infer import COSINE_RANGE, Localization, localize, localize_files, overlay_figure, write_json, write_overlay
from vssl.models.registry import create_model
from vssl.vision import eval_transform

PAIR = "cello_donkey_3905_cello"


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    return save_release(create_model("test").eval(), tmp_path_factory.mktemp("release") / "test-model")


@pytest.fixture(scope="module")
def pair(fixtures_dir: Path) -> tuple[Path, Path]:
    root = fixtures_dir / "real" / "is3plus"
    return root / f"{PAIR}.jpg", root / f"{PAIR}.wav"


def test_maps_are_raw_cosine_at_native_and_224(model_dir, pair):
    model = load_model(model_dir)
    result = localize_files(model, *pair)
    side = model.cfg.image.size // 32
    assert result.cosine_map.shape == (side, side) and result.cosine_map.dtype == np.float32
    assert result.heatmap.shape == (224, 224)
    assert result.map_scale == "cosine"
    assert (result.min, result.max) == (float(result.cosine_map.min()), float(result.cosine_map.max()))
    assert -1.0 <= result.min <= result.max <= 1.0
    # bilinear, align_corners=True: the corners are the native corners; nothing leaves [min, max]
    corners = ([0, 0, -1, -1], [0, -1, 0, -1])
    np.testing.assert_allclose(result.heatmap[corners], result.cosine_map[corners], atol=1e-6)
    assert result.min - 1e-6 <= result.heatmap.min() and result.heatmap.max() <= result.max + 1e-6
    # the cosine itself, not cosine / tau: the dot product of the two unit embeddings
    with torch.no_grad():
        img = model.encode_image(eval_transform(model.cfg.image)(result.frame)[None])
        aud = model.encode_audio(waveform_to_input(pair[1], model.cfg.audio)[None])
    np.testing.assert_allclose(result.cosine_map, torch.einsum("bdhw,bd->hw", img, aud).numpy(), atol=1e-6)


def test_a_model_in_training_mode_is_run_in_eval_mode_and_restored(model_dir, pair):
    model = load_model(model_dir)
    expected = localize_files(model, *pair)
    model.train()
    again = localize_files(model, *pair)
    assert model.training
    np.testing.assert_array_equal(again.cosine_map, expected.cosine_map)


def test_short_clips_are_tiled_like_the_training_front_end(model_dir):
    model = load_model(model_dir)
    frame = Image.new("RGB", (80, 60), (120, 60, 30))
    wave = torch.sin(torch.arange(8000) * 0.3) * 0.2  # half a second
    result = localize(model, frame, wave)
    assert np.isfinite(result.cosine_map).all() and result.frame.size == (80, 60)


def test_json_record(tmp_path, model_dir, pair):
    result = localize_files(load_model(model_dir), *pair)
    path = write_json(result, tmp_path / "out" / "map.json")
    record = json.loads(path.read_text())
    assert set(record) == {"cosine_map", "min", "max", "map_scale"} and record["map_scale"] == "cosine"
    np.testing.assert_array_equal(np.array(record["cosine_map"], dtype=np.float32), result.cosine_map)
    assert (record["min"], record["max"]) == (result.min, result.max)
    assert [p.name for p in path.parent.iterdir()] == ["map.json"]  # no temporary file left behind


def _flat(value: float) -> Localization:
    frame = Image.new("RGB", (64, 48), (128, 128, 128))
    cosine = np.full((2, 2), value, dtype=np.float32)
    return Localization(cosine, np.full((224, 224), value, dtype=np.float32), value, value, frame)


def test_overlay_uses_a_fixed_colour_scale(tmp_path):
    for value in (-0.2, 0.0, 0.7):  # flat maps: a per-image min-max would turn each into the same picture
        fig = overlay_figure(_flat(value))
        heat = fig.axes[0].get_images()[1]
        assert heat.get_clim() == COSINE_RANGE
        assert "min" in fig.axes[0].get_title() and f"{value:.3f}" in fig.axes[0].get_title()
    assert overlay_figure(_flat(0.1), value_range=(0.0, 0.5)).axes[0].get_images()[1].get_clim() == (0.0, 0.5)
    path = write_overlay(_flat(0.3), tmp_path / "overlay.png", title="flat")
    with Image.open(path) as png:
        assert png.format == "PNG" and png.width > 100


def test_bad_media_are_named(tmp_path, model_dir, pair):
    with pytest.raises(MediaError, match="nowhere.wav"):
        localize_files(load_model(model_dir), pair[0], tmp_path / "nowhere.wav")


# ---------------------------------------------------------------- vssl localize


@pytest.mark.parametrize("command", ["localize", "convert"])
def test_new_subcommands_have_help(capsys, command):
    with pytest.raises(SystemExit) as exc:
        main([command, "--help"])
    assert exc.value.code == 0
    assert f"usage: vssl {command}" in capsys.readouterr().out


def test_cli_localize_writes_overlay_and_json(tmp_path, model_dir, pair, capsys):
    png, record = tmp_path / "overlay.png", tmp_path / "map.json"
    args = ["localize", "--model", str(model_dir), "--image", str(pair[0]), "--audio", str(pair[1])]
    assert main([*args, "--out", str(png), "--json", str(record)]) == 0
    assert "cosine map 2x2" in capsys.readouterr().out
    expected = localize_files(load_model(model_dir), *pair)
    np.testing.assert_array_equal(
        np.array(json.loads(record.read_text())["cosine_map"], np.float32), expected.cosine_map
    )
    with Image.open(png) as image:
        assert image.format == "PNG"


def test_cli_localize_errors(tmp_path, model_dir, pair, caplog):
    args = ["localize", "--model", str(model_dir), "--image", str(pair[0]), "--audio", str(pair[1])]
    assert main(args) == 2 and "--out PNG and/or --json" in caplog.text
    assert main([*args[:-1], str(tmp_path / "missing.wav"), "--json", str(tmp_path / "m.json")]) == 2
    assert "missing.wav" in caplog.text and not (tmp_path / "m.json").exists()


def test_console_script_localize(tmp_path, model_dir, pair):
    record = tmp_path / "map.json"
    cmd = [sys.executable, "-m", "vssl.cli", "localize", "--model", str(model_dir), "--image", str(pair[0])]
    subprocess.run([*cmd, "--audio", str(pair[1]), "--json", str(record)], check=True, capture_output=True)
    assert json.loads(record.read_text())["map_scale"] == "cosine"
