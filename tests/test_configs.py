from pathlib import Path

import pytest

from vssl.config import load_yaml
from vssl.models.objectives import OBJECTIVES
from vssl.train.loop import TrainConfig

CONFIGS = sorted((Path(__file__).resolve().parents[1] / "configs").glob("*.yaml"))


def test_there_are_presets():
    assert CONFIGS


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_every_shipped_preset_parses(path):
    cfg = load_yaml(TrainConfig, path)
    assert cfg.objective.name in OBJECTIVES
