"""Resume checkpoints: one torch dict with model, optimiser, scaler and position; written atomically, verified on load.

A run keeps two: ``checkpoints/last.pt`` and the one before it, ``checkpoints/last.previous.pt``. A new
checkpoint is written to a temporary file beside them, then the old ``last.pt`` becomes the previous one
and the new file becomes ``last.pt``, each in one rename: a crash at any moment (``kill -9``, power cut
after the data reached the disk) leaves the newest complete checkpoint readable under one of the two names.

Every checkpoint records the SHA-256 of its contents (`state_digest`: every tensor's bytes, dtype and
shape, every number and string, in order); `load_checkpoint` recomputes it, so a file damaged on disk is
refused with a `CheckpointError` naming it rather than resumed with flipped bits (torch's zip container
notices a truncated file but not changed bytes). `latest_checkpoint` falls back to the previous
checkpoint, with a warning, when ``last.pt`` is missing or damaged.

Loaded with ``weights_only=True`` (`vssl.models.torch_files.load_torch_file`): a checkpoint is data, never
code; a file that needs arbitrary unpickling is refused with the reason.
"""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path
from typing import Any

import torch

from vssl.atomic import atomic_path
from vssl.errors import CheckpointError, VsslError
from vssl.models.torch_files import load_torch_file

log = logging.getLogger(__name__)

CHECKPOINT_FORMAT = "vssl-train-checkpoint/1"
LAST = "last.pt"
PREVIOUS = "last.previous.pt"
DIGEST_KEY = "sha256"
NOT_OURS = "note that vssl train writes tensors and plain data only, so this file is not one of its checkpoints"


def _update(h: Any, value: Any) -> None:
    """Feed ``value`` (nested dicts, lists, tuples, tensors, numbers, strings, None) into the hash ``h``."""
    if isinstance(value, torch.Tensor):
        t = value.detach().to("cpu").contiguous()
        h.update(f"tensor{t.dtype}{tuple(t.shape)}".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    elif isinstance(value, dict):
        h.update(f"dict{len(value)}".encode())
        for key, item in value.items():
            _update(h, key)
            _update(h, item)
    elif isinstance(value, list | tuple):
        h.update(f"{type(value).__name__}{len(value)}".encode())
        for item in value:
            _update(h, item)
    else:
        h.update(f"{type(value).__name__}:{value!r};".encode())


def state_digest(state: dict[str, Any]) -> str:
    """SHA-256 of a checkpoint's contents (its ``sha256`` entry left out), independent of the file's layout."""
    h = hashlib.sha256()
    _update(h, {k: v for k, v in state.items() if k != DIGEST_KEY})
    return h.hexdigest()


def previous_path(path: Path) -> Path:
    """Where the checkpoint before ``path`` is kept."""
    return path.with_name(PREVIOUS) if path.name == LAST else path.with_suffix(".previous" + path.suffix)


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> Path:
    """Write ``state`` (tensors, numbers, strings, nested dicts/lists) to ``path`` atomically, with its digest;
    the checkpoint ``path`` held before becomes `previous_path`."""
    path = Path(path)
    full = {"format": CHECKPOINT_FORMAT, **state}
    full[DIGEST_KEY] = state_digest(full)
    with atomic_path(path) as tmp:
        torch.save(full, tmp)
        if path.exists():  # the new file is complete: only now may the old one step back
            os.replace(path, previous_path(path))
    return path


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read and verify a checkpoint written by :func:`save_checkpoint`; `CheckpointError` naming the file if
    it is missing, truncated, damaged, of another kind, or would need arbitrary code to load."""
    path = Path(path)
    try:
        state = load_torch_file(path, resave=NOT_OURS)
    except VsslError as exc:  # missing, truncated, damaged, or a pickle needing code: the loader names the cause
        raise CheckpointError(str(exc)) from exc
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path}: not a vssl training checkpoint (expected format {CHECKPOINT_FORMAT})")
    digest = state.pop(DIGEST_KEY, None)
    if digest is None:
        log.info("%s: written by an older vssl without a digest: not verified", path)
    elif digest != state_digest(state):
        raise CheckpointError(f"{path}: damaged checkpoint (its contents no longer match the SHA-256 written with it)")
    return state


def latest_checkpoint(folder: str | Path) -> tuple[dict[str, Any], Path] | None:
    """The newest readable checkpoint in ``folder`` and its path: ``last.pt``, else (warning) the previous one.

    None when the folder holds no checkpoint; `CheckpointError` naming every file when none can be read.
    """
    folder = Path(folder)
    candidates = [p for p in (folder / LAST, folder / PREVIOUS) if p.exists()]
    problems = []
    for path in candidates:
        try:
            state = load_checkpoint(path)
        except CheckpointError as exc:
            problems.append(str(exc))
            continue
        if problems or path.name != LAST:
            reason = "; ".join(problems) or f"{folder / LAST} is missing (a crash between two renames)"
            log.warning("resuming from the previous checkpoint %s (step %s): %s", path, state.get("step"), reason)
        return state, path
    if problems:
        raise CheckpointError(f"no readable checkpoint in {folder}: " + "; ".join(problems))
    return None


def remove_temporaries(folder: str | Path) -> None:
    """Delete checkpoint temporaries a killed run left behind (their final rename never happened)."""
    for tmp in Path(folder).glob(f".{LAST}.*.tmp"):
        tmp.unlink(missing_ok=True)
