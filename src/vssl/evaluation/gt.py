"""Ground truth for localization metrics: boxes or masks -> ``[N, 224, 224]`` maps (SPEC §4).

Boxes are integer pixel coordinates ``(x0, y0, x1, y1)`` of the 224x224 evaluation frame, filled as
the half-open slice ``[y0:y1, x0:x1]`` (the reference convention). Styles:
* ``vggss``: union of the boxes, binary;
* ``flickr``: sum of the annotators' box masks / 2, capped at 1 (consensus of the annotators).
A sample with no box and no mask has no visible source (a non-audible sample of the SLAVC extended
sets); it is excluded from the positive metrics and counted as such.
Degenerate boxes (zero or negative width/height) cover no pixel; they are kept, listed in
``GroundTruth.issues`` and reported, never silently "repaired". Boxes outside the frame are errors.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from vssl.data.items import AVItem
from vssl.errors import VsslError
from vssl.maps import EVAL_SIZE

GT_STYLES = ("vggss", "flickr")
Box = tuple[int, int, int, int]


class GroundTruthError(VsslError):
    """A ground-truth file or entry is malformed."""


@dataclass
class GroundTruth:
    """Per-sample boxes (224-pixel ints), style, optional mask path and optional group (IS3 pairs)."""

    boxes: list[list[Box]]
    styles: list[str]
    masks: list[Path | None]
    groups: list[str | None] = field(default_factory=list)
    issues: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.groups:
            self.groups = [None] * len(self.boxes)

    def __len__(self) -> int:
        return len(self.boxes)

    def select(self, rows: Sequence[int]) -> GroundTruth:
        """The entries ``rows``, in that order (issues stay with the whole set)."""
        pick = [(self.boxes[i], self.styles[i], self.masks[i], self.groups[i]) for i in rows]
        boxes, styles, masks, groups = (list(z) for z in zip(*pick, strict=True)) if pick else ([], [], [], [])
        return GroundTruth(boxes=boxes, styles=styles, masks=masks, groups=groups)

    @property
    def visible(self) -> torch.Tensor:
        """``[N]`` bool: the sample has a visible source (a box or a mask)."""
        return torch.tensor(
            [bool(b) or m is not None for b, m in zip(self.boxes, self.masks, strict=True)], dtype=torch.bool
        )

    @property
    def audible(self) -> torch.Tensor:
        """``[N]`` bool: the samples whose own audio counts as positive: the visible ones, or every sample of a set
        without any annotation (a training set, a plain folder)."""
        visible = self.visible
        return visible if visible.any() else torch.ones_like(visible)

    @property
    def num_boxes(self) -> torch.Tensor:
        return torch.tensor([len(b) for b in self.boxes], dtype=torch.long)

    def maps(self, indices: Sequence[int], size: int = EVAL_SIZE) -> torch.Tensor:
        """Localization ground truth ``[len(indices), size, size]`` float64 in [0, 1]: the boxes when a
        sample has any (the cIoU protocols of VGG-SS, Flickr and IS3 are box-based), else its mask."""
        out = torch.zeros(len(indices), size, size, dtype=torch.float64)
        for row, i in enumerate(indices):
            if not self.boxes[i] and self.masks[i] is not None:
                out[row] = load_mask(self.masks[i], size)
            else:
                out[row] = box_map(self.boxes[i], self.styles[i], size)
        return out

    def mask_maps(self, indices: Sequence[int], size: int = EVAL_SIZE) -> torch.Tensor:
        """Segmentation ground truth (AVSBench metrics) ``[len(indices), size, size]``; zeros where no mask."""
        out = torch.zeros(len(indices), size, size, dtype=torch.float64)
        for row, i in enumerate(indices):
            if self.masks[i] is not None:
                out[row] = load_mask(self.masks[i], size)
        return out


def box_map(boxes: Sequence[Box], style: str, size: int = EVAL_SIZE) -> torch.Tensor:
    """One sample's ground-truth map ``[size, size]`` from pixel boxes in the given style."""
    acc = torch.zeros(size, size, dtype=torch.float64)
    for x0, y0, x1, y1 in boxes:
        acc[max(y0, 0) : max(y1, 0), max(x0, 0) : max(x1, 0)] += 1.0
    if style == "flickr":
        return (acc / 2).clamp(max=1.0)
    return (acc > 0).double()


