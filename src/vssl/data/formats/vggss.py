"""VGG-SS, the VGGSound Sources test set (``vggss:ROOT``).

Layout::

    ROOT/vggss.json          [{"file": id, "class": name, "bbox": [[xmin, ymin, xmax, ymax], ...]}, ...]
                             boxes normalised to [0, 1] in full-frame coordinates; 5 158 entries
    ROOT/frames/{file}.jpg   the annotated frame
    ROOT/audio/{file}.wav    the clip's audio
    ROOT/{split}.txt         optional subsets, e.g. EZ-VSL's vggss_test.csv or vggss_heard_test.csv

Splits: ``all`` is every entry of the JSON; ``test`` is every entry but those of ``ROOT/calibration.txt`` when
that list exists (calibration items never enter the test; each one is named in the report), unless
``ROOT/test.txt`` lists the test ids itself; any other split needs its id list. Make a calibration list with,
e.g., ``python -c "import json, random; ids = sorted(e['file'] for e in json.load(open('vggss.json')));
random.Random(0).shuffle(ids); print(*ids[:500], sep='\\n')" > calibration.txt`` (500 ids, seeded).
The published JSON has defects: 12 entries hold garbage values (-2.88e16) and 18 boxes are degenerate.
They are handled by the rules of :mod:`vssl.data.formats.boxes` — garbage entries are excluded,
degenerate boxes dropped — and every one is named in the report (``items.report``) and the log.
``label`` is the entry's ``class`` and ``classes`` is ``(class,)``: the one visible sound class that
offscreen negatives avoid. A missing frame or audio file of a selected item is an error.
"""

from __future__ import annotations

from pathlib import Path

from vssl.data.formats.boxes import clean_boxes
from vssl.data.formats.layout import (
    read_id_list,
    read_json_list,
    require_dir,
    require_file,
    require_media,
    require_root,
    split_ids,
    split_list_path,
)
from vssl.data.formats.report import ItemList, ReadReport, finish
from vssl.data.items import AVItem
from vssl.errors import DatasetError

ANNOTATIONS = "vggss.json"
CALIBRATION = "calibration"  # the split whose id list the whole-set ``test`` split leaves out
_FIELDS = ("file", "class", "bbox")


def load_entries(path: Path) -> list[dict]:
    """The JSON list of entries, each checked to have ``file``, ``class`` and a ``bbox`` list."""
    entries = read_json_list(path)
    for index, entry in enumerate(entries):
        if not isinstance(entry, dict):
            raise DatasetError(f"{path}: entry {index} is {type(entry).__name__}, expected an object")
        for name in _FIELDS:
            if name not in entry:
                raise DatasetError(f"{path}: entry {index} ({entry.get('file', '?')}) has no field {name!r}")
        if not isinstance(entry["bbox"], list):
            raise DatasetError(f"{path}: entry {index} ({entry['file']}): field 'bbox' is not a list of boxes")
    return entries


def collect_vggss(root: Path, split: str, report: ReadReport) -> list[AVItem]:
    """Items of ``split`` with validated boxes; defects go to ``report``."""
    root = require_root(root, "vggss")
    annotations = require_file(root / ANNOTATIONS, "VGG-SS annotations: list of {file, class, bbox}")
    require_dir(root / "frames", "one {file}.jpg frame per entry")
    require_dir(root / "audio", "one {file}.wav per entry")
    by_id: dict[str, dict] = {}
    for entry in load_entries(annotations):
        file_id = str(entry["file"])
        if file_id in by_id:
            report.add("duplicate entry", file_id, f"{annotations}: later entry ignored", excluded=False)
            continue
        by_id[file_id] = entry
    wanted = split_ids(root, split, ("test", "all"), "vggss")
    if wanted is None:
        wanted = list(by_id)
        if split == "test":
            wanted = _without_calibration(root, wanted, report)
    items = []
    for file_id in wanted:
        entry = by_id.get(file_id)
        if entry is None:
            report.add("no annotation", file_id, f"listed for split {split!r} but absent from {annotations}", True)
            continue
        boxes = clean_boxes(entry["bbox"], 1.0, file_id, report)
        if boxes is None:
            continue
        label = str(entry["class"])
        items.append(
            AVItem(
                id=file_id,
                image=root / "frames" / f"{file_id}.jpg",
                audio=root / "audio" / f"{file_id}.wav",
                boxes=boxes,
                label=label,
                classes=(label,),
                gt_style="vggss",
            )
        )
    require_media(items, "vggss")
    return items


def _without_calibration(root: Path, ids: list[str], report: ReadReport) -> list[str]:
    """``ids`` less those of the calibration list (``ROOT/calibration.txt``), each recorded as excluded."""
    listed = split_list_path(root, CALIBRATION)
    if listed is None:
        return ids
    held = set(read_id_list(listed))
    for file_id in ids:
        if file_id in held:
            report.add("in calibration list", file_id, f"{listed}: calibration items never enter the test", True)
    return [file_id for file_id in ids if file_id not in held]


def read_vggss(root: Path, split: str) -> ItemList:
    """Items of ``split`` with validated boxes (gt style ``vggss``: union of the boxes) and their report."""
    report = ReadReport("vggss", Path(root), split)
    return finish(collect_vggss(root, split, report), report)
