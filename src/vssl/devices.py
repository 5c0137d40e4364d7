"""Torch devices named in a config: checked when the config is built (the name) and before a run (the machine).

A bad ``device=`` value is a `ConfigError` naming its key, in one line, never a traceback from deep in torch.
"""

from __future__ import annotations

import torch

from vssl.errors import ConfigError

DEVICE_TYPES = ("cpu", "cuda", "mps", "xpu")
"""Kinds of torch device a model runs on (``cuda`` covers ROCm builds too)."""


def check_device(device: str, key: str = "device") -> None:
    """Raise `ConfigError` naming ``key`` unless ``device`` names a device vssl runs on (cpu, cuda, cuda:1, ...)."""
    try:
        kind = torch.device(device).type
    except (RuntimeError, ValueError, TypeError):
        kind = None
    if kind not in DEVICE_TYPES:
        raise ConfigError(f"{key} {device!r} is not a device vssl runs on (cpu, cuda, cuda:1, mps, xpu)")


def require_device(device: str, key: str = "device") -> None:
    """Raise `ConfigError` naming ``key`` unless this machine has ``device`` (checked with an empty tensor there)."""
    check_device(device, key)
    try:
        torch.empty(0, device=device)
    except (RuntimeError, AssertionError) as exc:
        reason = str(exc).strip().partition("\n")[0] or type(exc).__name__
        raise ConfigError(f"{key} {device!r} is not available here: {reason}") from None
