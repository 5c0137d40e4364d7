"""Validation of annotated boxes, shared by every reader: report each defect, never silently repair it.

Rules (ours), applied to each annotation entry in this order:

* **garbage value** — a coordinate that is not a finite number or lies outside [-1, 2] in normalised
  frame units (e.g. VGG-SS's -2.88e16: not a coordinate of this frame at all). The whole item is
  **excluded**: its other boxes describe an incomplete ground truth, and scoring against it would be
  wrong in an unknown direction.
* **degenerate box** — zero or negative width or height. Such a box covers no pixel in any
  ground-truth map (VGG-SS union or Flickr consensus), so the box is **dropped** and the map is
  unchanged; the item is excluded only if no box remains.
* **clipped to frame** — a box that pokes out of [0, 1] by at most one pixel of the 224 evaluation
  frame (rounding in the annotation tool). It is clipped to the frame — the same map the reference
  code builds — and the clip is reported.
* **out of frame** — a box outside [0, 1] by more than that: the item is **excluded** (the annotation
  does not fit this frame; the evaluator would reject it).
* **no boxes** — an entry with an empty box list: **excluded** (in an :class:`AVItem` an empty box
  list means "no visible source", which is not what a missing annotation means).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from vssl.data.formats.report import ReadReport

Box = tuple[float, float, float, float]

GARBAGE_LIMITS = (-1.0, 2.0)
"""Normalised coordinates outside this range are garbage, not boxes."""
CLIP_TOLERANCE = 1.0 / 224
"""How far (normalised) a box may leave the frame and still be clipped rather than excluded."""


def _four_numbers(raw: object) -> tuple[float, float, float, float] | None:
    if not isinstance(raw, (list, tuple)) or len(raw) != 4:
        return None
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in raw):
        return None
    return tuple(float(v) for v in raw)  # type: ignore[return-value]


def _fmt(values: Sequence[float]) -> str:
    return "[" + ", ".join(f"{v:.6g}" for v in values) + "]"


def clean_boxes(raw_boxes: Sequence[object], scale: float, item: str, report: ReadReport) -> tuple[Box, ...] | None:
    """Boxes of one entry, normalised by ``scale`` (the frame side in the file's units; 1 if already
    normalised), validated by the module's rules. Returns None when the item must be excluded;
    every defect is added to ``report``.
    """
    if len(raw_boxes) == 0:
        report.add("no boxes", item, "the annotation lists no box", excluded=True)
        return None
    normalised: list[Box] = []
    for k, raw in enumerate(raw_boxes):
        values = _four_numbers(raw)
        if values is None:
            report.add("garbage value", item, f"box {k} {raw!r} is not 4 numbers", excluded=True)
            return None
        norm = tuple(v / scale for v in values)
        lo, hi = GARBAGE_LIMITS
        if not all(math.isfinite(v) and lo <= v <= hi for v in norm):
            report.add("garbage value", item, f"box {k} {_fmt(values)}", excluded=True)
            return None
        normalised.append(norm)  # type: ignore[arg-type]
    kept: list[Box] = []
    degenerate: list[str] = []
    for k, (x0, y0, x1, y1) in enumerate(normalised):
        if x1 <= x0 or y1 <= y0:
            degenerate.append(f"box {k} {_fmt((x0, y0, x1, y1))} has zero or negative width/height")
            continue
        excess = max(-min(x0, y0), max(x1, y1) - 1.0)
        if excess > CLIP_TOLERANCE:
            report.add("out of frame", item, f"box {k} {_fmt((x0, y0, x1, y1))} leaves the frame by {excess:.4f}", True)
            return None
        if excess > 0:
            clipped = (max(x0, 0.0), max(y0, 0.0), min(x1, 1.0), min(y1, 1.0))
            report.add("clipped to frame", item, f"box {k} {_fmt((x0, y0, x1, y1))} -> {_fmt(clipped)}", False)
            x0, y0, x1, y1 = clipped
        kept.append((x0, y0, x1, y1))
    for detail in degenerate:
        report.add("degenerate box", item, detail + ("; dropped" if kept else "; no box left"), excluded=not kept)
    return tuple(kept) if kept else None
