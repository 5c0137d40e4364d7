"""benchmarks/demo_diagnose.py: runs on a model and a synthetic benchmark and accounts for every test item."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from vssl.models.registry import create_model
from vssl.models.release import save_release

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "demo_diagnose.py"


def test_diagnosis_places_every_class_mean_peak(synth_spec, tmp_path):
    folder = save_release(create_model("test").eval(), tmp_path / "model")
    root = synth_spec.removeprefix("synth:")
    cmd = [sys.executable, str(SCRIPT), "--model", str(folder), "--data", root]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "CPU: " in proc.stdout and "items: 4" in proc.stdout
    line = next(x for x in proc.stdout.splitlines() if "class-mean map peaks on" in x)
    shares = [float(v) for v in re.findall(r" (\d\.\d{3})", line)]
    assert len(shares) == 3 and abs(sum(shares) - 1.0) < 2e-3, line  # sounding, distractor, background: all items
    pointing = next(x for x in proc.stdout.splitlines() if "pointing, class-mean audio" in x)
    assert float(pointing.rsplit(" ", 1)[1]) == shares[0]  # the pointing rate is the sounding-object share
