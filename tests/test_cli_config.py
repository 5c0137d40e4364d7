"""Configs document themselves: every command's --help lists every key of its config (type, default, doc), takes
``key=value`` overrides and prints the resolved config with --print-config; a bad value is one line naming the key."""

import ast
import logging
from pathlib import Path

import pytest
import torch
import yaml

from vssl.app import ServeConfig
from vssl.cli import build_parser, main
from vssl.config import describe, to_dict
from vssl.data.cache import CacheConfig
from vssl.data.prepare import PrepareConfig
from vssl.data.synth import SynthConfig
from vssl.demo import DEMO_OUT, DemoConfig, demo_config
from vssl.evaluation.run import EvalConfig
from vssl.evaluation.scoring import ScoreConfig
from vssl.export import ExportConfig
from vssl.inference.config import LocalizeConfig
from vssl.models.convert import ConvertConfig
from vssl.train.config import TrainConfig

COMMANDS = {
    "demo": (DemoConfig, []),
    "synth": (SynthConfig, ["--out", "x"]),
    "train": (TrainConfig, ["--out", "x"]),
    "eval": (EvalConfig, ["--model", "m", "--data", "synth:d", "--out", "x"]),
    "cache": (CacheConfig, ["synth:d", "x"]),
    "score": (ScoreConfig, ["--maps", "m.npz", "--gt", "g.json", "--out", "x"]),
    "prepare": (PrepareConfig, ["videos", "x"]),
    "localize": (LocalizeConfig, ["--model", "m", "--image", "i.jpg", "--out", "x"]),
    "serve": (ServeConfig, ["--model", "m"]),
    "export": (ExportConfig, ["onnx", "--model", "m", "--out", "x"]),
    "convert": (ConvertConfig, ["--format", "ezvsl", "c.pth", "--out", "x"]),
}
WITH_INT_KEY = [c for c, (cls, _) in COMMANDS.items() if any(t == "int" for _, t, _, _ in describe(cls))]


