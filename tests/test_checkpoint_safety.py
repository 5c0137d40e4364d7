"""Checkpoint safety: PyTorch files are read weights-only, releases are safetensors only.

A pickle whose ``__reduce__`` runs a command (here: writes a marker file) is given to every loader of ``.pth``
files (``vssl convert``, the OGL prior's weights, training checkpoints): each must refuse it with a
`VsslError` that explains ``weights_only`` and must not run it. A release folder holding pickled weights
instead of ``model.safetensors`` is refused with the reason; damaged safetensors files and configs are
refused with an error naming the file.
"""

from __future__ import annotations

import ast
import builtins
import io
import json
import os
import pickle
import shlex
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from safetensors.torch import save_file

from vssl import load_model, save_release
from vssl.cli import main
from vssl.errors import VsslError
from vssl.models.convert import convert
from vssl.models.ogl import ObjectPrior
from vssl.models.registry import create_model
from vssl.train.checkpoint import load_checkpoint

SRC = Path(__file__).resolve().parents[1] / "src" / "vssl"


class Payload:
    """Unpickling this runs ``call(*args)``: what a malicious checkpoint does."""

    def __init__(self, call: Callable[..., object], *args: object):
        self.call, self.args = call, args

    def __reduce__(self):
        return self.call, self.args


def payloads(marker: Path) -> dict[str, Payload]:
    """Three ways a pickle can write ``marker``: a shell command, Python source, a subprocess."""
    return {
        "os.system": Payload(os.system, f"echo pwned > {shlex.quote(str(marker))}"),
        "exec": Payload(builtins.exec, f"open({str(marker)!r}, 'w').write('pwned')"),
        "subprocess": Payload(subprocess.check_call, ["touch", str(marker)]),
    }


def save(path: Path, obj: object, container: str) -> Path:
    """``obj`` as torch's zip file, torch's legacy file, or a bare pickle (protocol 2, as old torch wrote)."""
    if container == "zip":
        torch.save(obj, path)
    elif container == "legacy":
        torch.save(obj, path, _use_new_zipfile_serialization=False)
    else:
        path.write_bytes(pickle.dumps(obj, protocol=2))
    return path


LOADERS: dict[str, Callable[[Path, Path], object]] = {
    "convert": lambda path, tmp: convert(path, "ezvsl", tmp / "converted"),
    "ogl": lambda path, tmp: ObjectPrior(path),
    "train": lambda path, tmp: load_checkpoint(path),
}


@pytest.mark.parametrize("container", ["zip", "legacy", "pickle"])
@pytest.mark.parametrize("payload", ["os.system", "exec", "subprocess"])
@pytest.mark.parametrize("loader", sorted(LOADERS))
@pytest.mark.parametrize("nested", [False, True], ids=["bare", "nested"])
def test_malicious_pickles_are_refused_unrun(tmp_path, loader, payload, container, nested):
    marker = tmp_path / "marker"
    evil = payloads(marker)[payload]
    obj = {"model": {"w": torch.zeros(2)}, "args": evil} if nested else evil
    path = save(tmp_path / "evil.pth", obj, container)
    with pytest.raises(VsslError, match="weights_only") as info:
        LOADERS[loader](path, tmp_path)
    assert str(path) in str(info.value)
    assert not marker.exists(), "the pickle's code ran"


@pytest.mark.parametrize("loader", ["convert", "ogl"])
def test_refusal_names_the_object_and_how_to_keep_the_tensors(tmp_path, loader):
    path = save(tmp_path / "evil.pth", {"model": {}, "args": payloads(tmp_path / "marker")["os.system"]}, "zip")
    with pytest.raises(VsslError, match=r"\(posix\.system\).*arbitrary code.*weights_only=True.*torch\.save"):
        LOADERS[loader](path, tmp_path)


def test_vssl_convert_command_refuses_without_running_it(tmp_path, caplog):
    marker = tmp_path / "marker"
    path = save(tmp_path / "evil.pth", {"model": payloads(marker)["os.system"]}, "zip")
    assert main(["convert", "--format", "ezvsl", str(path), "--out", str(tmp_path / "model")]) == 2
    assert "weights_only=True" in caplog.text and not marker.exists()
    assert not (tmp_path / "model").exists()


def test_every_torch_load_in_vssl_is_weights_only():
    """Static guard: each ``torch.load(...)`` call in the package passes ``weights_only=True``."""
    calls = []
    for file in SRC.rglob("*.py"):
        for node in ast.walk(ast.parse(file.read_text())):
            if isinstance(node, ast.Call) and ast.unparse(node.func) == "torch.load":
                flag = next((k.value for k in node.keywords if k.arg == "weights_only"), None)
                calls.append((file.relative_to(SRC), node.lineno, isinstance(flag, ast.Constant) and flag.value))
    assert calls, "no torch.load call found: the guard looks in the wrong place"
    assert all(safe for *_, safe in calls), [c for c in calls if not c[2]]


# ---------------------------------------------------------------- release folders


