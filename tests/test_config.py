from dataclasses import dataclass, field

import pytest

from vssl.config import apply_overrides, dump_yaml, from_dict, load_yaml, to_dict
from vssl.errors import ConfigError
from vssl.train.loop import TrainConfig


@dataclass(frozen=True)
class Inner:
    rate: float = 0.5
    names: tuple[str, ...] = ("a", "b")


@dataclass(frozen=True)
class Outer:
    steps: int = 3
    flag: bool = False
    tag: str | None = None
    inner: Inner = field(default_factory=Inner)


def test_round_trip_through_dict_and_yaml(tmp_path):
    cfg = Outer(steps=7, flag=True, tag="x", inner=Inner(rate=0.1, names=("c",)))
    assert from_dict(Outer, to_dict(cfg)) == cfg
    path = tmp_path / "c.yaml"
    path.write_text(dump_yaml(cfg))
    assert load_yaml(Outer, path) == cfg


def test_overrides_are_typed_and_nested():
    cfg = apply_overrides(Outer(), ["steps=5", "flag=true", "inner.rate=2", "inner.names=[x, y]", "tag=null"])
    assert cfg == Outer(steps=5, flag=True, tag=None, inner=Inner(rate=2.0, names=("x", "y")))
    assert isinstance(cfg.inner.rate, float)


@pytest.mark.parametrize(
    "override, message",
    [("stepz=1", "unknown key"), ("steps=abc", "expected int"), ("flag=maybe", "true/false"), ("steps", "key=value")],
)
def test_bad_overrides_name_the_key(override, message):
    with pytest.raises(ConfigError, match=message):
        apply_overrides(Outer(), [override])


def test_unknown_yaml_key_is_an_error(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("epochs: 2\nepocs: 3\n")
    with pytest.raises(ConfigError, match="epocs"):
        load_yaml(TrainConfig, path)
