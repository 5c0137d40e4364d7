"""Resume checkpoints: one torch dict with model, optimiser, scaler and position, written atomically.

Loaded with ``weights_only=True``: a checkpoint is data, never code.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from vssl.atomic import write_atomic
from vssl.errors import VsslError

CHECKPOINT_FORMAT = "vssl-train-checkpoint/1"


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> Path:
    """Write ``state`` (tensors, numbers, strings, nested dicts/lists) to ``path`` atomically."""
    return write_atomic(path, lambda tmp: torch.save({"format": CHECKPOINT_FORMAT, **state}, tmp))


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint`."""
    path = Path(path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise VsslError(f"{path}: no checkpoint there") from None
    except Exception as exc:  # corrupt or truncated file, or a pickle needing code
        raise VsslError(f"{path}: not a readable vssl checkpoint ({exc})") from exc
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise VsslError(f"{path}: not a vssl training checkpoint (expected format {CHECKPOINT_FORMAT})")
    return state
