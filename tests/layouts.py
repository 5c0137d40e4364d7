"""Dataset layouts built in a test's folder: minimal media files and the field's annotation formats with their known
defects (VGG-SS garbage values, degenerate boxes, Flickr's annotator boxes, IS3 names, AVSBench masks)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import soundfile as sf
from PIL import Image

GARBAGE = -2.88e16


def write_image(path: Path, size: tuple[int, int] = (32, 24), value: int = 128) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, (value, value, value)).save(path)
    return path


def write_wav(path: Path, seconds: float = 0.5, rate: int = 16000) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), np.zeros(int(seconds * rate), np.float32), rate)
    return path


VGGSS_ENTRIES = [
    {"file": "aaaaaaaaaaa_000000", "class": "dog barking", "bbox": [[0.1, 0.2, 0.5, 0.6], [0.6, 0.1, 0.9, 0.4]]},
    {"file": "bbbbbbbbbbb_000010", "class": "cat", "bbox": [[GARBAGE, GARBAGE, GARBAGE, GARBAGE]]},
    {"file": "ccccccccccc_000020", "class": "cat", "bbox": [[0.3, 0.3, 0.3, 0.8], [0.1, 0.1, 0.4, 0.4]]},
    {"file": "ddddddddddd_000030", "class": "owl", "bbox": [[0.5, 0.5, 0.2, 0.9]]},
    {"file": "eeeeeeeeeee_000040", "class": "owl", "bbox": []},
    {"file": "fffffffffff_000050", "class": "owl", "bbox": [[0.0, 0.0, 1.002, 0.5]]},
    {"file": "ggggggggggg_000060", "class": "owl", "bbox": [[0.0, 0.0, 1.3, 0.5]]},
]


def vggss_root(root: Path, entries=VGGSS_ENTRIES) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "vggss.json").write_text(json.dumps(entries))
    for entry in entries:
        write_image(root / "frames" / f"{entry['file']}.jpg")
        write_wav(root / "audio" / f"{entry['file']}.wav")
    return root


def flickr_xml(boxes: list[tuple[int, int, int, int]], named: bool = False) -> str:
    def bbox(b):
        if named:
            return (
                "<bbox>"
                + "".join(f"<{k}>{v}</{k}>" for k, v in zip(("xmin", "ymin", "xmax", "ymax"), b, strict=True))
                + "</bbox>"
            )
        return "<bbox><label>1</label>" + "".join(f"<v>{v}</v>" for v in b) + "</bbox>"

    return "<annotation>" + "".join(f"<object>{bbox(b)}</object>" for b in boxes) + "</annotation>"


def is3_root(root: Path, src: Path, names: list[str]) -> Path:
    (root / "images").mkdir(parents=True)
    (root / "audio_wav").mkdir()
    entries = []
    for name in names:
        real = next(p.stem for p in src.glob("*.jpg") if p.stem.rsplit("_", 1)[0] == name.rsplit("_", 1)[0])
        shutil.copy(src / f"{real}.jpg", root / "images" / f"{name}.jpg")
        shutil.copy(src / f"{real}.wav", root / "audio_wav" / f"{name}.wav")
        entries.append(
            {
                "image": f"/mnt/authors/synthetic3241/visual_frames/{name}.jpg",
                "audio": f"/mnt/authors/synthetic3241/audio_wav/{name}.wav",
                "gt_box": [22.4, 44.8, 112.0, 224.0],
            }
        )
    (root / "synthetic3240_bbox.json").write_text(json.dumps(entries))
    return root


def write_mask(path: Path, box: tuple[int, int, int, int] | None, size=(80, 60), mode="L") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.zeros((size[1], size[0]), np.uint8)
    if box:
        x0, y0, x1, y1 = box
        pixels[y0:y1, x0:x1] = 1 if mode == "P" else 255
    image = Image.fromarray(pixels, "L")
    if mode == "P":
        image = image.convert("P")
        image.putpalette([0, 0, 0, 255, 255, 255] + [0] * 762)
    image.save(path)
