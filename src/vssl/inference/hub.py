"""Model folders from the Hugging Face Hub: ``hf-hub:org/name[/sub/folder][@revision]``.

The repository (or its sub-folder) is a vssl release folder: ``config.json`` + ``model.safetensors``.
Only those two files are fetched, with ``huggingface_hub.snapshot_download`` (the optional extra ``hub``),
into its cache; the local copy is then loaded like any folder.
"""

from __future__ import annotations

import importlib
from pathlib import Path

from vssl.errors import ConfigError, VsslError
from vssl.models.localizer import AVLocalizer
from vssl.models.release import load_model as load_release

HUB_PREFIX = "hf-hub:"
RELEASE_FILES = ("config.json", "model.safetensors")


def parse_hub_name(name: str) -> tuple[str, str, str | None]:
    """``hf-hub:org/name/sub@rev`` -> (repo id ``org/name``, sub-folder ``sub`` or "", revision or None)."""
    spec = name[len(HUB_PREFIX) :]
    spec, _, revision = spec.partition("@")
    parts = [p for p in spec.split("/") if p]
    if len(parts) < 2 or any(p in (".", "..") for p in parts):
        raise VsslError(f"{name}: expected hf-hub:ORG/NAME[/SUBFOLDER][@REVISION]")
    return "/".join(parts[:2]), "/".join(parts[2:]), revision or None


def resolve_model_path(name_or_path: str | Path) -> str | Path:
    """A local path (or size name) unchanged; ``hf-hub:...`` downloaded, returning the local release folder."""
    if isinstance(name_or_path, str) and not name_or_path.strip():
        raise ConfigError("model is empty: give a model folder, hf-hub:ORG/NAME or a size name")
    if not (isinstance(name_or_path, str) and name_or_path.startswith(HUB_PREFIX)):
        return name_or_path
    repo_id, sub, revision = parse_hub_name(name_or_path)
    try:
        hub = importlib.import_module("huggingface_hub")
    except ImportError:
        raise VsslError(
            f"{name_or_path}: loading from the Hub needs huggingface_hub (pip install -e '.[hub]' in the vssl checkout)"
        ) from None
    patterns = [f"{sub}/{f}" if sub else f for f in RELEASE_FILES]
    try:
        root = hub.snapshot_download(repo_id=repo_id, revision=revision, allow_patterns=patterns)
    except Exception as exc:  # the hub raises many types (network, auth, missing repo or revision)
        raise VsslError(f"{name_or_path}: download failed ({type(exc).__name__}: {exc})") from exc
    folder = Path(root) / sub if sub else Path(root)
    missing = [f for f in RELEASE_FILES if not (folder / f).is_file()]
    if missing:
        raise VsslError(f"{name_or_path}: not a vssl release folder (missing {', '.join(missing)})")
    return folder


def load_model(name_or_path: str | Path, device: str = "cpu") -> AVLocalizer:
    """A model in eval mode from a release folder, ``hf-hub:org/name`` or a named size (random weights)."""
    return load_release(resolve_model_path(name_or_path), device=device)
