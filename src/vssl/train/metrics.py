"""Training metrics: one CSV row (and TensorBoard scalars, when installed) per logged step."""

from __future__ import annotations

import csv
import io
import logging
from pathlib import Path

from vssl.atomic import write_text_atomic

log = logging.getLogger(__name__)


class MetricsLog:
    """CSV rows (and TensorBoard scalars when available) of whatever the objective returns.

    On resume, rows logged after the checkpoint's step are dropped: they will be logged again (so is a last
    row a killed process left half-written).
    """

    def __init__(self, run_dir: Path, resume_step: int):
        self.path = run_dir / "metrics.csv"
        self.fields: list[str] | None = None
        if self.path.exists():
            text = self.path.read_text()
            complete = text[: text.rfind("\n") + 1]  # a row is complete once its newline is written
            rows = list(csv.reader(io.StringIO(complete, newline="")))
            self.fields = rows[0] if rows else None
            kept = [r for r in rows[1:] if r and int(r[0]) <= resume_step]
            if rows:
                text = io.StringIO()
                csv.writer(text).writerows([rows[0], *kept])
                write_text_atomic(self.path, text.getvalue())
        try:
            from torch.utils.tensorboard import SummaryWriter

            self.tb = SummaryWriter(str(run_dir / "tensorboard"))
        except ImportError:
            log.info("tensorboard is not installed: logging to metrics.csv only")
            self.tb = None

    def write(self, step: int, epoch: int, values: dict[str, float]) -> None:
        row = {"step": step, "epoch": epoch, **values}
        if self.fields is None:
            self.fields = list(row)
            with open(self.path, "w", newline="") as fh:
                csv.writer(fh).writerow(self.fields)
        with open(self.path, "a", newline="") as fh:
            csv.DictWriter(fh, fieldnames=self.fields, extrasaction="ignore").writerow(row)
        if self.tb is not None:
            for key, value in values.items():
                self.tb.add_scalar(f"train/{key}", value, step)

    def close(self) -> None:
        if self.tb is not None:
            self.tb.close()
