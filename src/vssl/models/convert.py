"""Import official checkpoints of published methods as vssl release folders (SPEC §3).

An official EZ-VSL or FNAC checkpoint is a torch file ``{'model': state_dict, ...}`` (FNAC's also holds
optimiser state, epoch, ...) whose keys are ``imgnet.*``, ``img_proj.*``, ``audnet.*``, ``aud_proj.*``,
sometimes with the ``module.`` prefix of ``DataParallel``. vssl's ``resnet18`` localizer uses the same
names and shapes, so after the prefix is stripped the weights load key for key. SLAVC's adds
``img_proj1/2``, ``aud_proj1/2`` and ``momentum_*`` copies of all of them: vssl's ``slavc_resnet18``.
Unlike the reference code (``strict=False``), every key is checked: a missing, unexpected or misshapen
tensor is an error that lists them all. Files are read with ``torch.load(weights_only=True)``, which
cannot run code from the file.

Other methods are recognised by name so that the user learns what is missing instead of getting a
silently wrong model; their architectures are not implemented yet. Adding a format is one `FORMATS` entry.
"""

from __future__ import annotations

import hashlib
import pickle
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from vssl.errors import VsslError
from vssl.models.localizer import AVLocalizer
from vssl.models.registry import create_model
from vssl.models.release import save_release

DATA_PARALLEL_PREFIX = "module."
_MAX_LISTED = 20  # keys named per category in an error message


@dataclass(frozen=True)
class CheckpointFormat:
    """How one method's official checkpoint is laid out, and which vssl architecture holds it."""

    name: str
    """Value of ``vssl convert --format``."""
    method: str
    """The method and where it was published."""
    state_key: str
    """Entry of the checkpoint dict that holds the model's state dict."""
    model_size: str | None
    """vssl registry size with the same architecture and key names; None: not implemented yet."""
    missing: str = ""
    """What vssl lacks for this format (when ``model_size`` is None), said in the error."""

    @property
    def supported(self) -> bool:
        return self.model_size is not None


_LVS_FAMILY = (
    "a ResNet-18 with a stride-1 layer4 (14x14 maps), no projection heads and a renamed 1-channel audio stem "
    "(audnet.conv1_a)"
)

FORMATS: dict[str, CheckpointFormat] = {
    f.name: f
    for f in (
        CheckpointFormat("ezvsl", "EZ-VSL (ECCV 2022)", "model", "resnet18"),
        CheckpointFormat("fnac", "FNAC (CVPR 2023)", "model", "resnet18"),
        # Two heads per modality (img_proj1/2, aud_proj1/2) and momentum copies (momentum_*); vssl's maps of a
        # converted model come from the momentum encoders, as SLAVC's published evaluation (--use_mom_eval).
        CheckpointFormat("slavc", "SLAVC (NeurIPS 2022)", "model", "slavc_resnet18"),
        CheckpointFormat("lvs", "LVS (CVPR 2021)", "model_state_dict", None, _LVS_FAMILY),
        CheckpointFormat("sslalign", "SSL-Align (ICCV 2023)", "model_state_dict", None, _LVS_FAMILY),
        CheckpointFormat("ssltie", "SSL-TIE (ACM MM 2022)", "model_state_dict", None, _LVS_FAMILY),
    )
}


def checkpoint_format(name: str) -> CheckpointFormat:
    """The format called ``name``; raises `VsslError` if unknown or if vssl lacks its architecture."""
    fmt = FORMATS.get(name)
    if fmt is None:
        raise VsslError(f"unknown checkpoint format {name!r}; known: {', '.join(FORMATS)}")
    if not fmt.supported:
        raise VsslError(
            f"{fmt.method} checkpoints (format {name!r}) are recognised, but vssl does not implement their "
            f"architecture yet: it needs {fmt.missing}. Supported formats: "
            + ", ".join(n for n, f in FORMATS.items() if f.supported)
        )
    return fmt


def read_checkpoint(path: str | Path) -> Any:
    """``torch.load(path, weights_only=True)`` on the CPU, with errors that name the file and the cause."""
    path = Path(path)
    if not path.is_file():
        raise VsslError(f"{path}: {'file not found' if not path.exists() else 'not a regular file'}")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        unsafe = re.search(r"Unsupported global: GLOBAL (\S+)", str(exc))
        if unsafe is None:
            raise VsslError(f"{path}: not a readable PyTorch checkpoint ({_last_line(exc)})") from exc
        raise VsslError(
            f"{path}: the checkpoint stores a Python object ({unsafe.group(1)}) that only a full pickle load "
            "can rebuild, and a full load can run arbitrary code from the file; vssl reads checkpoints with "
            "torch.load(weights_only=True) only. If you trust the file, save its weights alone and convert that: "
            "torch.save({'model': torch.load(OLD, weights_only=False)['model']}, NEW)"
        ) from exc
    except (RuntimeError, EOFError, OSError, ValueError) as exc:
        raise VsslError(f"{path}: not a readable PyTorch checkpoint ({_last_line(exc)})") from exc


def _last_line(exc: Exception) -> str:
    """The informative line of torch's multi-paragraph error messages (or the exception's type)."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    if lines and lines[-1].startswith("Check the documentation"):
        lines.pop()
    return lines[-1] if lines else type(exc).__name__


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


def _listing(title: str, entries: list[str]) -> str:
    more = f", ... and {len(entries) - _MAX_LISTED} more" if len(entries) > _MAX_LISTED else ""
    return f"{title} ({len(entries)}): {', '.join(entries[:_MAX_LISTED])}{more}"


def check_state_dict(
    state: Mapping[str, torch.Tensor], model: AVLocalizer, fmt: CheckpointFormat, path: str | Path
) -> None:
    """Raise `VsslError` listing every missing, unexpected and misshapen key, and non-finite tensors."""
    expected = model.state_dict()
    problems = []
    if missing := sorted(set(expected) - set(state)):
        problems.append(_listing("missing keys", missing))
    if unexpected := sorted(set(state) - set(expected)):
        problems.append(_listing("unexpected keys", unexpected))
    shared = sorted(set(state) & set(expected))
    if mismatched := [
        f"{k} {list(state[k].shape)} (model {list(expected[k].shape)})"
        for k in shared
        if state[k].shape != expected[k].shape
    ]:
        problems.append(_listing("shape mismatches", mismatched))
    if not_finite := [k for k in shared if state[k].is_floating_point() and not torch.isfinite(state[k]).all()]:
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


def load_official(path: str | Path, fmt_name: str) -> AVLocalizer:
    """An official checkpoint of format ``fmt_name`` as a vssl localizer in eval mode (CPU, strict keys)."""
    fmt = checkpoint_format(fmt_name)  # before reading: an unsupported format fails at once
    state = official_state_dict(read_checkpoint(path), fmt, path)
    model = create_model(fmt.model_size)
    check_state_dict(state, model, fmt, path)
    model.load_state_dict(state, strict=True)
    return model.eval()


def convert(path: str | Path, fmt_name: str, out: str | Path) -> Path:
    """Convert an official checkpoint to a release folder ``out`` (``config.json`` + ``model.safetensors``).

    ``config.json`` records the source (format, file name, SHA-256) beside the architecture; the result
    loads with ``vssl.load_model(out)``.
    """
    path = Path(path)
    model = load_official(path, fmt_name)
    source = {"format": fmt_name, "method": FORMATS[fmt_name].method, "file": path.name, "sha256": _sha256(path)}
    return save_release(model, out, extra={"converted_from": source})
