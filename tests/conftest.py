"""Shared pytest fixtures."""

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    """The shared test fixtures (``../shared/fixtures`` beside the project root); skips when absent."""
    path = (Path(__file__).resolve().parents[1] / ".." / "shared" / "fixtures").resolve()
    if not path.is_dir():
        pytest.skip(f"shared fixtures folder not found at {path} (it sits beside the clone in CI)")
    return path
