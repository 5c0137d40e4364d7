"""What training leaves out, counted and bounded: unreadable items, and steps whose loss is not finite.

* `SkippedItems`: items whose files could not be read (see :mod:`vssl.data.skipping`) are left out of
  their batch. Each is logged, counted in ``metrics.csv`` (``skipped_items``) and listed with its epoch,
  step, file and error in ``RUN/skipped.json`` (rewritten at every epoch end). When more than
  ``max_bad_fraction`` of an epoch's items are unreadable the run stops with a `DatasetError` giving the
  counts and a few files: a dataset that broken needs fixing, not training around.
* `NonFiniteLosses`: a step whose loss is NaN or infinite makes no update (its gradients are dropped and
  the BatchNorm statistics its forward changed are put back, so the model is as before the step); it is
  logged and counted in ``metrics.csv`` (``nonfinite_steps``); ``max_bad_steps`` such steps in a row stop
  the run with a `TrainingError`.

Both keep their counts in the resume checkpoint (`state`), so a resumed run reports what an uninterrupted
one would. Steps are numbered as in ``metrics.csv``: step 1 is the first optimiser step.
"""

from __future__ import annotations

import json
import logging
import math
from collections import Counter
from pathlib import Path
from typing import Any

import torch

from vssl.atomic import write_text_atomic
from vssl.errors import DatasetError, TrainingError

log = logging.getLogger(__name__)

SKIPPED_FILE = "skipped.json"
_SHOWN = 3  # files named in a log line or an error message; skipped.json holds all of them


def _examples(records: list[dict[str, Any]]) -> str:
    shown = "; ".join(r["error"] for r in records[:_SHOWN])
    return shown + (f" (+{len(records) - _SHOWN} more)" if len(records) > _SHOWN else "")


class SkippedItems:
    """Unreadable items met so far, per epoch, against the budget ``max_fraction`` of ``items_per_epoch``.

    ``run_dir``: where ``skipped.json`` is written; None on processes other than rank 0, which count (so that
    every process stops together) but neither log nor write.
    """

    def __init__(
        self, run_dir: Path | None, max_fraction: float, items_per_epoch: int, state: dict[str, Any] | None = None
    ):
        self.path = run_dir / SKIPPED_FILE if run_dir is not None else None
        self.max_fraction, self.items_per_epoch = max_fraction, items_per_epoch
        self.budget = math.floor(max_fraction * items_per_epoch + 1e-9)  # unreadable items an epoch may hold
        self.records: list[dict[str, Any]] = list(state["records"]) if state else []
        self.interval = 0  # items skipped since the last metrics row

    def add(self, records: list[dict[str, Any]], step: int, epoch: int) -> None:
        """Record the unreadable items of ``step``; `DatasetError` when the epoch's budget is exceeded."""
        records = [{"epoch": epoch, "step": step, **r} for r in records]
        self.records += records
        self.interval += len(records)
        if self.path is not None:  # rank 0 logs
            for r in records:
                log.warning("step %d: skipped unreadable item %d: %s", step, r["index"], r["error"])
        this_epoch = self.of_epoch(epoch)
        if len(this_epoch) > self.budget:
            self.write()
            raise DatasetError(
                f"epoch {epoch}: {len(this_epoch)} unreadable items by step {step}, more than max_bad_fraction="
                f"{self.max_fraction} of the epoch's {self.items_per_epoch} items allows ({self.budget}): "
                f"{_examples(this_epoch)}; every one is listed in {self.path or SKIPPED_FILE}"
            )

    def of_epoch(self, epoch: int) -> list[dict[str, Any]]:
        return [r for r in self.records if r["epoch"] == epoch]

    def take_interval(self) -> int:
        """Items skipped since the last call (one metrics row)."""
        count, self.interval = self.interval, 0
        return count

    def end_epoch(self, epoch: int) -> None:
        """Log the epoch's skipped items and rewrite ``skipped.json``."""
        records = self.of_epoch(epoch)
        if records and self.path is not None:
            log.warning(
                "epoch %d: skipped %d unreadable of %d items (%.2f%%; max_bad_fraction %s): %s; listed in %s",
                epoch,
                len(records),
                self.items_per_epoch,
                100 * len(records) / self.items_per_epoch,
                self.max_fraction,
                _examples(records),
                self.path,
            )
        self.write()

    def write(self) -> None:
        """``skipped.json``: the policy, the count per epoch and every skipped item (rank 0 only)."""
        if self.path is None:
            return
        per_epoch = Counter(r["epoch"] for r in self.records)
        summary = {
            "max_bad_fraction": self.max_fraction,
            "items_per_epoch": self.items_per_epoch,
            "skipped_per_epoch": {str(e): n for e, n in sorted(per_epoch.items())},
            "items": self.records,
        }
        write_text_atomic(self.path, json.dumps(summary, indent=1) + "\n")

    def state(self) -> dict[str, Any]:
        return {"records": self.records}


class NonFiniteLosses:
    """Steps with a NaN or infinite loss: counted; ``max_in_row`` of them in a row stop training.

    ``verbose``: log each such step (rank 0).
    """

    def __init__(self, max_in_row: int, state: dict[str, Any] | None = None, verbose: bool = True):
        self.max_in_row, self.verbose = max_in_row, verbose
        self.in_row = int(state["in_row"]) if state else 0
        self.total = int(state["total"]) if state else 0
        self.interval = 0

    def record(self, finite: bool, step: int, loss: float | torch.Tensor, last_checkpoint: str) -> None:
        """Count step ``step``'s loss; `TrainingError` after ``max_in_row`` non-finite ones in a row."""
        if finite:
            self.in_row = 0
            return
        self.in_row += 1
        self.total += 1
        self.interval += 1
        if self.verbose:
            log.warning("step %d: loss is %s: no update (%d such step(s) in a row)", step, float(loss), self.in_row)
        if self.in_row >= self.max_in_row:
            raise TrainingError(
                f"steps {step - self.in_row + 1}-{step}: {self.in_row} non-finite losses in a row (max_bad_steps="
                f"{self.max_in_row}); the weights are those before them (no update was made); {last_checkpoint}. "
                "Lower lr, or train in fp32 / bf16 instead of fp16, and start again"
            )

    def take_interval(self) -> int:
        """Non-finite steps since the last call (one metrics row)."""
        count, self.interval = self.interval, 0
        return count

    def state(self) -> dict[str, Any]:
        return {"in_row": self.in_row, "total": self.total}
