"""The built-in synthetic benchmark (``synth:ROOT``), written by :func:`vssl.data.synth.generate`.

Layout (``{id}`` is e.g. ``train_000123``)::

    ROOT/frames/{id}.jpg        RGB, image_size x image_size, JPEG quality 92
    ROOT/audio/{id}.wav         mono, sample_rate Hz, PCM_16, duration s
    ROOT/masks/{id}.png         L, 255 on the visible pixels of the sounding object, 0 elsewhere
    ROOT/annotations.json       written last and atomically:
        {"version": FORMAT_VERSION, "config": {SynthConfig fields}, "classes": [name, ...],
         "items": [{"id", "split": "train" | "calibration" | "test", "label": class name,
                    "box": [xmin, ymin, xmax, ymax] (pixels, max exclusive: the tight box of the mask),
                    "objects": [[xmin, ymin, xmax, ymax], ...] (every object, sounding first, then the
                    distractors in the order of classes_in_frame; a distractor's box is its whole shape),
                    "width", "height", "classes_in_frame": [sounding class, distractor classes...],
                    "inaudible": the source cannot be heard (train split only),
                    "track": "audible" | "quiet" | "muted" | "noisy" | "offscreen"}, ...]}

Splits: :data:`SPLITS`. An item's ``label`` is the sounding class, ``classes`` every class in the frame, ``boxes``
the sounding object's box and ``objects`` every object's box (normalised by the frame size); ``mask`` is set when
``ROOT/masks`` exists. A malformed entry or a box outside its frame is an error.
"""

from __future__ import annotations

import json
from pathlib import Path

from vssl.data.items import AVItem
from vssl.errors import DatasetError

SPLITS = ("train", "calibration", "test")
FORMAT_VERSION = 2  # 2: items carry every object's box ("objects")


def _item_from_entry(root: Path, entry: dict, has_masks: bool, source: Path) -> AVItem:
    """One annotation entry -> AVItem with the boxes normalised by the frame size."""
    try:
        sample_id, width, height = entry["id"], float(entry["width"]), float(entry["height"])
        boxes = [tuple(float(v) for v in box) for box in [entry["box"], *entry["objects"]]]
        label, classes = entry["label"], tuple(entry["classes_in_frame"])
        if any(len(box) != 4 for box in boxes):
            raise ValueError("a box needs 4 numbers")
    except (KeyError, TypeError, ValueError) as exc:
        raise DatasetError(f"{source}: malformed item {entry!r}: {exc}") from exc
    for xmin, ymin, xmax, ymax in boxes:
        if not (0 <= xmin < xmax <= width and 0 <= ymin < ymax <= height):
            raise DatasetError(
                f"{source}: item {sample_id}: box {[xmin, ymin, xmax, ymax]} is not inside its {width}x{height} frame"
            )
    normalised = [(x0 / width, y0 / height, x1 / width, y1 / height) for x0, y0, x1, y1 in boxes]
    return AVItem(
        id=sample_id,
        image=root / "frames" / f"{sample_id}.jpg",
        audio=root / "audio" / f"{sample_id}.wav",
        boxes=(normalised[0],),
        mask=root / "masks" / f"{sample_id}.png" if has_masks else None,
        label=label,
        classes=classes,
        objects=tuple(normalised[1:]),
    )


def read_synth(root: Path, split: str) -> list[AVItem]:
    """Items of one split ("train", "calibration" or "test") of a dataset written by :func:`generate`."""
    if split not in SPLITS:
        raise DatasetError(f"unknown synth split {split!r}; valid splits: {', '.join(SPLITS)}")
    root = Path(root)
    annotations = root / "annotations.json"
    if not annotations.is_file():
        raise DatasetError(f"{annotations}: missing; create the dataset with vssl.data.synth.generate()")
    for sub in ("frames", "audio"):
        if not (root / sub).is_dir():
            raise DatasetError(f"{root / sub}: missing directory of the synth dataset")
    try:
        data = json.loads(annotations.read_text())
        entries = data["items"]
    except (ValueError, KeyError, TypeError) as exc:
        raise DatasetError(f"{annotations}: not a synth annotation file ({exc})") from exc
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise DatasetError(f"{annotations}: 'items' must be a list of objects")
    if data.get("version") != FORMAT_VERSION:
        raise DatasetError(f"{annotations}: version {data.get('version')!r}, expected {FORMAT_VERSION}")
    has_masks = (root / "masks").is_dir()
    return [_item_from_entry(root, e, has_masks, annotations) for e in entries if e.get("split") == split]
