"""Configs document themselves: every command's --help lists every key of its config (type, default, doc), takes
``key=value`` overrides and prints the resolved config with --print-config; a bad value is one line naming the key."""

import logging

import pytest
import yaml

from vssl.cli import build_parser, main
from vssl.config import describe
from vssl.data.cache import CacheConfig
from vssl.data.prepare import PrepareConfig
from vssl.data.synth import SynthConfig
from vssl.demo import DemoConfig
from vssl.evaluation.run import EvalConfig
from vssl.evaluation.scoring import ScoreConfig
from vssl.train.config import TrainConfig

COMMANDS = {
    "demo": (DemoConfig, []),
    "synth": (SynthConfig, ["--out", "x"]),
    "train": (TrainConfig, ["--out", "x"]),
    "eval": (EvalConfig, ["--model", "m", "--data", "synth:d", "--out", "x"]),
    "cache": (CacheConfig, ["synth:d", "x"]),
    "score": (ScoreConfig, ["--maps", "m.npz", "--gt", "g.json", "--out", "x"]),
    "prepare": (PrepareConfig, ["videos", "x"]),
}


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


@pytest.mark.parametrize("command", COMMANDS)
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