def box_tensors(boxes: Sequence[Sequence[Sequence[int]]], styles: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-sample lists of ``(x0, y0, x1, y1)`` pixel boxes and ``"vggss"`` / ``"flickr"`` styles as tensors: the
    boxes ``[N, B, 4]`` long (``B`` the most boxes of a sample; padding: empty boxes ``(0, 0, 0, 0)``) and ``[N]``
    bool, the sample is flickr style."""
    if any(len(box) != 4 for sample in boxes for box in sample):
        raise ValueError("every box needs 4 numbers (x0, y0, x1, y1)")
    counts = torch.tensor([len(sample) for sample in boxes], dtype=torch.long)
    flat = torch.tensor([c for sample in boxes for box in sample for c in box], dtype=torch.long)
    out = torch.zeros(len(boxes), int(counts.max()) if len(boxes) else 0, 4, dtype=torch.long)
    out[torch.arange(out.shape[1]) < counts[:, None]] = flat.view(-1, 4)
    return out, torch.tensor([s == "flickr" for s in styles], dtype=torch.bool)


def load_mask(path: Path, size: int = EVAL_SIZE) -> torch.Tensor:
    """A binary mask image resized (nearest) to ``[size, size]``; foreground = any non-zero pixel
    (0/255 masks, 0/1 masks and palette masks alike)."""
    try:
        with Image.open(path) as img:
            img.load()
            gray = img.convert("L").resize((size, size), Image.NEAREST)
    except FileNotFoundError:
        raise GroundTruthError(f"{path}: mask file not found") from None
    except Exception as exc:
        raise GroundTruthError(f"{path}: cannot read mask image ({exc})") from exc
    return torch.from_numpy(np.asarray(gray, dtype=np.float64) > 0).double()


def pixel_boxes(boxes: Sequence[Sequence[float]], size: int = EVAL_SIZE) -> list[Box]:
    """Normalised ``(x0, y0, x1, y1)`` boxes -> integer pixels of the ``size`` frame (truncation, as the reference)."""
    return [tuple(int(v * size) for v in box) for box in boxes]  # type: ignore[misc]


def check_box(box: Sequence[float], where: str, size: int = EVAL_SIZE) -> list[str]:
    """Validate one pixel box; raise on garbage, return issue strings for degenerate ones."""
    if len(box) != 4:
        raise GroundTruthError(f"{where}: a box needs 4 numbers [x0, y0, x1, y1], got {list(box)}")
    if not all(isinstance(v, (int, float)) and math.isfinite(v) for v in box):
        raise GroundTruthError(f"{where}: box {list(box)} holds a non-finite or non-numeric value")
    if min(box) < 0 or max(box) > size:
        raise GroundTruthError(f"{where}: box {list(box)} lies outside the {size}x{size} frame")
    x0, y0, x1, y1 = box
    if x1 <= x0 or y1 <= y0:
        return [f"{where}: degenerate box {list(box)} (zero or negative width/height) covers no pixel"]
    return []


def from_items(items: Sequence[AVItem], size: int = EVAL_SIZE) -> GroundTruth:
    """Ground truth of dataset items (normalised boxes, optional masks)."""
    boxes, issues = [], []
    for item in items:
        px = pixel_boxes(item.boxes, size)
        for box in px:
            issues += check_box(box, f"item {item.id}", size)
        boxes.append(px)
    return GroundTruth(
        boxes=boxes,
        styles=[getattr(item, "gt_style", "vggss") for item in items],
        masks=[item.mask for item in items],
        groups=[getattr(item, "group", None) for item in items],
        issues=issues,
    )


def _entry_boxes(boxes: Any, where: str, issues: list[str]) -> list[tuple[int, ...]]:
    """The pixel boxes of one GT.json entry; what `check_box` finds odd is added to ``issues``."""
    if not isinstance(boxes, list):
        raise GroundTruthError(f"{where}: 'boxes' must be a list of [x0, y0, x1, y1]")
    sample = []
    for box in boxes:
        if not isinstance(box, list):
            raise GroundTruthError(f"{where}: box {box!r} is not a list [x0, y0, x1, y1]")
        issues += check_box(box, where)
        sample.append(tuple(int(v) for v in box))
    return sample


def load_gt_json(path: str | Path) -> GroundTruth:
    """Read a GT.json: a list of ``{"boxes": [[x0,y0,x1,y1], ...], "gt_style": "vggss"|"flickr"}`` in
    pixels of a 224x224 frame (empty list = no visible source) or ``{"mask": "path.png"}`` (relative
    to the JSON file); an optional ``"group"`` pairs the two sources of an IS3 image."""
    path = Path(path)
    try:
        entries = json.loads(path.read_text())
    except FileNotFoundError:
        raise GroundTruthError(f"{path}: ground-truth file not found") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise GroundTruthError(f"{path}: not valid JSON ({exc})") from exc
    if not isinstance(entries, list) or not entries:
        raise GroundTruthError(f"{path}: expected a non-empty JSON list of per-sample objects")
    boxes, styles, masks, groups, issues = [], [], [], [], []
    for i, entry in enumerate(entries):
        where = f"{path} entry {i}"
        if not isinstance(entry, dict):
            raise GroundTruthError(f"{where}: expected an object, got {type(entry).__name__}")
        unknown = set(entry) - {"boxes", "gt_style", "mask", "group"}
        if unknown:
            raise GroundTruthError(f"{where}: unknown keys {sorted(unknown)}")
        style = entry.get("gt_style", "vggss")
        if style not in GT_STYLES:
            raise GroundTruthError(f"{where}: unknown gt_style {style!r}; known: {list(GT_STYLES)}")
        if "mask" in entry:
            masks.append(path.parent / entry["mask"])
            boxes.append([])
        elif "boxes" in entry:
            boxes.append(_entry_boxes(entry["boxes"], where, issues))
            masks.append(None)
        else:
            raise GroundTruthError(f"{where}: needs 'boxes' (possibly empty) or 'mask'")
        styles.append(style)
        groups.append(None if entry.get("group") is None else str(entry["group"]))
    return GroundTruth(boxes=boxes, styles=styles, masks=masks, groups=groups, issues=issues)
