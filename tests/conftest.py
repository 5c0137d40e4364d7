"""Shared pytest fixtures."""

import importlib
import math
import os
from pathlib import Path

import pytest
import torch
from support import CALIBRATION

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


def skip_or_fail(message: str) -> None:
    """Skip with ``message`` outside CI; fail with it in CI (``CI`` set), where `.ci/run` provides every fixture,
    extra and browser, so that a missing one is a broken CI machine, never a silently thinner test run."""
    if os.environ.get("CI"):
        pytest.fail(f"{message}; CI must run this test (CI is set)", pytrace=False)
    pytest.skip(message)


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    """The shared test fixtures (``../shared/fixtures`` beside the project root); skips when absent, fails in CI."""
    path = (Path(__file__).resolve().parents[1] / ".." / "shared" / "fixtures").resolve()
    if not path.is_dir():
        skip_or_fail(f"shared fixtures folder not found at {path} (it sits beside the clone in CI)")
    return path


@pytest.fixture(scope="session")
def unavailable():
    """`skip_or_fail`, for a test whose tool is missing (a browser, a program)."""
    return skip_or_fail


@pytest.fixture(scope="session")
def require():
    """``require(module, extra)``: the imported module; when it is missing, a skip naming the extra to install
    (``pip install -e ".[extra]"``), or a failure in CI."""

    def require(module: str, extra: str):
        try:
            return importlib.import_module(module)
        except ImportError as e:
            skip_or_fail(f'{module} not importable ({e}); install the extra: pip install -e ".[{extra}]"')

    return require


def fft_power_error_bound(energy: torch.Tensor, n_fft: int) -> torch.Tensor:
    """Worst-case absolute error of any bin of a float32 FFT power spectrum, or of any sum of its bins with weights
    in [0, 1] (a mel band), for frames of total spectral energy ``energy`` (||FFT||^2 over all ``n_fft`` bins, on the
    spectrum's own scale).

    Higham, *Accuracy and Stability of Numerical Algorithms* (2nd ed.), Thm 24.2: a radix-2 FFT computed in floating
    point has a normwise relative error ``eps <= log2(n) * eta``, ``eta = mu + gamma_4 (sqrt(2) + mu)``, with twiddle
    factors accurate to ``mu = u``; we add ``4u`` for the windowing, mean removal and scaling of the input. Then
    ``sum_k |dP_k| <= sum_k (2 |y_k| |dy_k| + |dy_k|^2) <= (2 eps + eps^2) ||y||^2``. Any float32 FFT library on any
    CPU is within this bound; the stated order of its operations is what differs between CPUs.
    """
    u = torch.finfo(torch.float32).eps / 2  # the relative error of one correctly rounded float32 operation
    eta = u + 4 * u / (1 - 4 * u) * (math.sqrt(2) + u)
    eps = math.log2(n_fft) * eta + 4 * u
    return (2 * eps + eps**2) * energy


@pytest.fixture(scope="session")
def fft_error_bound():
    """`fft_power_error_bound`, for the tests that compare float32 spectra with stored or float64 ones."""
    return fft_power_error_bound


@pytest.fixture(scope="session")
def synth_spec(tmp_path_factory) -> str:
    """Data spec of the training tests' tiny benchmark (``support.TINY``), generated once per session; read only."""
    from support import TINY

    from vssl.data.synth import generate

    return "synth:" + str(generate(TINY, tmp_path_factory.mktemp("synth"), progress=False))
