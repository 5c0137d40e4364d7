"""Typed dataclass configs: build from dicts/YAML, apply ``key=value`` overrides, dump resolved.

Every config in vssl is a (possibly nested) dataclass. Field comments are the documentation;
YAML presets in ``configs/`` mirror the dataclasses, and the CLI takes dotted overrides such as
``objective.flatness_weight=0`` or ``train.epochs=3``.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

import yaml

from vssl.errors import ConfigError

T = TypeVar("T")


def to_dict(cfg: Any) -> dict[str, Any]:
    """A plain, JSON/YAML-ready dict of a dataclass (tuples become lists)."""
    return json.loads(json.dumps(dataclasses.asdict(cfg)))


def _field_types(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _coerce(value: Any, annotation: Any, where: str) -> Any:
    """Convert a YAML/CLI value to the annotated field type, or raise ConfigError naming the key."""
    origin = typing.get_origin(annotation)
    if dataclasses.is_dataclass(annotation):
        if isinstance(value, annotation):
            return value
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping for {annotation.__name__}, got {value!r}")
        return from_dict(annotation, value, prefix=f"{where}.")
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if value is None or (isinstance(value, str) and value.lower() in ("none", "null")):
            return None
        return _coerce(value, args[0], where)
    if origin is tuple:
        items = value if isinstance(value, list | tuple) else _parse_scalar(value)
        if not isinstance(items, list | tuple):
            items = [items]
        args = typing.get_args(annotation)
        inner = args[0] if args else Any
        return tuple(_coerce(v, inner, where) for v in items)
    scalar = _SCALARS.get(annotation)
    return value if scalar is None else scalar(value, annotation, where)


def _to_bool(value: Any, _: type, where: str) -> bool:
    if not isinstance(value, str):
        return bool(value)
    if value.lower() in ("1", "true", "yes", "on"):
        return True
    if value.lower() in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{where}: expected true/false, got {value!r}")


def _to_number(value: Any, kind: type, where: str) -> int | float:
    try:
        if kind is int and isinstance(value, float) and not value.is_integer():
            raise ValueError
        return kind(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{where}: expected {kind.__name__}, got {value!r}") from None


def _to_str(value: Any, _: type, where: str) -> str:
    return "" if value is None else str(value)  # ``key=`` (YAML null) is the empty string, not "None"


_SCALARS = {bool: _to_bool, int: _to_number, float: _to_number, str: _to_str}
"""How a YAML/CLI value becomes a scalar field's type."""


def _parse_scalar(text: str) -> Any:
    """Parse a CLI override value with YAML rules (``3`` -> int, ``[1, 2]`` -> list, ``x`` -> str)."""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def from_dict(cls: type[T], data: dict[str, Any], prefix: str = "") -> T:
    """Build dataclass ``cls`` from ``data``; unknown keys are an error (typos must not pass)."""
    hints = _field_types(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ConfigError(f"unknown config key(s) {', '.join(prefix + k for k in unknown)}; valid: {sorted(names)}")
    kwargs = {k: _coerce(v, hints[k], prefix + k) for k, v in data.items()}
    return cls(**kwargs)


def apply_overrides(cfg: T, overrides: list[str]) -> T:
    """Return a copy of ``cfg`` with dotted ``key=value`` overrides applied."""
    data = to_dict(cfg)
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override {item!r} is not of the form key=value")
        key, text = item.split("=", 1)
        node = data
        parts = key.split(".")
        for part in parts[:-1]:
            if not isinstance(node.get(part), dict):
                raise ConfigError(f"override {item!r}: {part!r} is not a config section")
            node = node[part]
        if parts[-1] not in node:
            raise ConfigError(f"override {item!r}: unknown key {key!r}")
        node[parts[-1]] = _parse_scalar(text)
    return from_dict(type(cfg), data)


def load_yaml(cls: type[T], path: str | Path) -> T:
    """Read a YAML preset into dataclass ``cls``."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: cannot read config: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a config file must hold a mapping")
    return from_dict(cls, data)


def dump_yaml(cfg: Any) -> str:
    return yaml.safe_dump(to_dict(cfg), sort_keys=False)


def field_docs(cls: type) -> dict[str, str]:
    """The attribute docstrings of dataclass ``cls`` (the string literal under each field), by field name."""
    import ast
    import inspect
    import textwrap

    docs: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        if not dataclasses.is_dataclass(klass):
            continue
        try:
            tree = ast.parse(textwrap.dedent(inspect.getsource(klass)))
        except (OSError, TypeError):  # no source (e.g. made at run time): no docs
            continue
        body = tree.body[0].body if tree.body and isinstance(tree.body[0], ast.ClassDef) else []
        for node, after in zip(body, body[1:], strict=False):
            documented = isinstance(after, ast.Expr) and isinstance(after.value, ast.Constant)
            if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and documented:
                docs[node.target.id] = " ".join(str(after.value.value).split())
    return docs


def _type_name(annotation: Any) -> str:
    if dataclasses.is_dataclass(annotation):
        return annotation.__name__
    name = getattr(annotation, "__name__", None)
    return name if name and typing.get_origin(annotation) is None else str(annotation).replace("typing.", "")


def describe(cls: type, prefix: str = "", defaults: Any = None) -> list[tuple[str, str, str, str]]:
    """Every key of dataclass ``cls`` (nested ones dotted): ``(key, type, default, doc)``, in field order.
    ``defaults``: an instance whose values are shown instead of the class defaults (e.g. a preset)."""
    hints, docs = _field_types(cls), field_docs(cls)
    rows = []
    for f in dataclasses.fields(cls):
        annotation = hints[f.name]
        if defaults is not None:
            value = getattr(defaults, f.name)
        elif f.default is not dataclasses.MISSING:
            value = f.default
        elif f.default_factory is not dataclasses.MISSING:
            value = f.default_factory()
        else:
            value = None
        if dataclasses.is_dataclass(annotation):
            rows.extend(describe(annotation, f"{prefix}{f.name}.", value))
            continue
        shown = (
            json.dumps(value)
            if isinstance(value, str | bool | type(None))
            else str(list(value) if isinstance(value, tuple) else value)
        )
        rows.append((prefix + f.name, _type_name(annotation), shown, docs.get(f.name, "")))
    return rows


def config_help(cls: type, defaults: Any = None, width: int = 100) -> str:
    """``key=value`` help for dataclass ``cls``: one entry per key with its type, default and doc (argparse epilog)."""
    import textwrap

    lines = ["config keys (key=value; nested keys dotted):"]
    for key, type_name, default, doc in describe(cls, defaults=defaults):
        lines.append(f"  {key} ({type_name}, default {default})")
        lines.extend(textwrap.wrap(doc, width, initial_indent="      ", subsequent_indent="      ") if doc else [])
    return "\n".join(lines)
