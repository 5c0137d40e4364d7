"""Shared pytest fixtures."""

from pathlib import Path

import pytest
import torch

# universal thresholds on the (cos+1)/2 scale, as `vssl eval --write-calibration` stores them
CALIBRATION = {"thresholds": {"max": 0.52, "max10": 0.572, "maxq3": 0.55}, "map_scale": "(cos+1)/2", "data": "x"}
PAIR = "cello_donkey_3905_cello"  # a real IS3+ image + audio pair of the shared fixtures


@pytest.fixture(scope="module")
def calibrated_release(tmp_path_factory) -> Path:
    """A release folder of a seeded tiny model with `CALIBRATION`."""
    from vssl.models.registry import create_model
    from vssl.models.release import save_release

    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("release") / "calibrated"
    return save_release(create_model("test").eval(), folder, extra={"calibration": CALIBRATION})


@pytest.fixture(scope="module")
def localizer(calibrated_release):
    """A `Localizer` on `calibrated_release`."""
    from vssl import load_localizer

    return load_localizer(calibrated_release)


@pytest.fixture(scope="module")
def pair(fixtures_dir: Path) -> tuple[Path, Path]:
    """(image, audio) of `PAIR`."""
    root = fixtures_dir / "real" / "is3plus"
    return root / f"{PAIR}.jpg", root / f"{PAIR}.wav"


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    """The shared test fixtures (``../shared/fixtures`` beside the project root); skips when absent."""
    path = (Path(__file__).resolve().parents[1] / ".." / "shared" / "fixtures").resolve()
    if not path.is_dir():
        pytest.skip(f"shared fixtures folder not found at {path} (it sits beside the clone in CI)")
    return path
