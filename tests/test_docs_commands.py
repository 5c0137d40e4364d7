"""The README and docs/ are a promise: their Python runs, and every ``vssl`` command line in them parses.

The README's Python block runs verbatim in a folder holding what ``vssl demo`` writes (a benchmark and a release
folder, tiny here). Every ``vssl ...`` line of a shell block in README.md and docs/*.md is parsed by vssl's own
command line (options, ``key=value`` overrides and their config keys): a renamed flag or key fails here. Running
them all would need datasets and downloads; the ones that need neither run in their own tests.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
import torch

from vssl.cli import parse_args
from vssl.config import describe
from vssl.data.synth import SynthConfig, generate
from vssl.models.registry import create_model
from vssl.models.release import save_release

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
BLOCK = re.compile(r"^```(\w*)\n(.*?)^```", re.MULTILINE | re.DOTALL)


def blocks(page: Path, languages: tuple[str, ...]) -> list[str]:
    return [body for lang, body in BLOCK.findall(page.read_text()) if lang in languages]


def vssl_commands(page: Path) -> list[str]:
    """Every ``vssl ...`` command of the page's shell blocks: continuations joined, comments dropped, one command
    per ``&&`` / ``;`` / ``|`` segment, redirections dropped."""
    out = []
    for body in blocks(page, ("bash", "sh", "shell", "console", "")):
        for line in body.replace("\\\n", " ").splitlines():
            line = re.sub(r"\s#.*$", "", line).strip()
            for segment in re.split(r"&&|;|\|", line):
                segment = re.sub(r"\s\d?[<>]+\s*\S+", "", segment).strip()  # redirections
                if segment.startswith("vssl "):
                    out.append(segment)
    return out


COMMANDS = [(page.name, cmd) for page in PAGES for cmd in vssl_commands(page)]


def test_the_docs_hold_commands():
    assert len(COMMANDS) >= 20 and {page for page, _ in COMMANDS} >= {"README.md", "training.md", "evaluation.md"}


@pytest.mark.parametrize("page, command", COMMANDS, ids=[f"{p}:{c[:60]}" for p, c in COMMANDS])
def test_every_vssl_command_in_the_docs_parses(page, command):
    argv = shlex.split(re.sub(r"\$\{?\w+\}?", "X", command))[1:]  # shell variables stand for paths
    try:
        args = parse_args(argv)
    except SystemExit as exc:
        pytest.fail(f"{page}: `{command}` does not parse (exit {exc.code})")
    overrides = getattr(args, "overrides", [])
    if overrides:
        keys = [row[0] for row in describe(args.config_class)]
        for key in (o.split("=", 1)[0] for o in overrides):
            known = key in keys or any(k.startswith(f"{key}.") for k in keys)
            assert known, f"{page}: `{command}`: {key!r} is not a key of {args.config_class.__name__}"


def test_the_readme_python_runs_on_what_the_demo_writes(tmp_path, monkeypatch):
    generate(SynthConfig(n_train=0, n_calibration=0, n_test=1, image_size=64), tmp_path / "vssl-demo" / "data", False)
    save_release(create_model("test").eval(), tmp_path / "vssl-demo" / "models" / "sslsan")
    monkeypatch.chdir(tmp_path)
    (code,) = blocks(ROOT / "README.md", ("python",))
    scope: dict = {}
    exec(compile(code, "README.md", "exec"), scope)
    assert scope["cosine_map"].shape[0] == 1 and torch.all(scope["cosine_map"].abs() <= 1 + 1e-6)
