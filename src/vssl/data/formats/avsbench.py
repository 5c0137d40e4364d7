"""AVSBench S4 (single source) and MS3 (multiple sources) (``avsbench:ROOT``).

``ROOT`` is the ``Single-source`` folder (S4) or the ``Multi-sources`` folder (MS3) of AVSBench v1,
recognised by its metadata csv::

    S4:  ROOT/s4_meta_data.csv       first column the video name; columns 'category' and 'split'
         ROOT/s4_data/visual_frames/{split}/{category}/{video}/{video}_{k}.png     k = 1..5
         ROOT/s4_data/audio_wav/{split}/{category}/{video}.wav                     5 s
         ROOT/s4_data/gt_masks/{split}/{category}/{video}/{video}_{k}.png          binary masks
    MS3: ROOT/ms3_meta_data.csv      first column the video name; column 'split'
         ROOT/ms3_data/visual_frames/{video}/{video}.mp4_{k}.png
         ROOT/ms3_data/audio_wav/{split}/{video}.wav
         ROOT/ms3_data/gt_masks/{split}/{video}/{video}_{k}.png

Frame convention (ours): one item per video, frame ``k = 3`` (:data:`FRAME_INDEX`). Frame ``k`` shows
second ``[k-1, k)`` of the 5 s clip, so frame 3 is the middle of the clip, inside the central 3 s
window (1-4 s) the audio front end takes. ``mask`` is that frame's mask; the evaluator scores against
the mask, and ``boxes`` holds its tight box (empty when the mask is empty: no visible source).
S4's training split has a mask for frame 1 only, so its items carry no mask and no box.
Splits: the csv's ``split`` values (``train``, ``val``, ``test``) and ``all``; an id list
``ROOT/{split}.txt`` of video names also works. S4 items have ``label`` = the video's category and
``classes`` = ``(category,)``; MS3 has no categories (label None). A missing frame, audio or listed
mask file is an error.
"""

from __future__ import annotations

import csv
from pathlib import Path

from PIL import Image

from vssl.data.formats.layout import require_media, require_root, split_ids
from vssl.data.formats.report import ItemList, ReadReport, finish
from vssl.data.items import AVItem
from vssl.errors import DatasetError

FRAME_INDEX = 3
"""Which of the 5 frames (1-based) an item uses: the middle second of the clip."""
VARIANTS = {"s4": "s4_meta_data.csv", "ms3": "ms3_meta_data.csv"}


def detect_variant(root: Path) -> str:
    """``"s4"`` or ``"ms3"`` from the metadata csv present in ROOT."""
    found = [name for name, csv_name in VARIANTS.items() if (root / csv_name).is_file()]
    if len(found) == 1:
        return found[0]
    if not found:
        hints = [sub for sub in ("Single-source", "Multi-sources") if (root / sub).is_dir()]
        hint = f" (give ROOT/{hints[0]} as the root)" if hints else ""
        raise DatasetError(f"{root / VARIANTS['s4']}: missing file (AVSBench S4 or MS3 metadata csv){hint}")
    raise DatasetError(f"{root}: holds both {VARIANTS['s4']} and {VARIANTS['ms3']}; give one benchmark per root")


def read_metadata(path: Path, variant: str) -> list[dict[str, str]]:
    """Rows ``{"video", "split", "category"}`` of the metadata csv."""
    with path.open(newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        columns = reader.fieldnames or []
        required = ["split"] + (["category"] if variant == "s4" else [])
        for name in required:
            if name not in columns:
                raise DatasetError(f"{path}: no column {name!r} (columns: {columns})")
        rows = []
        for row in reader:
            video = (row.get(columns[0]) or "").strip()
            if video:
                rows.append({"video": video, "split": row["split"].strip(), "category": row.get("category") or ""})
    return rows


def _paths(root: Path, variant: str, row: dict[str, str]) -> tuple[Path, Path, Path]:
    """(frame, audio, mask) of one video at :data:`FRAME_INDEX`."""
    video, split, category = row["video"], row["split"], row["category"]
    data = root / f"{variant}_data"
    if variant == "s4":
        frame = data / "visual_frames" / split / category / video / f"{video}_{FRAME_INDEX}.png"
        audio = data / "audio_wav" / split / category / f"{video}.wav"
        mask = data / "gt_masks" / split / category / video / f"{video}_{FRAME_INDEX}.png"
    else:
        frame = data / "visual_frames" / video / f"{video}.mp4_{FRAME_INDEX}.png"
        audio = data / "audio_wav" / split / f"{video}.wav"
        mask = data / "gt_masks" / split / video / f"{video}_{FRAME_INDEX}.png"
    return frame, audio, mask


def mask_box(path: Path) -> tuple[float, float, float, float] | None:
    """Tight normalised box of a mask's foreground, or None for an empty mask.

    Foreground = every non-zero value: AVSBench masks are 0/255 grey (S4) or palette images whose index 0 is
    the background (MS3); a palette colour or a 0/1 grey level may well be darker than mid-grey.
    """
    try:
        with Image.open(path) as img:
            img.load()
            mask = img if img.mode in ("1", "L", "P") else img.convert("L")
            bbox = mask.getbbox()
            width, height = img.size
    except OSError as exc:
        raise DatasetError(f"{path}: cannot read mask ({exc})") from exc
    if bbox is None:
        return None
    x0, y0, x1, y1 = bbox
    return (x0 / width, y0 / height, x1 / width, y1 / height)


def read_avsbench(root: Path, split: str) -> ItemList:
    """One item per video of ``split`` at frame :data:`FRAME_INDEX`, with its mask where one exists."""
    root = require_root(root, "avsbench")
    variant = detect_variant(root)
    rows = read_metadata(root / VARIANTS[variant], variant)
    report = ReadReport(f"avsbench-{variant}", root, split)
    listed = split_ids(root, split, ("all", *sorted({r["split"] for r in rows})), "avsbench")
    if listed is not None:
        by_video = {r["video"]: r for r in rows}
        for video in listed:
            if video not in by_video:
                report.add("no annotation", video, f"listed for split {split!r} but absent from the metadata", True)
        rows = [by_video[v] for v in listed if v in by_video]
    elif split != "all":
        rows = [r for r in rows if r["split"] == split]
    items = []
    for row in rows:
        frame, audio, mask = _paths(root, variant, row)
        has_mask = not (variant == "s4" and row["split"] == "train")  # S4 train: mask of frame 1 only
        box = mask_box(mask) if has_mask and mask.is_file() else None
        label = row["category"] or None
        items.append(
            AVItem(
                id=row["video"],
                image=frame,
                audio=audio,
                boxes=(box,) if box else (),
                mask=mask if has_mask else None,
                label=label,
                classes=(label,) if label else (),
            )
        )
    require_media(items, f"avsbench-{variant}")
    return finish(items, report)
