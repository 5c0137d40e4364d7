"""Overlays on the absolute scale, and ``vssl localize`` / ``vssl export`` / ``vssl serve`` on the command line."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from vssl import load_localizer, save_release
from vssl.cli import main
from vssl.errors import ConfigError
from vssl.inference import COSINE_RANGE, Localization, Threshold, render_overlay, write_overlay
from vssl.inference.render import colourise, decision_text
from vssl.models.registry import create_model


def _flat(value: float, threshold: Threshold | None = None, abstain: bool | None = None) -> Localization:
    frame = Image.new("RGB", (96, 64), (128, 128, 128))
    cosine = np.full((2, 2), value, dtype=np.float32)
    heat = np.full((224, 224), value, dtype=np.float32)
    score = None if threshold is None else (value + 1) / 2
    return Localization(cosine, heat, value, value, frame, threshold=threshold, score=score, abstain=abstain)


def test_overlay_colours_are_absolute_never_min_max():
    colours = {}
    for value in (-0.2, 0.0, 0.7):  # flat maps: a per-image min-max would paint each the same
        image = np.asarray(render_overlay(_flat(value)))
        colours[value] = tuple(image[image.shape[0] - 32, 48])  # a pixel of the frame, under the heatmap
    assert len(set(colours.values())) == 3
    lo, hi = colourise(np.array([[COSINE_RANGE[0], COSINE_RANGE[1]]]))[0]
    assert tuple(lo) != tuple(hi)
    bars = [np.asarray(render_overlay(_flat(v)))[:, -60:-40] for v in (-0.2, 0.7)]
    assert bars[0].shape == bars[1].shape  # same layout; the bar's gradient does not depend on the map


def test_decision_text_and_written_png(tmp_path):
    t = Threshold(0.6, rule="maxq3")
    assert decision_text(_flat(0.0)) == "uncalibrated model: no abstain decision"
    assert decision_text(_flat(0.0, t, True)).startswith("no visible source (abstain): score 0.500 <= threshold 0.600")
    assert decision_text(_flat(0.4, t, False)).startswith("source visible: score 0.700 > threshold")
    path = write_overlay(_flat(0.3, t, False), tmp_path / "overlay.png", title="flat")
    with Image.open(path) as png:
        assert png.format == "PNG" and png.width > 96 and png.height > 64


@pytest.mark.parametrize("command", ["localize", "export", "serve"])
def test_subcommands_have_help(capsys, command):
    with pytest.raises(SystemExit) as exc:
        main([command, "--help"])
    assert exc.value.code == 0
    assert f"usage: vssl {command}" in capsys.readouterr().out


def test_cli_localize_writes_overlay_and_json(tmp_path, calibrated_release, pair, capsys):
    png, record = tmp_path / "overlay.png", tmp_path / "map.json"
    args = ["localize", "--model", str(calibrated_release), "--image", str(pair[0]), "--audio", str(pair[1])]
    assert main([*args, "--out", str(png), "--json", str(record)]) == 0
    out = capsys.readouterr().out
    assert "cosine map 2x2" in out and "threshold 0.550 (maxq3" in out
    expected = load_localizer(calibrated_release).localize(*pair)
    saved = json.loads(record.read_text())
    np.testing.assert_array_equal(np.array(saved["cosine_map"], np.float32), expected.cosine_map)
    assert saved["abstain"] == expected.abstain and saved["threshold"] == 0.55
    with Image.open(png) as image:
        assert image.format == "PNG"


def test_cli_localize_negatives_and_threshold_options(tmp_path, calibrated_release, pair, capsys):
    base = ["localize", "--model", str(calibrated_release), "--image", str(pair[0])]
    for option in ("--silence", "--noise"):
        record = tmp_path / f"{option[2:]}.json"
        assert main([*base, option, "--json", str(record), "--rule", "max"]) == 0
        assert json.loads(record.read_text())["rule"] == "max"
    record = tmp_path / "given.json"
    assert main([*base, "--silence", "--json", str(record), "--threshold", "-1", "--threshold-scale", "cosine"]) == 0
    saved = json.loads(record.read_text())
    assert (saved["threshold"], saved["threshold_scale"], saved["abstain"]) == (-1.0, "cosine", False)


@pytest.mark.parametrize("size", [(1, 1), (3, 2), (1, 40), (31, 32)])
def test_cli_localizes_tiny_images(tmp_path, calibrated_release, size):
    """A valid image smaller than the model's patch (32 px) localizes; its overlay shows the frame enlarged."""
    image, png, record = tmp_path / "tiny.png", tmp_path / "overlay.png", tmp_path / "map.json"
    Image.new("RGB", size, (200, 30, 30)).save(image)
    args = ["localize", "--model", str(calibrated_release), "--image", str(image), "--noise"]
    assert main([*args, "--out", str(png), "--json", str(record)]) == 0
    saved = json.loads(record.read_text())
    assert saved["frame_size"] == list(size) and np.isfinite(saved["cosine_map"]).all()
    x0, y0, x1, y1 = saved["box"] if saved["box"] is not None else (0, 0, *size)
    assert 0 <= x0 <= x1 <= size[0] and 0 <= y0 <= y1 <= size[1]
    with Image.open(png) as overlay:
        assert overlay.width >= 224 and overlay.height >= 224


def test_cli_refuses_non_finite_thresholds(calibrated_release, pair, capsys):
    base = ["localize", "--model", str(calibrated_release), "--image", str(pair[0]), "--silence"]
    for value in ("nan", "inf", "-inf"):
        with pytest.raises(SystemExit) as exit_:
            main([*base, f"--threshold={value}"])
        assert exit_.value.code == 2
        assert f"argument --threshold: must be a finite number, got '{value}'" in capsys.readouterr().err
    with pytest.raises(ConfigError, match="threshold 'given' must be a finite number, got nan"):
        load_localizer(calibrated_release, threshold=float("nan"))


def test_cli_localize_errors(tmp_path, calibrated_release, pair, caplog):
    args = ["localize", "--model", str(calibrated_release), "--image", str(pair[0]), "--audio", str(pair[1])]
    assert main(args) == 2 and "--out PNG" in caplog.text
    assert main([*args[:-2], "--json", str(tmp_path / "m.json")]) == 2 and "needs --audio" in caplog.text
    assert main([*args[:-1], str(tmp_path / "missing.wav"), "--json", str(tmp_path / "m.json")]) == 2
    assert "missing.wav" in caplog.text and not (tmp_path / "m.json").exists()
    with pytest.raises(SystemExit):
        main([*args, "--silence", "--json", "x.json"])  # --audio and --silence exclude each other


def test_cli_uncalibrated_model_says_so(tmp_path, pair, caplog):
    folder = save_release(create_model("test"), tmp_path / "plain")
    record = tmp_path / "map.json"
    cmd = ["localize", "--model", str(folder), "--image", str(pair[0]), "--noise", "--json", str(record)]
    assert main(cmd) == 0
    assert "no calibration" in caplog.text and json.loads(record.read_text())["abstain"] is None


def test_console_script_localize(tmp_path, calibrated_release, pair):
    record = tmp_path / "map.json"
    cmd = [sys.executable, "-m", "vssl.cli", "localize", "--model", str(calibrated_release), "--image", str(pair[0])]
    subprocess.run([*cmd, "--audio", str(pair[1]), "--json", str(record)], check=True, capture_output=True)
    assert json.loads(record.read_text())["map_scale"] == "cosine"
