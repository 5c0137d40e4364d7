"""Reading PyTorch files (``.pth``, ``.pt``) safely: ``torch.load(weights_only=True)`` and nothing else.

A full pickle load runs whatever the file asks for (``os.system``, anything), so a downloaded checkpoint could
take over the machine. The weights-only unpickler rebuilds tensors and plain data (dicts, lists, tuples,
numbers, strings) and refuses every other Python object. vssl never falls back to a full load: a file that
needs one is refused with a `VsslError` naming the file, the object it asks for and how someone who trusts
the file can keep its tensors alone. Release folders hold safetensors only and never reach this loader.
"""

from __future__ import annotations

import pickle
import re
from pathlib import Path
from typing import Any

import torch

from vssl.errors import VsslError

__all__ = ["RESAVE_STATE_DICT", "load_torch_file"]

RESAVE_STATE_DICT = "torch.save(torch.load(OLD, weights_only=False).state_dict(), NEW) for a saved module"
"""Default advice for an unsafe file: re-save its tensors alone (a state dict), once, from a trusted copy."""

# torch names the global it refused in "Unsupported global: GLOBAL argparse.Namespace was not an allowed
# global" and in "unsupported GLOBAL posix.system whose module posix is blocked" (os, subprocess, ...).
_REFUSED_GLOBAL = re.compile(r"GLOBAL (\S+)")


def load_torch_file(path: str | Path, resave: str = RESAVE_STATE_DICT) -> Any:
    """``torch.load(path, map_location="cpu", weights_only=True)`` with errors that name the file and the cause.

    ``resave`` is the advice given when the file stores a Python object that only a full load could rebuild.
    """
    path = Path(path)
    if not path.is_file():
        raise VsslError(f"{path}: {'file not found' if not path.exists() else 'not a regular file'}")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        refused = _REFUSED_GLOBAL.search(str(exc))
        if refused is None:
            detail = f"torch.load(weights_only=True): {_last_line(exc)}"
            raise VsslError(f"{path}: not a readable PyTorch checkpoint ({detail})") from exc
        raise VsslError(
            f"{path}: the file stores a Python object ({refused.group(1)}) that only a full pickle load can "
            "rebuild, and a full load can run arbitrary code from the file; vssl reads PyTorch files with "
            f"torch.load(weights_only=True) only. If you trust the file, save its tensors alone and use that: {resave}"
        ) from exc
    except Exception as exc:  # torch's readers raise anything on damaged bytes (struct.error, IndexError, ...)
        raise VsslError(f"{path}: not a readable PyTorch checkpoint ({_last_line(exc)})") from exc


def _last_line(exc: Exception) -> str:
    """The informative line of torch's multi-paragraph error messages (or the exception's type)."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    if lines and lines[-1].startswith("Check the documentation"):
        lines.pop()
    return lines[-1] if lines else type(exc).__name__
