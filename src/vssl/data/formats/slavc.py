"""SLAVC extended test sets (``slavc:ROOT``): VGG-SS or Flickr-SoundNet plus non-audible pairs.

``ROOT`` is a VGG-SS root (it holds ``vggss.json``) or a Flickr-SoundNet root (it holds
``Annotations/``), laid out as for the ``vggss`` / ``flickr`` readers, plus the SLAVC csv
``ROOT/{base}_{split}_plus_silent.csv`` (the published ``vggss_test_plus_silent.csv`` and
``flickr_test_plus_silent.csv``)::

    video,audio,label
    9PmzQI8ZYpg_000147,9PmzQI8ZYpg_000147,non-sounding
    nqsycWEgIio_000209,7SR2Nk3gkQ4_000187,non-sounding

The items are the base reader's items of ``split`` (the audible positives, with boxes) followed by one
item per ``non-sounding`` row: the frame ``frames/{video}.jpg`` with the audio ``audio/{audio}.wav``
(often another clip's), **no boxes** (nothing visible makes that sound), id ``{video}+{audio}``, no
label. Rows with other labels name positives already in the base set and are skipped; a repeated
pair is reported once and kept once. Missing frame or audio files are an error.
"""

from __future__ import annotations

import csv
from pathlib import Path

from vssl.data.formats.flickr import collect_flickr
from vssl.data.formats.layout import require_file, require_media, require_root
from vssl.data.formats.report import ItemList, ReadReport, finish
from vssl.data.formats.vggss import ANNOTATIONS as VGGSS_ANNOTATIONS
from vssl.data.formats.vggss import collect_vggss
from vssl.data.items import AVItem
from vssl.errors import DatasetError

NON_AUDIBLE = "non-sounding"
_COLUMNS = ("video", "audio", "label")


def detect_base(root: Path) -> str:
    """``"vggss"`` or ``"flickr"``: which test set ROOT holds."""
    if (root / VGGSS_ANNOTATIONS).is_file():
        return "vggss"
    if (root / "Annotations").is_dir():
        return "flickr"
    raise DatasetError(
        f"{root / VGGSS_ANNOTATIONS}: missing file (a SLAVC extended set needs a VGG-SS root with this file "
        "or a Flickr-SoundNet root with Annotations/)"
    )


def read_pairs(path: Path) -> list[tuple[str, str]]:
    """``(video, audio)`` of every non-audible row of the csv, in order."""
    with path.open(newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        missing = [c for c in _COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise DatasetError(f"{path}: no column {missing[0]!r} (expected header video,audio,label)")
        pairs = []
        for line, row in enumerate(reader, start=2):
            if (row["label"] or "").strip() != NON_AUDIBLE:
                continue
            video, audio = (row["video"] or "").strip(), (row["audio"] or "").strip()
            if not video or not audio:
                raise DatasetError(f"{path}:{line}: empty video or audio field")
            pairs.append((video, audio))
    return pairs


def read_slavc(root: Path, split: str) -> ItemList:
    """The base test set's items of ``split`` followed by its non-audible pairs (no boxes)."""
    root = require_root(root, "slavc")
    base = detect_base(root)
    listing = require_file(root / f"{base}_{split}_plus_silent.csv", f"SLAVC extended {base} {split} pairs")
    report = ReadReport(f"slavc-{base}", root, split)
    positives = (collect_vggss if base == "vggss" else collect_flickr)(root, split, report)
    style = "vggss" if base == "vggss" else "flickr"
    seen: set[tuple[str, str]] = set()
    extra: list[AVItem] = []
    for video, audio in read_pairs(listing):
        item_id = f"{video}+{audio}"
        if (video, audio) in seen:
            report.add("duplicate entry", item_id, f"{listing}: repeated pair ignored", excluded=False)
            continue
        seen.add((video, audio))
        image, wave = root / "frames" / f"{video}.jpg", root / "audio" / f"{audio}.wav"
        extra.append(AVItem(id=item_id, image=image, audio=wave, gt_style=style))
    require_media(extra, f"slavc-{base}")
    return finish([*positives, *extra], report)
