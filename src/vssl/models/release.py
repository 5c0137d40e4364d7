"""Release format: a folder with ``config.json`` (architecture, preprocessing, calibration) and
``model.safetensors``. ``load_model`` is the one way to get a model for inference.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from safetensors.torch import load_file, save_file

from vssl.atomic import write_atomic, write_text_atomic
from vssl.config import from_dict, to_dict
from vssl.errors import ConfigError, VsslError
from vssl.models.localizer import AVLocalizer, ModelConfig
from vssl.models.registry import MODEL_SIZES, create_model

RELEASE_FORMAT = "vssl-release/1"
PICKLE_SUFFIXES = (".bin", ".ckpt", ".pickle", ".pkl", ".pt", ".pth", ".tar")
"""Weight files a release folder may hold by mistake: PyTorch pickles, never loaded from a release."""


def save_release(model: AVLocalizer, folder: str | Path, extra: dict[str, Any] | None = None) -> Path:
    """Write ``folder/model.safetensors`` then ``folder/config.json`` (each atomically).

    ``extra`` holds JSON metadata kept beside the architecture, e.g. ``{"calibration": {...}}``.
    """
    folder = Path(folder)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    write_atomic(folder / "model.safetensors", lambda tmp: save_file(state, str(tmp)))
    config = {"format": RELEASE_FORMAT, "model": to_dict(model.cfg), **(extra or {})}
    write_text_atomic(folder / "config.json", json.dumps(config, indent=2) + "\n")
    return folder


def read_release_config(folder: str | Path) -> dict[str, Any]:
    """The ``config.json`` of a release folder, checked to be a JSON object of this release format."""
    path = Path(folder) / "config.json"
    try:
        config = json.loads(path.read_bytes())
    except FileNotFoundError:
        raise VsslError(f"{path}: missing; a vssl model folder holds config.json and model.safetensors") from None
    except OSError as exc:
        raise VsslError(f"{path}: cannot read ({exc})") from exc
    except ValueError as exc:  # JSONDecodeError, or UnicodeDecodeError for bytes that are not UTF-8
        raise VsslError(f"{path}: not valid JSON ({exc})") from exc
    if not isinstance(config, dict):
        raise VsslError(f"{path}: not a vssl release (a JSON {type(config).__name__}, not an object)")
    if config.get("format") != RELEASE_FORMAT:
        raise VsslError(f"{path}: not a vssl release (format {config.get('format')!r}, expected {RELEASE_FORMAT})")
    return config


def load_model(name_or_path: str | Path, device: str = "cpu") -> AVLocalizer:
    """A model in eval mode from a release folder, or a freshly initialised named size (``resnet18``...)."""
    if isinstance(name_or_path, str) and name_or_path in MODEL_SIZES and not Path(name_or_path).exists():
        return create_model(name_or_path).eval().to(device)
    folder = Path(name_or_path)
    config = read_release_config(folder)
    model = AVLocalizer(_model_config(config, folder / "config.json"))
    weights = folder / "model.safetensors"
    try:
        state = load_file(str(weights))
    except FileNotFoundError:
        raise VsslError(f"{weights}: missing{_pickled_weights_hint(folder)}") from None
    except Exception as exc:
        raise VsslError(f"{weights}: not a readable safetensors file ({exc})") from exc
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise VsslError(f"{weights}: weights do not match {folder / 'config.json'}: {exc}") from exc
    return model.eval().to(device)


def read_architecture(folder: str | Path) -> ModelConfig:
    """The architecture of the release in ``folder`` (its ``config.json``'s ``model`` section)."""
    return _model_config(read_release_config(folder), Path(folder) / "config.json")


def _model_config(config: dict[str, Any], path: Path) -> ModelConfig:
    """The architecture recorded in a release's ``config.json`` (its ``model`` section)."""
    if not isinstance(config.get("model"), dict):
        raise VsslError(f"{path}: no 'model' section (the architecture) in this release config")
    try:
        return from_dict(ModelConfig, config["model"], prefix="model.")
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from exc


def _pickled_weights_hint(folder: Path) -> str:
    """Why pickled weights beside the config are not used, when there are some."""
    pickled = sorted(p.name for p in folder.iterdir() if p.suffix in PICKLE_SUFFIXES)
    if not pickled:
        return ""
    return (
        f" (found {', '.join(pickled)}: release folders are loaded from safetensors only, since a pickle can run "
        "code; convert official checkpoints with `vssl convert`, which reads them with weights_only=True)"
    )


def update_release_config(folder: str | Path, **entries: Any) -> Path:
    """Set top-level entries of a release's ``config.json`` (e.g. ``calibration``), atomically."""
    config = read_release_config(folder)
    config.update(entries)
    path = Path(folder) / "config.json"
    write_text_atomic(path, json.dumps(config, indent=2) + "\n")
    return path