@pytest.mark.parametrize("command", COMMANDS)
def test_help_lists_every_key_with_its_doc(command, capsys):
    cls, _ = COMMANDS[command]
    with pytest.raises(SystemExit):
        build_parser().parse_args([command, "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for key, type_name, _, doc in describe(cls):
        assert doc, f"{cls.__name__}.{key} has no doc"
        assert f"{key} ({type_name}, default" in text, key
        assert " ".join(doc.split()[:6]) in text, key


@pytest.mark.parametrize("command", WITH_INT_KEY)
def test_print_config_applies_overrides_and_runs_nothing(command, capsys, tmp_path, monkeypatch):
    cls, args = COMMANDS[command]
    monkeypatch.chdir(tmp_path)
    key, value = next((k, d) for k, t, d, _ in describe(cls) if t == "int")
    assert main([command, *args, "--print-config", f"{key}={int(value) + 1}"]) == 0
    printed = yaml.safe_load(capsys.readouterr().out)
    node = printed
    for part in key.split("."):
        node = node[part]
    assert node == int(value) + 1
    assert not (tmp_path / "x").exists()


def _lookup(config: dict, key: str):
    """The value of dotted ``key`` in a printed config."""
    for part in key.split("."):
        config = config[part]
    return config


@pytest.mark.parametrize(
    "command, args, expected",
    [
        (
            "localize",
            ["--model", "m", "--video", "v.mp4", "--fps", "2", "--rule", "max", "--threshold", "0.7", "seed=3"],
            {"model": "m", "fps": 2.0, "rule": "max", "threshold": 0.7, "threshold_scale": "unit", "seed": 3},
        ),
        (
            "serve",
            ["--model", "m", "--port", "8000", "--max-upload-mb", "2", "limits.max_pixels=1000", "host=0.0.0.0"],
            {"port": 8000, "host": "0.0.0.0", "limits.max_bytes": 2_000_000, "limits.max_pixels": 1000},
        ),
        ("export", ["onnx", "--model", "m", "--out", "x", "--parts", "check=false"], {"parts": True, "check": False}),
        (
            "convert",
            ["--format", "ezvsl", "c.pth", "--out", "x", "format=fnac"],
            {"format": "fnac", "checkpoint": "c.pth"},
        ),
    ],
)
def test_flags_and_overrides_resolve_into_one_config(command, args, expected, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main([command, *args, "--print-config"]) == 0
    printed = yaml.safe_load(capsys.readouterr().out)
    assert {key: _lookup(printed, key) for key in expected} == expected
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize("command", ["localize", "serve", "export"])
def test_flag_defaults_are_the_config_defaults(command, capsys):
    cls, args = COMMANDS[command]
    assert main([command, *args, "--print-config"]) == 0
    assert yaml.safe_load(capsys.readouterr().out) == to_dict(cls(model="m"))


def test_demo_flag_defaults_come_from_the_library():
    args = build_parser().parse_args(["demo"])
    defaults = demo_config()
    assert (args.out, args.device, args.seed) == (DEMO_OUT, defaults.train.device, defaults.train.seed)


def test_cli_retypes_no_default_or_choice_list():
    """Defaults and choices of options come from the configs and library constants, never from literals in cli.py."""
    source = Path(__file__).resolve().parents[1] / "src" / "vssl" / "cli.py"
    literals = [
        f"line {node.lineno}: {kw.arg}={ast.unparse(kw.value)}"
        for node in ast.walk(ast.parse(source.read_text()))
        if isinstance(node, ast.Call)
        for kw in node.keywords
        if kw.arg in ("default", "choices") and isinstance(kw.value, ast.Constant | ast.List | ast.Tuple | ast.Set)
    ]
    assert not literals, literals


@pytest.mark.parametrize(
    "command, args, override, key",
    [
        ("localize", COMMANDS["localize"][1], "rule=maxx", "rule"),
        ("localize", COMMANDS["localize"][1], "fps=0", "fps"),
        ("localize", COMMANDS["localize"][1], "threshold=nan", "threshold"),
        ("localize", COMMANDS["localize"][1], "device=gpu", "device"),
        ("localize", COMMANDS["localize"][1], "device=meta", "device"),
        ("localize", ["--model", "m", "--image", "i.jpg", "--silence", "--json", "x"], "model=", "model"),
        ("localize", ["--model", "m", "--video", "v.mp4", "--timeout", "-1"], "seed=1", "timeout"),
        ("serve", ["--model", "m"], "port=70000", "port"),
        ("serve", ["--model", "m", "--max-upload-mb", "0"], "host=::1", "max_bytes"),
        ("serve", ["--model", "m"], "limits.max_video_seconds=0", "max_video_seconds"),
        ("export", COMMANDS["export"][1], "format=tflite", "format"),
        ("export", COMMANDS["export"][1], "parts=maybe", "parts"),
        ("export", COMMANDS["export"][1], "model=", "model"),
        ("convert", COMMANDS["convert"][1], "format=nope", "format"),
        ("convert", COMMANDS["convert"][1], "checkpoint=", "checkpoint"),
    ],
)
def test_bad_inference_values_name_their_key(command, args, override, key, caplog, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with caplog.at_level(logging.ERROR):
        assert main([command, *args, override]) == 2
    (line,) = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert key in line and "\n" not in line
    assert "Traceback" not in capsys.readouterr().err and not (tmp_path / "x").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
@pytest.mark.parametrize(
    "args, prefix",
    [
        (["localize", "--model", "test", "--image", "i.jpg", "--silence", "--json", "x", "--device", "cuda"], ""),
        (["eval", "--model", "test", "--data", "synth:d", "--out", "x", "device=cuda"], "eval: "),
        (["train", "--out", "x", "data=synth:d", "model=test", "device=cuda"], "train: "),
        (["demo", "--out", "x", "--device", "cuda"], "demo: "),
    ],
    ids=["localize", "eval", "train", "demo"],
)
def test_a_missing_device_is_one_line_naming_it(args, prefix, caplog, capsys, tmp_path, monkeypatch):
    """Before anything is read, trained or written (the demo would otherwise pretrain for minutes first)."""
    monkeypatch.chdir(tmp_path)
    with caplog.at_level(logging.ERROR):
        assert main(args) == 2
    (line,) = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert line.startswith(f"{prefix}device 'cuda' is not available here")
    assert "Traceback" not in capsys.readouterr().err and list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "args",
    [
        ["train", "--out", "x", "data=synth:d", "device=gpu"],
        ["eval", "--model", "test", "--data", "d", "--out", "x", "device=gpu"],
    ],
)
def test_a_device_that_is_no_device_is_one_line_naming_it(args, caplog, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with caplog.at_level(logging.ERROR):
        assert main(args) == 2
    (line,) = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert "device" in line and "'gpu'" in line and list(tmp_path.iterdir()) == []


def test_a_bad_value_is_one_line_naming_the_key(caplog, tmp_path):
    with caplog.at_level(logging.ERROR):
        assert main(["synth", "--out", str(tmp_path / "x"), "n_train=many"]) == 2
        assert main(["eval", "--model", "m", "--data", "synth:d", "--out", "x", "negatives.noise=pink"]) == 2
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert "n_train" in errors[0] and "many" in errors[0]
    assert "negative noise 'pink' unknown" in errors[1]
    assert all("\n" not in e and "Traceback" not in e for e in errors)


@pytest.mark.parametrize(
    "override, key",
    [
        ("objective.sslsan.negatives.colors=[white,purple]", "negatives.colors"),
        ("objective.sslsan.negatives.num_noise=-1", "negatives.num_noise"),
    ],
)
def test_bad_training_values_name_their_key_without_a_traceback(override, key, caplog, tmp_path, capsys):
    with caplog.at_level(logging.ERROR):
        assert main(["train", "--out", str(tmp_path / "run"), "data=synth:x", override]) == 2
    (line,) = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert key in line and "Traceback" not in capsys.readouterr().err


def test_bad_trunk_values_name_their_key():
    from dataclasses import replace

    from vssl.errors import ConfigError
    from vssl.models.registry import model_config

    cfg = model_config("test")
    with pytest.raises(ConfigError, match=r"image_backbone.norm='layer'"):
        replace(cfg, image_backbone=replace(cfg.image_backbone, norm="layer"))
    with pytest.raises(ConfigError, match=r"audio_backbone.widths \[8, 8\] and audio_backbone.blocks"):
        replace(cfg, audio_backbone=replace(cfg.audio_backbone, widths=(8, 8)))
