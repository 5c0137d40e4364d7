"""Checks of a dataset's folders and files, and split selection by id lists, shared by the readers.

Split rule (every reader): if ``ROOT/{split}.txt`` or ``ROOT/{split}.csv`` exists, the split is the ids
it lists (one per line; in a csv, the first column; a header line such as ``id`` or ``video,audio,label``
is skipped; ``.jpg``/``.wav``/``.mp4``... extensions are stripped). Otherwise a reader accepts the names
that mean "the whole set" for it (e.g. ``test`` for a test-only benchmark, ``all`` everywhere) and
raises :class:`~vssl.errors.DatasetError` naming the missing list for any other split.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

from vssl.data.formats.report import ReadReport
from vssl.data.items import AVItem
from vssl.errors import DatasetError

MEDIA_EXTENSIONS = (".jpg", ".jpeg", ".png", ".wav", ".flac", ".mp4", ".mkv", ".webm", ".avi", ".mov")
_HEADER_WORDS = {"id", "ids", "file", "filename", "name", "video", "video_id", "vid", "ytid", "image"}
_SHOWN = 5


def require_root(root: Path, fmt: str) -> Path:
    """``root`` if it is a directory, else DatasetError naming it."""
    root = Path(root)
    if not root.is_dir():
        problem = "not found" if not root.exists() else "not a directory"
        raise DatasetError(f"{root}: {fmt} dataset root {problem}")
    return root


def require_dir(path: Path, what: str) -> Path:
    """``path`` if it is a directory, else DatasetError naming it and what it should hold."""
    if not path.is_dir():
        raise DatasetError(f"{path}: missing directory ({what})")
    return path


def require_file(path: Path, what: str) -> Path:
    """``path`` if it is a file, else DatasetError naming it and what it should hold."""
    if not path.is_file():
        raise DatasetError(f"{path}: missing file ({what})")
    return path


def read_json_list(path: Path) -> list:
    """A JSON file holding a list (annotation files), or a DatasetError naming the file."""
    try:
        entries = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DatasetError(f"{path}: not a readable JSON file ({exc})") from exc
    if not isinstance(entries, list):
        raise DatasetError(f"{path}: expected a JSON list of entries, got {type(entries).__name__}")
    return entries


def strip_media_extension(name: str) -> str:
    """``abc.mp4`` -> ``abc``; names without a known media extension are returned unchanged."""
    lower = name.lower()
    for ext in MEDIA_EXTENSIONS:
        if lower.endswith(ext):
            return name[: -len(ext)]
    return name


def read_id_list(path: Path) -> list[str]:
    """Ids listed in a text or csv file (first field of each line), in order, duplicates removed."""
    try:
        lines = path.read_text(encoding="utf-8-sig").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise DatasetError(f"{path}: cannot read id list ({exc})") from exc
    ids: list[str] = []
    for number, line in enumerate(lines):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        first = line.replace(",", " ").split()[0].strip("\"'")
        if number == 0 and first.lower() in _HEADER_WORDS:
            continue
        ids.append(strip_media_extension(first))
    return list(dict.fromkeys(ids))


def split_list_path(root: Path, split: str) -> Path | None:
    """``ROOT/{split}.txt`` or ``ROOT/{split}.csv`` if one exists."""
    for suffix in (".txt", ".csv"):
        path = root / f"{split}{suffix}"
        if path.is_file():
            return path
    return None


def split_ids(root: Path, split: str, whole: Iterable[str], fmt: str) -> list[str] | None:
    """Ids of ``split`` from its list file, or None when ``split`` names the whole set (see module docstring)."""
    listed = split_list_path(root, split)
    if listed is not None:
        return read_id_list(listed)
    whole = tuple(whole)
    if split in whole:
        return None
    raise DatasetError(
        f"{root / (split + '.txt')}: missing file (id list of {fmt} split {split!r}); "
        f"without a list only {', '.join(repr(w) for w in whole)} can be read"
    )


def missing_media(item: AVItem) -> list[Path]:
    """The item's frame, audio and mask files that do not exist."""
    paths = [item.image, item.audio] + ([item.mask] if item.mask is not None else [])
    return [p for p in paths if not p.is_file()]


def require_media(items: list[AVItem], fmt: str) -> None:
    """Test sets: every frame, audio and mask must exist, else DatasetError naming the missing files.

    A benchmark with silently missing items is a different benchmark; to evaluate on the available
    part, list its ids in ``ROOT/{split}.txt``.
    """
    missing = [path for item in items for path in missing_media(item)]
    if missing:
        shown = ", ".join(str(p) for p in missing[:_SHOWN])
        more = f" (+{len(missing) - _SHOWN} more)" if len(missing) > _SHOWN else ""
        raise DatasetError(
            f"{fmt}: {len(missing)} files of the listed items are missing: {shown}{more}; "
            "to evaluate on the available items only, list their ids in ROOT/<split>.txt"
        )


def drop_missing_media(items: list[AVItem], report: ReadReport) -> list[AVItem]:
    """Training sets: items with a missing file are left out and reported (kind ``missing file``)."""
    kept = []
    for item in items:
        missing = missing_media(item)
        if missing:
            report.add("missing file", item.id, ", ".join(str(p) for p in missing), excluded=True)
        else:
            kept.append(item)
    return kept
