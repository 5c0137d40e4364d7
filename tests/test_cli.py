import subprocess
import sys

import pytest

from vssl.cli import build_parser, main

SUBCOMMANDS = ["demo", "synth", "train", "convert", "localize", "score", "eval", "prepare"]


def test_every_subcommand_has_help(capsys):
    for args in ([], *([c] for c in SUBCOMMANDS)):
        with pytest.raises(SystemExit) as exc:
            main([*args, "--help"])
        assert exc.value.code == 0
        assert "usage: vssl" in capsys.readouterr().out


def test_parser_knows_the_subcommands():
    choices = build_parser()._subparsers._group_actions[0].choices
    assert set(SUBCOMMANDS) <= set(choices)


def test_console_script_runs():
    out = subprocess.run([sys.executable, "-m", "vssl.cli", "--help"], capture_output=True, text=True, check=True)
    assert "demo" in out.stdout and "train" in out.stdout


def test_errors_are_reported_without_traceback(tmp_path, caplog):
    assert main(["train", "--out", str(tmp_path / "run"), "data=synth:" + str(tmp_path / "nowhere")]) == 2
    assert "nowhere" in caplog.text
