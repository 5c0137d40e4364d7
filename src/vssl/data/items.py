"""The one record every dataset reader produces."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class AVItem:
    """One evaluated or trained (frame, audio) pair.

    ``boxes`` are the visible sound sources as ``(xmin, ymin, xmax, ymax)`` in normalised
    full-frame coordinates ([0, 1]); an empty tuple means no visible source.
    ``classes`` names every sound class visible in the frame (the sounding one and any silent
    distractors): offscreen negatives are drawn from classes not in this set.
    """

    id: str
    image: Path
    audio: Path
    boxes: tuple[tuple[float, float, float, float], ...] = ()
    mask: Path | None = None
    label: str | None = None
    classes: tuple[str, ...] = field(default=())
