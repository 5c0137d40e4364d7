"""Training metrics: one CSV row (and TensorBoard scalars, when installed) per logged step, and the progress bar.

`MetricsLog` writes the rows; `Progress`, the trainer's logging stage, composes them (throughput since the
previous row) and hands them to ``on_log`` too.
"""

from __future__ import annotations

import csv
import io
import logging
import time
from collections.abc import Callable
from pathlib import Path

from tqdm import tqdm

from vssl.atomic import write_text_atomic
from vssl.train.config import TrainConfig
from vssl.train.distributed import DistEnv

log = logging.getLogger(__name__)

OnLog = Callable[[int, dict[str, float]], None]  # on_log(step, values): every metrics row, on rank 0


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


class Progress:
    """A run's metrics rows and progress bar, from ``step`` of ``total`` steps on.

    Rank 0 writes the rows (`MetricsLog`), calls ``on_log`` and shows the bar (when ``cfg.progress``); the other
    processes compute the same values (the averages are taken by all of them) and drop them. The throughput of
    a row covers the time since the previous row was written, ``on_log`` excluded.
    """

    def __init__(self, cfg: TrainConfig, env: DistEnv, run_dir: Path, step: int, total: int, on_log: OnLog | None):
        self.metrics = MetricsLog(run_dir, resume_step=step) if env.is_main else None
        self.on_log = on_log if env.is_main else None
        self.bar = tqdm(
            total=total,
            initial=step,
            disable=not (cfg.progress and env.is_main),
            desc=f"train {cfg.objective.name}",
            unit="step",
        )
        self.batch_size = cfg.batch_size
        self.restart(step)

    def restart(self, step: int) -> None:
        """Start the interval of the next row at ``step``, now."""
        self.start, self.start_step, self.waited = time.perf_counter(), step, 0.0

    def data_waited(self, seconds: float) -> None:
        """Count time spent waiting for the loader (``data_wait``)."""
        self.waited += seconds

    def rates(self, step: int) -> dict[str, float]:
        """``samples_per_s`` since the interval started, and ``data_wait``: the fraction of that time this
        process waited for its loader."""
        elapsed = max(time.perf_counter() - self.start, 1e-9)
        return {
            "samples_per_s": (step - self.start_step) * self.batch_size / elapsed,
            "data_wait": self.waited / elapsed,
        }

    def write(self, step: int, epoch: int, values: dict[str, float]) -> None:
        """One row: ``metrics.csv`` (and TensorBoard), ``on_log`` and the bar's loss; then the next interval."""
        if self.metrics is not None:
            self.metrics.write(step, epoch, values)
        if self.on_log is not None:
            self.on_log(step, values)
        self.bar.set_postfix(loss=f"{values['loss']:.3f}")
        self.restart(step)

    def close(self) -> None:
        """Close the metrics files (the bar is closed on its own, when the last step is taken)."""
        if self.metrics is not None:
            self.metrics.close()
