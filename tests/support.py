"""Shared test helpers (not tests): the tiny synthetic benchmark and the training config the training tests use."""

from __future__ import annotations

from vssl.data.synth import SynthConfig
from vssl.train.config import TrainConfig

CALIBRATION = {"thresholds": {"max": 0.52, "max10": 0.572, "maxq3": 0.55}, "map_scale": "(cos+1)/2", "data": "x"}
"""Universal thresholds on the (cos+1)/2 scale, as `vssl eval --write-calibration` stores them."""
TINY = SynthConfig(n_train=12, n_calibration=4, n_test=4, image_size=64)
"""The tiny benchmark of the training tests (the session fixture ``synth_spec`` holds it, generated once)."""


def train_cfg(spec: str, **kw) -> TrainConfig:
    """A one-epoch run of the ``test`` model on ``spec``, logging every step, with ``kw`` changed."""
    base = dict(data=spec, model="test", epochs=1, batch_size=4, lr=1e-3, progress=False, log_every=1)
    return TrainConfig(**{**base, **kw})
