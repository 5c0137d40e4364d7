"""A plain folder of your own data (``folder:ROOT``): image + audio pairs matched by name.

Every image (``.jpg .jpeg .png .bmp .webp``) under ROOT (recursively) is paired with the audio file of
the same stem in the same directory (``.wav .flac .ogg .mp3 .m4a .aac .opus``) or, failing that, with a
video of that stem (``.mp4 .mkv .webm .mov .avi .m4v``), whose audio track is decoded with PyAV. The id is
the stem's path relative to ROOT (``street/dog1``). Videos without an image cannot be read directly
(an item needs a frame): extract frames and audio with ``vssl prepare ROOT OUT`` and read
``vggsound:OUT``; a folder that already has the ``frames/`` + ``audio/`` layout ``vssl prepare`` writes
is read as that layout. Unpaired images, audio files and videos are named in the report.

A plain folder has no splits: any split name reads every pair, unless ``ROOT/{split}.txt`` lists ids.
Items carry no boxes, label or classes (training, inference, or negative-audio statistics only).
"""

from __future__ import annotations

from pathlib import Path

from vssl.data.formats.layout import read_id_list, require_root, split_list_path
from vssl.data.formats.report import ItemList, ReadReport, finish
from vssl.data.formats.vggsound import read_vggsound
from vssl.data.items import AVItem
from vssl.errors import DatasetError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".mp3", ".m4a", ".aac", ".opus")
VIDEO_EXTENSIONS = (".mp4", ".mkv", ".webm", ".mov", ".avi", ".m4v")


def _index(root: Path) -> dict[str, dict[str, Path]]:
    """``{id: {"image"|"audio"|"video": path}}`` for every media file under ROOT (first by extension order)."""
    kinds = [("image", IMAGE_EXTENSIONS), ("audio", AUDIO_EXTENSIONS), ("video", VIDEO_EXTENSIONS)]
    rank = {ext: (kind, i) for kind, exts in kinds for i, ext in enumerate(exts)}
    found: dict[str, dict[str, tuple[int, Path]]] = {}
    for path in root.rglob("*"):
        ext = path.suffix.lower()
        if ext not in rank or path.name.startswith(".") or not path.is_file():
            continue
        kind, order = rank[ext]
        item_id = path.relative_to(root).with_suffix("").as_posix()
        slot = found.setdefault(item_id, {})
        if kind not in slot or order < slot[kind][0]:
            slot[kind] = (order, path)
    return {item_id: {kind: p for kind, (_, p) in slot.items()} for item_id, slot in found.items()}


def read_folder(root: Path, split: str) -> ItemList:
    """Items of every (image, audio or video) pair under ROOT (see the module docstring)."""
    root = require_root(root, "folder")
    if (root / "frames").is_dir() and (root / "audio").is_dir():
        return read_vggsound(root, split if split_list_path(root, split) else "all")
    report = ReadReport("folder", root, split)
    index = _index(root)
    listed = split_list_path(root, split)
    ids = read_id_list(listed) if listed else sorted(index)
    items, unpaired_videos = [], 0
    for item_id in ids:
        files = index.get(item_id, {})
        sound = files.get("audio") or files.get("video")
        if "image" in files and sound is not None:
            items.append(AVItem(id=item_id, image=files["image"], audio=sound))
        elif "image" in files:
            report.add("missing file", item_id, f"no audio or video named {item_id}.* beside {files['image']}", True)
        elif "video" in files:
            unpaired_videos += 1
            report.add("no frame", item_id, f"{files['video']}: a video needs `vssl prepare` first", True)
        elif files:
            report.add("missing file", item_id, f"no image named {item_id}.* beside {files['audio']}", True)
        else:
            report.add("missing file", item_id, f"listed in {listed} but no such media under {root}", True)
    if not items and unpaired_videos:
        raise DatasetError(
            f"{root}: holds {unpaired_videos} videos and no image+audio pairs; run `vssl prepare {root} OUT` "
            "and read the result as vggsound:OUT"
        )
    return finish(items, report)
