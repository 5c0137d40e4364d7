"""IS3 / IS3+ (``is3:ROOT``): synthetic images with two sources, each image evaluated once per source.

Layout::

    ROOT/images/{name}.jpg             the image (IS3+: 1024x1024)
    ROOT/audio_wav/{name}.wav          the sound of one of its two sources
    ROOT/gt_segmentation/{name}.png    optional mask of that source (.jpg accepted)
    ROOT/is3.json                      or the only *.json in ROOT (the published synthetic3240_bbox.json):
                                       [{"image": path, "audio": path, "gt_box": [x1, y1, x2, y2]}, ...]

``gt_box`` is in pixels of the 224x224 resized image. ``image`` and ``audio`` are the authors' absolute
paths: only their file names are used, looked up in ``images/`` and ``audio_wav/``.
A name is ``{a}_{b}_{n}_{s}``: objects ``a`` and ``b``, image number ``n``, sounding source ``s``, so an
image appears as ``{a}_{b}_{n}_{a}`` and ``{a}_{b}_{n}_{b}``. ``group`` (what IS3 iIoU pairs over) is
the name without its last field; ``label`` is ``s`` as written and ``classes`` = ``s``, ``a`` and ``b``
(the published names are not all regular — ``fireworks_subwaytrain_10415_subway``,
``babylaughter_oceanburbling_baby`` — and follow the same rule). A group with a single entry is
reported (kind ``unpaired``), not excluded. Splits: ``test`` and ``all`` are every entry; other splits
need an id list of names. A missing image or audio file is an error; a missing mask (when
``gt_segmentation/`` exists) is reported and the item keeps its box.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path, PurePosixPath, PureWindowsPath

from vssl.data.formats.boxes import clean_boxes
from vssl.data.formats.layout import read_json_list, require_dir, require_media, require_root, split_ids
from vssl.data.formats.report import ItemList, ReadReport, finish
from vssl.data.items import AVItem
from vssl.errors import DatasetError

ANNOTATIONS = "is3.json"
FRAME_SIZE = 224.0
"""Side of the resized image that ``gt_box`` refers to."""
_MASK_EXTENSIONS = (".png", ".jpg")


def find_annotations(root: Path) -> Path:
    """``ROOT/is3.json``, or the single ``*.json`` in ROOT."""
    preferred = root / ANNOTATIONS
    if preferred.is_file():
        return preferred
    candidates = sorted(root.glob("*.json"))
    if len(candidates) == 1:
        return candidates[0]
    found = ", ".join(p.name for p in candidates) or "none"
    raise DatasetError(f"{preferred}: missing file (IS3 box annotations; other JSON files in the root: {found})")


def _file_name(value: object, path: Path, index: int, name: str) -> str:
    if not isinstance(value, str) or not value:
        raise DatasetError(f"{path}: entry {index}: field {name!r} must be a file path, got {value!r}")
    return PureWindowsPath(value).name if "\\" in value else PurePosixPath(value).name


def parse_name(name: str) -> tuple[str, str, tuple[str, ...]]:
    """``"lion_cat_872_cat"`` -> group ``"lion_cat_872"``, label ``"cat"``, classes ``("cat", "lion")``."""
    group, _, label = name.rpartition("_")
    if not group:
        return name, name, (name,)
    objects = [field for field in group.split("_") if field and not field.isdigit()]
    return group, label, tuple(dict.fromkeys([label, *objects]))


def load_entries(path: Path) -> list[tuple[str, str, list]]:
    """``[(image file name, audio file name, gt_box), ...]`` from the annotation JSON."""
    entries = read_json_list(path)
    out = []
    for index, entry in enumerate(entries):
        if not isinstance(entry, dict):
            raise DatasetError(f"{path}: entry {index} is {type(entry).__name__}, expected an object")
        for name in ("image", "audio", "gt_box"):
            if name not in entry:
                raise DatasetError(f"{path}: entry {index} has no field {name!r}")
        if isinstance(entry["gt_box"], str):
            raise DatasetError(
                f"{path}: entry {index}: field 'gt_box' is a file path; this is the segmentation JSON, "
                "give the box JSON (gt_box = [x1, y1, x2, y2])"
            )
        image = _file_name(entry["image"], path, index, "image")
        out.append((image, _file_name(entry["audio"], path, index, "audio"), entry["gt_box"]))
    return out


def _mask(folder: Path | None, stem: str) -> Path | None:
    if folder is None:
        return None
    return next((folder / f"{stem}{ext}" for ext in _MASK_EXTENSIONS if (folder / f"{stem}{ext}").is_file()), None)


def read_is3(root: Path, split: str) -> ItemList:
    """Items of ``split``: one per (image, sounding source), with ``group`` pairing the two sources."""
    root = require_root(root, "is3")
    images = require_dir(root / "images", "the IS3 images")
    audio = require_dir(root / "audio_wav", "one wav per (image, source)")
    masks = root / "gt_segmentation" if (root / "gt_segmentation").is_dir() else None
    annotations = find_annotations(root)
    report = ReadReport("is3", root, split)
    entries: dict[str, tuple[str, str, list]] = {}
    for image, wav, box in load_entries(annotations):
        name = Path(image).stem
        if name in entries:
            report.add("duplicate entry", name, f"{annotations}: later entry ignored", excluded=False)
            continue
        entries[name] = (image, wav, box)
    wanted = split_ids(root, split, ("test", "all"), "is3")
    items = []
    for name in entries if wanted is None else wanted:
        if name not in entries:
            report.add("no annotation", name, f"listed for split {split!r} but absent from {annotations}", True)
            continue
        image, wav, raw_box = entries[name]
        boxes = clean_boxes([raw_box], FRAME_SIZE, name, report)
        if boxes is None:
            continue
        mask = _mask(masks, name)
        if masks is not None and mask is None:
            report.add("no mask", name, f"no {name}.png in {masks}; the box is the ground truth", excluded=False)
        group, label, classes = parse_name(name)
        items.append(
            AVItem(
                id=name,
                image=images / image,
                audio=audio / wav,
                boxes=boxes,
                mask=mask,
                label=label,
                classes=classes,
                group=group,
            )
        )
    sizes = Counter(item.group for item in items)
    for item in items:
        if sizes[item.group] == 1:
            report.add("unpaired", item.id, f"no other source of image group {item.group!r}", excluded=False)
    require_media(items, "is3")
    return finish(items, report)