@pytest.fixture(scope="module")
def release(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    return save_release(create_model("test").eval(), tmp_path_factory.mktemp("release") / "test")


def copy_release(release: Path, folder: Path, files: dict[str, bytes | None] | None = None) -> Path:
    """A copy of ``release`` in ``folder`` with ``files`` written over it (None: the file removed)."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("config.json", "model.safetensors"):
        (folder / name).write_bytes((release / name).read_bytes())
    for name, data in (files or {}).items():
        if data is None:
            (folder / name).unlink()
        else:
            (folder / name).write_bytes(data)
    return folder


@pytest.mark.parametrize("name", ["model.pth", "pytorch_model.bin", "model.pt", "model.ckpt"])
def test_release_with_pickled_weights_is_refused(tmp_path, release, name):
    marker = tmp_path / "marker"
    buffer = io.BytesIO()
    torch.save({"state": load_model(release).state_dict(), "hook": payloads(marker)["os.system"]}, buffer)
    folder = copy_release(release, tmp_path / "model", {"model.safetensors": None})
    (folder / name).write_bytes(buffer.getvalue())
    with pytest.raises(VsslError, match=rf"model\.safetensors: missing \(found {name}: .*safetensors only"):
        load_model(folder)
    assert not marker.exists()


def test_release_weights_must_be_safetensors_even_under_that_name(tmp_path, release):
    buffer = io.BytesIO()
    torch.save(load_model(release).state_dict(), buffer)
    folder = copy_release(release, tmp_path / "model", {"model.safetensors": buffer.getvalue()})
    with pytest.raises(VsslError, match="model.safetensors: not a readable safetensors file"):
        load_model(folder)


def _truncations(data: bytes) -> list[bytes]:
    return [b"", data[:4], data[:8], data[:20], data[: len(data) // 2], data[:-1]]


def test_truncated_safetensors_are_named(tmp_path, release):
    data = (release / "model.safetensors").read_bytes()
    for i, cut in enumerate(_truncations(data)):
        folder = copy_release(release, tmp_path / f"cut{i}", {"model.safetensors": cut})
        with pytest.raises(VsslError, match="model.safetensors: not a readable safetensors file") as info:
            load_model(folder)
        assert str(folder / "model.safetensors") in str(info.value)


def test_safetensors_of_other_shapes_are_named(tmp_path, release):
    state = {k: v.clone() for k, v in load_model(release).state_dict().items()}
    name = next(iter(state))
    state[name] = torch.zeros(3, 3)
    folder = copy_release(release, tmp_path / "model")
    save_file(state, str(folder / "model.safetensors"))
    with pytest.raises(VsslError, match=rf"(?s)model.safetensors: weights do not match .*config.json.*{name}"):
        load_model(folder)


@pytest.mark.parametrize(
    "config,match",
    [
        (b"[1, 2]", "a JSON list, not an object"),
        (b"null", "a JSON NoneType"),
        (b'{"format": "vssl-release/1"}', "no 'model' section"),
        (b'{"format": "vssl-release/1", "model": 3}', "no 'model' section"),
        (b'{"format": "caf\xe9"}', "not valid JSON"),
        (b'{"format": "vssl-release/1"', "not valid JSON"),
        (b'{"format": "other/1", "model": {}}', "not a vssl release"),
    ],
)
def test_damaged_release_configs_are_named(tmp_path, release, config, match):
    """Configs that once raised AttributeError, KeyError, TypeError or UnicodeDecodeError."""
    folder = copy_release(release, tmp_path / "model", {"config.json": config})
    with pytest.raises(VsslError, match=match) as info:
        load_model(folder)
    assert str(folder / "config.json") in str(info.value)


def test_unknown_model_keys_name_the_config(tmp_path, release):
    config = json.loads((release / "config.json").read_text())
    config["model"]["typo"] = 1
    folder = copy_release(release, tmp_path / "model", {"config.json": json.dumps(config).encode()})
    with pytest.raises(VsslError, match=r"config.json: unknown config key\(s\) model.typo"):
        load_model(folder)


FUZZ = settings(
    max_examples=40, deadline=None, database=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)


@st.composite
def edited(draw: st.DrawFn, data: bytes) -> bytes:
    """``data`` with 1-3 runs of bytes overwritten, or cut short."""
    out = bytearray(data)
    for _ in range(draw(st.integers(1, 3))):
        at = draw(st.integers(0, len(out) - 1))
        if draw(st.booleans()):
            chunk = draw(st.binary(min_size=1, max_size=8))
            out[at : at + len(chunk)] = chunk
        else:
            del out[max(1, at) :]
    return bytes(out)


@FUZZ
@given(data=st.data())
def test_edited_safetensors_load_or_are_named(tmp_path_factory, release, data):
    """Edited weights load (safetensors has no checksum: data bytes may change) or fail naming the file."""
    blob = data.draw(edited((release / "model.safetensors").read_bytes()))
    folder = copy_release(release, tmp_path_factory.mktemp("edited"), {"model.safetensors": blob})
    try:
        model = load_model(folder)
    except VsslError as err:
        assert str(folder / "model.safetensors") in str(err)
    else:
        assert all(torch.is_tensor(v) for v in model.state_dict().values())


@FUZZ
@given(data=st.data())
def test_edited_checkpoints_load_or_are_named(tmp_path_factory, data):
    """The convert loader on edited torch files (zip and legacy): any outcome but a typed error is a bug."""
    folder = tmp_path_factory.mktemp("pth")
    state = {"model": {"imgnet.conv1.weight": torch.randn(4, 3)}, "epoch": 3, "args": {"lr": 1e-4}}
    legacy = data.draw(st.booleans())
    seed = save(folder / "seed.pth", state, "legacy" if legacy else "zip").read_bytes()
    path = folder / "edited.pth"
    path.write_bytes(data.draw(edited(seed)))
    try:
        convert(path, "ezvsl", folder / "model")
    except VsslError as err:
        assert str(path) in str(err)
