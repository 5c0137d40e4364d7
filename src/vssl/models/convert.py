"""Import official checkpoints of published methods as vssl release folders (SPEC §3).

An official EZ-VSL or FNAC checkpoint is a torch file ``{'model': state_dict, ...}`` (FNAC's also holds
optimiser state, epoch, ...) whose keys are ``imgnet.*``, ``img_proj.*``, ``audnet.*``, ``aud_proj.*``,
sometimes with the ``module.`` prefix of ``DataParallel``. vssl's ``resnet18`` localizer uses the same
names and shapes, so after the prefix is stripped the weights load key for key. SLAVC's adds
``img_proj1/2``, ``aud_proj1/2`` and ``momentum_*`` copies of all of them: vssl's ``slavc_resnet18``.

LVS and SSL-Align checkpoints are ``{'model_state_dict': state_dict, ...}`` (SSL-TIE's: ``{'state_dict': ...}``,
with three more modules its forward never uses) of LVS's ``AVENet``: two ResNet-18
trunks ``imgnet`` and ``audnet`` with layer4 at stride 1 and no projection heads; the map is the cosine of the
L2-normalised image features with the L2-normalised, globally max-pooled audio features (vssl's
``lvs_official_resnet18``). Each trunk carries three stems (``conv1`` RGB, ``conv1_a`` 1-channel,
``conv1_flow`` 6-channel) and an ImageNet ``fc``, of which the forward runs one stem and no ``fc``: the idle
tensors are dropped (listed per format in `CheckpointFormat.unused`, recorded in ``config.json``) and the audio
stem ``audnet.conv1_a`` becomes ``audnet.conv1`` (`CheckpointFormat.renamed`). The converted model also carries
the audio front end of the method's own test code (`CheckpointFormat.audio`; SSL-TIE's: mel bands in dB).

Unlike the reference code (``strict=False``, or ``model_dict.update`` that keeps random weights for absent
keys), every other key is checked: a missing, unexpected or misshapen tensor is an error that lists them all,
in the checkpoint's own names. Files are read with ``torch.load(weights_only=True)``, which cannot run code
from the file.

A method declares its formats in its `vssl.models.method.Method` record (``formats=``); formats of methods
vssl does not train are `OTHER_FORMATS` entries.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch

from vssl.audio import AudioConfig
from vssl.errors import ConfigError, VsslError
from vssl.models.checkpoint_formats import (
    LVS_RENAMED,
    LVS_UNUSED,
    LVS_UNUSED_REASON,
    CheckpointFormat,
    KeyShapes,
)
from vssl.models.localizer import AVLocalizer
from vssl.models.objectives import METHODS
from vssl.models.registry import create_model, model_config
from vssl.models.release import save_release
from vssl.models.torch_files import load_torch_file

DATA_PARALLEL_PREFIX = "module."
_MAX_LISTED = 20  # keys named per category in an error message


# SSL-TIE's AVENet (models/model.py) adds vision_fc1 (never called) and conv3 -> norm3, whose output (out1) the
# forward computes and discards: the returned map A is LVS's cosine map.
_SSLTIE_UNUSED: KeyShapes = (
    *LVS_UNUSED,
    ("vision_fc1.weight", (512, 1024, 1, 1)),
    ("vision_fc1.bias", (512,)),
    ("conv3.weight", (1, 1, 1, 1)),
    ("conv3.bias", (1,)),
    ("norm3.weight", (1,)),
    ("norm3.bias", (1,)),
    ("norm3.running_mean", (1,)),
    ("norm3.running_var", (1,)),
    ("norm3.num_batches_tracked", ()),
)
_SSLTIE_UNUSED_REASON = (
    LVS_UNUSED_REASON + "; SSL-TIE's vision_fc1 is never called and its conv3 -> norm3 output is computed and "
    "discarded, the returned map being LVS's"
)

OTHER_FORMATS: tuple[CheckpointFormat, ...] = (
    CheckpointFormat(
        "sslalign",
        "SSL-Align (ICCV 2023)",
        "model_state_dict",
        "lvs_official_resnet18",
        renamed=LVS_RENAMED,
        unused=LVS_UNUSED,
        unused_reason=LVS_UNUSED_REASON,
        audio=AudioConfig(noverlap=353),
        audio_reason=(
            "SSL-Align's test.py (datasets_lvs.py): seconds 3.5-6.5 of the 10 s clip (its central 3 s), "
            "scipy spectrogram nperseg 512, noverlap 353 (hop 159, 299 frames), log(S + 1e-7) / 12"
        ),
    ),
    CheckpointFormat(
        "ssltie",
        "SSL-TIE (ACM MM 2022)",
        "state_dict",  # main.py saves {'epoch', 'state_dict', 'best_miou', 'optimizer', 'iteration'}
        "lvs_official_resnet18",
        renamed=LVS_RENAMED,
        unused=_SSLTIE_UNUSED,
        unused_reason=_SSLTIE_UNUSED_REASON,
        audio=AudioConfig(duration=10.0, noverlap=273, features="mel_db", n_mels=257),
        audio_reason=(
            "SSL-TIE's test loader (datasets/dataloader.py): the first 10 s of the clip (tiled if shorter; vssl "
            "takes the central 10 s, the same for clips of 10 s or less) at the file's rate (vssl: 16 kHz), "
            "torchaudio MelSpectrogram n_fft 512, hop 239, 257 mel bands, normalized=True, then "
            "AmplitudeToDB (power, 1e-10 floor). Its frames are resized to 224 on the shorter side and "
            "centre-cropped; vssl resizes them to 224x224 as the EZ-VSL family and box annotations do "
            "(the same for square frames)"
        ),
    ),
)
"""Formats of methods vssl evaluates but does not train (their checkpoints hold LVS's network)."""


def checkpoint_formats() -> dict[str, CheckpointFormat]:
    """Every registered method's formats (`Method.formats`), then `OTHER_FORMATS`, by name, each with the
    architecture of its ``model_size``."""
    declared = [fmt for method in METHODS.values() for fmt in method.formats] + list(OTHER_FORMATS)
    return {fmt.name: replace(fmt, architecture=model_config(fmt.model_size)) for fmt in declared}


FORMATS = checkpoint_formats()
"""`checkpoint_formats` of the methods registered in vssl (the CLI's ``--format`` choices)."""


@dataclass(frozen=True)
class ConvertConfig:
    """``vssl convert``: which official checkpoint, of which format."""

    format: str = ""
    """the method (and release) that wrote the checkpoint: one of the --format choices, e.g. ezvsl, fnac, slavc, lvs"""
    checkpoint: str = ""
    """official checkpoint file (.pth), read with torch.load(weights_only=True): it cannot run code"""

    def __post_init__(self) -> None:
        known = checkpoint_formats()  # read now: a method registered at run time brings its formats
        if self.format not in known:
            raise ConfigError(f"format {self.format!r} unknown; choose one of {list(known)}")
        if not self.checkpoint:
            raise ConfigError("checkpoint must name the official checkpoint file")


def checkpoint_format(name: str) -> CheckpointFormat:
    """The format called ``name``; raises `VsslError` if unknown."""
    formats = checkpoint_formats()
    if name not in formats:
        raise VsslError(f"unknown checkpoint format {name!r}; known: {', '.join(formats)}")
    return formats[name]


def read_checkpoint(path: str | Path, state_key: str = "model") -> Any:
    """``torch.load(path, weights_only=True)`` on the CPU, with errors that name the file and the cause.

    ``state_key`` (the entry holding the state dict) only shapes the advice given for unsafe files.
    """
    resave = f"torch.save({{{state_key!r}: torch.load(OLD, weights_only=False)[{state_key!r}]}}, NEW)"
    return load_torch_file(path, resave)


def official_state_dict(checkpoint: Any, fmt: CheckpointFormat, path: str | Path) -> dict[str, torch.Tensor]:
    """The model's state dict from a loaded checkpoint, ``module.`` prefix removed (keys otherwise unchanged)."""
    if not isinstance(checkpoint, Mapping) or fmt.state_key not in checkpoint:
        found = sorted(map(str, checkpoint)) if isinstance(checkpoint, Mapping) else type(checkpoint).__name__
        raise VsslError(f"{path}: a {fmt.name} checkpoint is a dict with the entry {fmt.state_key!r}; found {found}")
    state = checkpoint[fmt.state_key]
    if not isinstance(state, Mapping) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise VsslError(f"{path}: entry {fmt.state_key!r} is not a state dict of tensors")
    if state and all(k.startswith(DATA_PARALLEL_PREFIX) for k in state):
        return {k[len(DATA_PARALLEL_PREFIX) :]: v for k, v in state.items()}
    return dict(state)


@dataclass(frozen=True)
class MappedState:
    """An official state dict under vssl's key names, and what the mapping did."""

    state: dict[str, torch.Tensor]
    """Tensors under vssl's names, unused ones dropped."""
    dropped: list[str]
    """Official keys of the unused tensors that were present and dropped."""
    renamed: dict[str, str]
    """Official key -> vssl key, for the renamed tensors that were present."""
    problems: list[str]
    """Unused tensors of an unexpected shape, and renames onto a key that is already taken."""


def map_official_keys(state: Mapping[str, torch.Tensor], fmt: CheckpointFormat) -> MappedState:
    """Drop the format's unused tensors (checking their official shapes), then apply its renames."""
    unused = dict(fmt.unused)
    misshapen = [
        f"{k} {list(state[k].shape)} (official {list(unused[k])})"
        for k in sorted(unused.keys() & state.keys())
        if tuple(state[k].shape) != unused[k]
    ]
    mapped = {k: v for k, v in state.items() if k not in unused}
    renamed, taken = {}, []
    for official, ours in fmt.renamed:
        if official not in mapped:
            continue  # reported as missing (under its official name) by `check_state_dict`
        if ours in mapped:
            taken.append(f"{official} -> {ours}")
            continue
        mapped[ours] = mapped.pop(official)
        renamed[official] = ours
    problems = []
    if misshapen:
        problems.append(_listing("unused tensors of an unexpected shape (another architecture?)", misshapen))
    if taken:
        problems.append(_listing("renamed keys whose vssl name is already taken", taken))
    return MappedState(mapped, sorted(unused.keys() & state.keys()), renamed, problems)


def _listing(title: str, entries: list[str]) -> str:
    more = f", ... and {len(entries) - _MAX_LISTED} more" if len(entries) > _MAX_LISTED else ""
    return f"{title} ({len(entries)}): {', '.join(entries[:_MAX_LISTED])}{more}"


def check_state_dict(
    state: Mapping[str, torch.Tensor],
    model: AVLocalizer,
    fmt: CheckpointFormat,
    path: str | Path,
    problems: Sequence[str] = (),
) -> None:
    """Raise `VsslError` listing every missing, unexpected and misshapen key, non-finite tensors and ``problems``.

    ``state`` is under vssl's names (see `map_official_keys`); keys are reported under the checkpoint's own.
    """
    official = {ours: theirs for theirs, ours in fmt.renamed}
    expected = model.state_dict()
    problems = list(problems)
    if missing := sorted(official.get(k, k) for k in set(expected) - set(state)):
        problems.append(_listing("missing keys", missing))
    if unexpected := sorted(set(state) - set(expected)):
        problems.append(_listing("unexpected keys", unexpected))
    shared = sorted(set(state) & set(expected))
    if mismatched := [
        f"{official.get(k, k)} {list(state[k].shape)} (model {list(expected[k].shape)})"
        for k in shared
        if state[k].shape != expected[k].shape
    ]:
        problems.append(_listing("shape mismatches", mismatched))
    if not_finite := [
        official.get(k, k) for k in shared if state[k].is_floating_point() and not torch.isfinite(state[k]).all()
    ]:
        problems.append(_listing("tensors with NaN or infinite values", not_finite))
    if problems:
        raise VsslError(
            f"{path}: does not match vssl's {fmt.model_size} architecture for {fmt.method} checkpoints "
            f"(format {fmt.name!r}): " + "; ".join(problems)
        )


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _load(path: str | Path, fmt: CheckpointFormat) -> tuple[AVLocalizer, MappedState]:
    """The converted model in eval mode and the key mapping that produced it."""
    mapped = map_official_keys(official_state_dict(read_checkpoint(path, fmt.state_key), fmt, path), fmt)
    model = create_model(fmt.model_config())
    check_state_dict(mapped.state, model, fmt, path, mapped.problems)
    model.load_state_dict(mapped.state, strict=True)
    return model.eval(), mapped


def load_official(path: str | Path, fmt_name: str) -> AVLocalizer:
    """An official checkpoint of format ``fmt_name`` as a vssl localizer in eval mode (CPU, strict keys)."""
    fmt = checkpoint_format(fmt_name)  # before reading: an unknown format fails at once
    return _load(path, fmt)[0]


def convert(path: str | Path, fmt_name: str, out: str | Path) -> Path:
    """Convert an official checkpoint to a release folder ``out`` (``config.json`` + ``model.safetensors``).

    ``config.json`` records the source (format, file name, SHA-256) beside the architecture and, for formats
    whose keys are mapped, the renamed keys, the dropped unused keys and why they are unused, and where the
    audio front end comes from; the result loads with ``vssl.load_model(out)``.
    """
    path = Path(path)
    fmt = checkpoint_format(fmt_name)
    model, mapped = _load(path, fmt)
    source: dict[str, Any] = {"format": fmt_name, "method": fmt.method, "file": path.name, "sha256": _sha256(path)}
    if mapped.renamed:
        source["renamed_keys"] = mapped.renamed
    if mapped.dropped:
        source["dropped_unused_keys"] = mapped.dropped
        source["dropped_because"] = fmt.unused_reason
    if fmt.audio is not None:
        source["audio_front_end"] = fmt.audio_reason
    return save_release(model, out, extra={"converted_from": source})
