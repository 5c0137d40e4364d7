"""benchmarks/gpu_check.py --device cpu: the GPU check's CI smoke run prints its table and every check passes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_check.py"
COLUMNS = "| check | result | tolerance / figure | status |"


def table_rows(stdout: str) -> list[list[str]]:
    """The cells of each row of the markdown table printed at the end (header and rule left out)."""
    lines = stdout[stdout.index(COLUMNS) :].splitlines()[2:]
    rows = []
    for line in lines:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip("|").split("|")])
    return rows


@pytest.mark.slow  # 15-25 s on 2 cores: short trainings (vssl, a reference loop, two torchrun launches), an eval
def test_gpu_check_on_cpu_passes():
    proc = subprocess.run([sys.executable, str(SCRIPT), "--device", "cpu"], capture_output=True, text=True, timeout=300)
    assert COLUMNS in proc.stdout, proc.stdout + proc.stderr
    rows = table_rows(proc.stdout)
    statuses = {row[0]: row[-1] for row in rows}
    assert all(status in ("pass", "n/a") for status in statuses.values()), proc.stdout
    for check in ("numerics fp32", "numerics bf16", "train amp=bf16", "torchrun 1 process, gloo", "vssl eval"):
        assert any(name.startswith(check) and status == "pass" for name, status in statuses.items()), check
    assert proc.returncode == 0, proc.stdout + proc.stderr
