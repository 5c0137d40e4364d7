"""Errors vssl raises for bad input: each names the file (or field) and the problem."""

from __future__ import annotations

import signal
from pathlib import Path


class VsslError(Exception):
    """Base class of every error vssl raises on purpose."""


class MediaError(VsslError, ValueError):
    """An image, audio or video file that cannot be used.

    The message always starts with the path, so a user can find the file at once.
    """

    def __init__(self, path: str | Path, problem: str):
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


class DatasetError(VsslError, ValueError):
    """A dataset root, annotation file or field that is missing or malformed."""


class ConfigError(VsslError, ValueError):
    """A configuration value or command-line override that is not valid."""


class CheckpointError(VsslError):
    """A training checkpoint that is missing, damaged, of another kind, or would need code to load."""


class TrainingError(VsslError):
    """Training cannot go on (e.g. losses that stay non-finite); the message says what and from where to resume."""


class TrainingStopped(VsslError):
    """Training stopped on a signal (SIGTERM, SIGINT) after writing its checkpoint; ``--resume`` continues it."""

    def __init__(self, signum: int, step: int, checkpoint: str | Path):
        self.signum, self.step, self.checkpoint = signum, step, Path(checkpoint)
        name = signal.Signals(signum).name
        super().__init__(f"stopped by {name} at step {step}; checkpoint {checkpoint}; continue the run with --resume")


def require_file(path: str | Path) -> Path:
    """``path`` as a `Path` when it is a regular file; otherwise a `MediaError` saying what it is.

    Checked before any decoder sees the path: FFmpeg would block forever on a named pipe.
    """
    path = Path(path)
    if not path.is_file():
        raise MediaError(path, "file not found" if not path.exists() else "not a regular file")
    return path
