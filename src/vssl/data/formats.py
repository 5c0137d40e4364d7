"""Data specs: ``FORMAT:ROOT`` strings that name a dataset on disk, resolved to AVItem lists.

Only the built-in synthetic benchmark (``synth:ROOT``) is read so far; the readers of the field's
datasets (VGGSound, VGG-SS, Flickr-SoundNet, IS3, AVSBench) plug into ``READERS``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from vssl.data.items import AVItem
from vssl.data.synth import read_synth
from vssl.errors import DatasetError

READERS: dict[str, Callable[[Path, str], list[AVItem]]] = {
    "synth": read_synth,
}


def read_items(spec: str, split: str) -> list[AVItem]:
    """Items of ``split`` of the dataset named by ``spec`` (e.g. ``synth:./vssl-demo/data``)."""
    fmt, sep, root = spec.partition(":")
    if not sep or not root:
        raise DatasetError(f"data spec {spec!r} is not of the form FORMAT:ROOT (formats: {sorted(READERS)})")
    if fmt not in READERS:
        raise DatasetError(f"data spec {spec!r}: unknown format {fmt!r}; known: {sorted(READERS)}")
    items = READERS[fmt](Path(root).expanduser(), split)
    if not items:
        raise DatasetError(f"data spec {spec!r}: split {split!r} has no items")
    return items
