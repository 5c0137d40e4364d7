"""Stopping on request: SIGTERM (a scheduler, ``docker stop``, ``kill``) or SIGINT (Ctrl-C) ends training cleanly.

While training runs, `StopSignals` turns the first SIGTERM or SIGINT into a request, read by the loop
between two steps: the step in progress finishes, a checkpoint is written (atomically) and ``train``
raises `vssl.errors.TrainingStopped`; ``vssl train`` then exits with 128 + the signal number (143 for
SIGTERM, 130 for SIGINT) and ``--resume`` continues exactly there. A second signal acts as it would have
without vssl (SIGINT raises ``KeyboardInterrupt``, SIGTERM ends the process): the checkpoints are atomic,
so even that loses at most the steps since the last one.

DataLoader worker processes ignore both signals (`ignore_stop_signals`, their ``worker_init_fn``): a
Ctrl-C reaches every process of the terminal's group, and a worker that died of it would break the batch
the main process is waiting for. Workers still end with the main process (PyTorch's watchdog).
"""

from __future__ import annotations

import signal
import threading
from types import FrameType
from typing import Any

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class StopSignals:
    """Context manager: ``received`` is the first stop signal's number (None until one arrives).

    Handlers can only be installed in the main thread; elsewhere (training inside a thread) signals keep
    their usual effect and ``received`` stays None.
    """

    def __init__(self) -> None:
        self.received: int | None = None
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> StopSignals:
        if threading.current_thread() is threading.main_thread():
            for sig in STOP_SIGNALS:
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self.received = signum  # acted upon (and logged) by the loop, between two steps
        self._restore()  # a second signal acts at once

    def _restore(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, signal.SIG_DFL if handler is None else handler)  # None: set outside Python
        self._previous.clear()

    def __exit__(self, *exc: object) -> None:
        self._restore()


def ignore_stop_signals(worker_id: int) -> None:
    """DataLoader ``worker_init_fn``: the main process alone decides when to stop (see the module docstring)."""
    for sig in STOP_SIGNALS:
        signal.signal(sig, signal.SIG_IGN)
