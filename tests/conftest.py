"""Shared pytest fixtures."""

from pathlib import Path

import pytest
import torch

# universal thresholds on the (cos+1)/2 scale, as `vssl eval --write-calibration` stores them
CALIBRATION = {"thresholds": {"max": 0.52, "max10": 0.572, "maxq3": 0.55}, "map_scale": "(cos+1)/2"}


@pytest.fixture(scope="module")
def localizer(tmp_path_factory):
    """A `Localizer` on a seeded tiny model with `CALIBRATION`."""
    from vssl import load_localizer
    from vssl.models.registry import create_model
    from vssl.models.release import save_release

    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("release") / "calibrated"
    return load_localizer(save_release(create_model("test").eval(), folder, extra={"calibration": CALIBRATION}))


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    """The shared test fixtures (``../shared/fixtures`` beside the project root); skips when absent."""
    path = (Path(__file__).resolve().parents[1] / ".." / "shared" / "fixtures").resolve()
    if not path.is_dir():
        pytest.skip(f"shared fixtures folder not found at {path} (it sits beside the clone in CI)")
    return path
