"""Flickr-SoundNet test set (``flickr:ROOT``).

Layout::

    ROOT/frames/{id}.jpg          the annotated frame
    ROOT/audio/{id}.wav           its audio
    ROOT/Annotations/{id}.xml     annotators' boxes in a 256x256 frame
    ROOT/{split}.txt or .csv      optional id lists (e.g. flickr_test.csv, test_flickr_250.txt)

Splits: ``test`` and ``all`` are every frame in ``frames/``; other splits need their id list (the field
uses 249 or 250 ids). Every element named ``bbox`` in the XML is one annotator's box: its children
``xmin``, ``ymin``, ``xmax``, ``ymax`` when so named, otherwise (the published files) a label child
followed by xmin, ymin, xmax, ymax. **All** boxes are kept, one per annotator: the evaluator builds the
Flickr consensus map (sum of the box masks / 2, capped at 1) from them (``gt_style = "flickr"``).
Boxes are checked by :mod:`vssl.data.formats.boxes`. An item without an annotation file is excluded
and named (kind ``no annotation``) in the report and the log; an unparsable XML file is an error.
Flickr-SoundNet has no class names: ``label`` is None and ``classes`` empty.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from vssl.data.formats.boxes import clean_boxes
from vssl.data.formats.layout import require_dir, require_media, require_root, split_ids
from vssl.data.formats.report import ItemList, ReadReport, finish
from vssl.data.items import AVItem
from vssl.errors import DatasetError

FRAME_SIZE = 256.0
"""Side of the frame the annotation coordinates refer to."""
_CORNERS = ("xmin", "ymin", "xmax", "ymax")


def _number(text: str | None) -> float | str | None:
    try:
        return float(text) if text is not None else None
    except ValueError:
        return text  # left as text: reported as a garbage value


def parse_annotation(path: Path) -> list[list[float | str | None]]:
    """Raw boxes of one XML file, in the file's 256-pixel units, one per ``bbox`` element."""
    try:
        tree = ET.parse(path)
    except (ET.ParseError, OSError) as exc:
        raise DatasetError(f"{path}: cannot parse annotation XML ({exc})") from exc
    boxes = []
    for element in tree.getroot().iter("bbox"):
        children = list(element)
        named = {child.tag: child.text for child in children}
        if all(name in named for name in _CORNERS):
            texts = [named[name] for name in _CORNERS]
        else:
            texts = [child.text for child in children[1:]]  # first child: the label
        boxes.append([_number(t) for t in texts])
    return boxes


def collect_flickr(root: Path, split: str, report: ReadReport) -> list[AVItem]:
    """Items of ``split`` with every annotator's box; defects go to ``report``."""
    root = require_root(root, "flickr")
    require_dir(root / "frames", "one {id}.jpg frame per item")
    require_dir(root / "audio", "one {id}.wav per item")
    annotations = require_dir(root / "Annotations", "one {id}.xml of annotators' boxes per item")
    ids = split_ids(root, split, ("test", "all"), "flickr")
    if ids is None:
        ids = sorted(p.stem for p in (root / "frames").glob("*.jpg"))
    items = []
    for item_id in ids:
        xml = annotations / f"{item_id}.xml"
        if not xml.is_file():
            report.add("no annotation", item_id, f"{xml} not found", excluded=True)
            continue
        boxes = clean_boxes(parse_annotation(xml), FRAME_SIZE, item_id, report)
        if boxes is None:
            continue
        items.append(
            AVItem(
                id=item_id,
                image=root / "frames" / f"{item_id}.jpg",
                audio=root / "audio" / f"{item_id}.wav",
                boxes=boxes,
                gt_style="flickr",
            )
        )
    require_media(items, "flickr")
    return items


def read_flickr(root: Path, split: str) -> ItemList:
    """Items of ``split`` with every annotator's box (gt style ``flickr``) and their report."""
    report = ReadReport("flickr", Path(root), split)
    return finish(collect_flickr(root, split, report), report)
