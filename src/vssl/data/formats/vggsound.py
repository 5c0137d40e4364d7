"""VGGSound training clips (``vggsound:ROOT``), also the layout ``vssl prepare`` writes.

Layout::

    ROOT/frames/{id}.jpg       one frame per clip (the middle one)
    ROOT/audio/{id}.wav        the clip's audio (any rate and channel count; the front end resamples)
    ROOT/{split}.txt           optional id lists, e.g. EZ-VSL's vggsound_144k.txt copied here
    ROOT/vggsound.csv          optional: the official list ``ytid,start,label,train|test`` (no header)

A VGGSound id is the 11-character YouTube id, ``_``, and the 6-digit start second
(``---g-f_I2yQ_000001``). YouTube ids themselves contain ``-`` and ``_``, so ids are split by position
(:func:`parse_vggsound_id`), never at an underscore. Other names are accepted as opaque ids (``vssl prepare``
keeps a video's own name when it is not a VGGSound id, and writes ``{clip}@{t}`` for a frame at ``t`` s).

Splits: an id list ``ROOT/{split}.txt`` wins; ``all`` is every id that has both a frame and an audio file;
with ``ROOT/vggsound.csv``, ``train`` and ``test`` select the clips of the official split.
Labels: from ``vggsound.csv`` when present (``label`` = the class, ``classes`` = ``(label,)``), else None.
Items whose frame or audio is missing are left out and named in the report: training data tolerates
losses (YouTube videos disappear), unlike the test sets.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

from vssl.data.formats.layout import drop_missing_media, require_dir, require_root, split_ids
from vssl.data.formats.report import ItemList, ReadReport, finish
from vssl.data.items import AVItem
from vssl.errors import DatasetError

YOUTUBE_ID_LENGTH = 11
VGGSOUND_ID_LENGTH = YOUTUBE_ID_LENGTH + 1 + 6
OFFICIAL_LIST = "vggsound.csv"
_YOUTUBE_CHARS = re.compile(r"^[A-Za-z0-9_-]{11}$")
_MILLISECOND_NAME = re.compile(r"^(?P<ytid>[A-Za-z0-9_-]{11})_(?P<start>\d+)_(?P<end>\d+)$")


def parse_vggsound_id(item_id: str) -> tuple[str, int] | None:
    """``"---g-f_I2yQ_000001"`` -> ``("---g-f_I2yQ", 1)``; None if not a VGGSound id.

    A ``@{t}`` suffix (a frame at an explicit time, written by ``vssl prepare``) is ignored.
    """
    base = item_id.split("@", 1)[0]
    if len(base) != VGGSOUND_ID_LENGTH or base[YOUTUBE_ID_LENGTH] != "_":
        return None
    ytid, start = base[:YOUTUBE_ID_LENGTH], base[YOUTUBE_ID_LENGTH + 1 :]
    if not _YOUTUBE_CHARS.match(ytid) or not start.isdigit():
        return None
    return ytid, int(start)


def vggsound_id(ytid: str, start: int) -> str:
    """The canonical id of the clip of YouTube video ``ytid`` starting at ``start`` s."""
    return f"{ytid}_{start:06d}"


def canonical_clip_id(stem: str) -> str:
    """A video file's id: VGGSound downloads named ``{ytid}_{start_ms}_{end_ms}`` become ``{ytid}_{start:06d}``.

    Every other stem (already canonical, or not VGGSound at all) is returned unchanged.
    """
    match = _MILLISECOND_NAME.match(stem)
    if match and parse_vggsound_id(stem) is None:
        start_ms = int(match["start"])
        if start_ms % 1000 == 0 and int(match["end"]) > start_ms:
            return vggsound_id(match["ytid"], start_ms // 1000)
    return stem


def read_official_list(path: Path) -> dict[str, tuple[str, str]]:
    """``vggsound.csv`` -> ``{id: (label, split)}``."""
    table: dict[str, tuple[str, str]] = {}
    with path.open(newline="", encoding="utf-8") as f:
        for line, row in enumerate(csv.reader(f), start=1):
            if not row:
                continue
            try:
                ytid, start, label, split = row[:4]
                table[vggsound_id(ytid, int(start))] = (label, split.strip())
            except ValueError as exc:
                raise DatasetError(f"{path}:{line}: expected 'ytid,start,label,split', got {row!r}") from exc
    return table


def _scan(root: Path, report: ReadReport) -> list[str]:
    """Ids with both a frame and an audio file; one-sided files are reported."""
    frames = {p.stem for p in (root / "frames").glob("*.jpg")}
    audio = {p.stem for p in (root / "audio").glob("*.wav")}
    for stem in sorted(frames - audio):
        report.add("missing file", stem, str(root / "audio" / f"{stem}.wav"), excluded=True)
    for stem in sorted(audio - frames):
        report.add("missing file", stem, str(root / "frames" / f"{stem}.jpg"), excluded=True)
    return sorted(frames & audio)


def read_vggsound(root: Path, split: str) -> ItemList:
    """Items of ``split`` (see the module docstring for the layout and the split rule)."""
    root = require_root(root, "vggsound")
    require_dir(root / "frames", "one {id}.jpg frame per clip")
    require_dir(root / "audio", "one {id}.wav per clip")
    report = ReadReport("vggsound", root, split)
    official = read_official_list(root / OFFICIAL_LIST) if (root / OFFICIAL_LIST).is_file() else {}
    official_splits = sorted({s for _, s in official.values()})
    ids = split_ids(root, split, ("all", *official_splits), "vggsound")
    if ids is None:
        ids = _scan(root, report)
        if split != "all":
            ids = [i for i in ids if official.get(i.split("@", 1)[0], ("", ""))[1] == split]
    items = []
    for item_id in ids:
        label = official.get(item_id.split("@", 1)[0], (None, None))[0]
        items.append(
            AVItem(
                id=item_id,
                image=root / "frames" / f"{item_id}.jpg",
                audio=root / "audio" / f"{item_id}.wav",
                label=label,
                classes=(label,) if label else (),
            )
        )
    return finish(drop_missing_media(items, report), report)
