"""The one record every dataset reader produces."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

GT_STYLES = ("vggss", "flickr")
"""How the evaluator builds a ground-truth map from ``AVItem.boxes`` (SPEC §4)."""


@dataclass(frozen=True)
class AVItem:
    """One evaluated or trained (frame, audio) pair.

    ``boxes`` are the visible sound sources as ``(xmin, ymin, xmax, ymax)`` in normalised
    full-frame coordinates ([0, 1]); an empty tuple means no visible source.
    ``classes`` names every sound class visible in the frame (the sounding one and any silent
    distractors): offscreen negatives are drawn from classes not in this set.
    ``gt_style`` says how the boxes become a ground-truth map: ``"vggss"`` = union of the boxes,
    binary; ``"flickr"`` = one box per annotator, sum / 2 capped at 1 (annotator consensus).
    ``group`` ties items that show the same image with different sounding sources (IS3 pairs, for iIoU).
    ``objects`` are the boxes of every visible object, sounding or silent (normalised), where the dataset knows
    them (the synthetic benchmark): what a map that "lights up objects" under negative audio points at.
    """

    id: str
    image: Path
    audio: Path
    boxes: tuple[tuple[float, float, float, float], ...] = ()
    mask: Path | None = None
    label: str | None = None
    classes: tuple[str, ...] = field(default=())
    gt_style: str = "vggss"
    group: str | None = None
    objects: tuple[tuple[float, float, float, float], ...] = ()

    def __post_init__(self):
        if self.gt_style not in GT_STYLES:
            raise ValueError(f"item {self.id}: gt_style {self.gt_style!r} is not one of {GT_STYLES}")
