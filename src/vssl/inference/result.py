"""A localization result: the absolute map, its 224x224 heatmap, the peak and, at the calibrated threshold,
the mask, the box and the abstain decision ("no visible source").

Coordinates: ``peak`` (x, y) and ``box`` [x0, y0, x1, y1] are in pixels of the frame as given (the map covers
the whole frame: the test transform resizes without cropping). The mask is at 224x224, the resolution at
which maps are binarised and thresholds calibrated.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from vssl.atomic import write_text_atomic
from vssl.inference.calibration import Threshold, to_scale
from vssl.maps import EVAL_SIZE, upsample

MAP_SCALE = "cosine"


@dataclass(frozen=True)
class Localization:
    """Where one clip's sound is in one frame, on the absolute cosine scale (never min-max normalised)."""

    cosine_map: np.ndarray
    """Raw cosine map at the model's native resolution, ``[h, w]`` float32 (7x7 for ``resnet18``)."""
    heatmap: np.ndarray
    """The map upsampled to ``[224, 224]`` (bilinear, align_corners=True), still cosine."""
    min: float
    """Minimum of ``cosine_map``."""
    max: float
    """Maximum of ``cosine_map`` (upsampling never exceeds it)."""
    frame: Image.Image | None = field(default=None, repr=False, compare=False)
    """The RGB frame at its own size, for overlays."""
    map_scale: str = MAP_SCALE
    peak: tuple[float, float] = (0.0, 0.0)
    """(x, y) of the heatmap's maximum, in frame pixels (centre of the 224-grid cell)."""
    threshold: Threshold | None = None
    """The threshold the decision used; None for an uncalibrated model."""
    score: float | None = None
    """The heatmap's maximum on the threshold's scale: what is compared with the threshold."""
    abstain: bool | None = None
    """True: no visible source (``score <= threshold``); None: no threshold, no decision."""
    mask: np.ndarray | None = field(default=None, repr=False)
    """``[224, 224]`` bool, heatmap above the threshold; None without a threshold."""
    box: tuple[float, float, float, float] | None = None
    """[x0, y0, x1, y1] in frame pixels around the part of the mask that holds the peak; None when abstaining
    or without a threshold."""

    @property
    def frame_size(self) -> tuple[int, int]:
        """(width, height) of the frame the coordinates refer to (224x224 when no frame is kept)."""
        return self.frame.size if self.frame is not None else (EVAL_SIZE, EVAL_SIZE)

    def to_json(self) -> dict[str, Any]:
        """The JSON record: ``cosine_map`` (rows), ``min``, ``max``, ``map_scale``, ``abstain``, ``threshold``,
        ``threshold_scale``, ``rule``, ``score``, ``peak``, ``box`` and ``frame_size``."""
        threshold = self.threshold.to_json() if self.threshold else {"threshold": None, "threshold_scale": None}
        return {
            "cosine_map": self.cosine_map.astype(float).tolist(),
            "min": self.min,
            "max": self.max,
            "map_scale": self.map_scale,
            "abstain": self.abstain,
            **threshold,
            "score": self.score,
            "peak": [round(v, 2) for v in self.peak],
            "box": None if self.box is None else [round(v, 2) for v in self.box],
            "frame_size": list(self.frame_size),
        }


def write_json(result: Localization, path: str | Path) -> Path:
    """Write ``result.to_json()`` to ``path`` atomically."""
    return write_text_atomic(path, json.dumps(result.to_json(), indent=2) + "\n")


def _run_groups(rows: list[int], starts: list[int], stops: list[int]) -> list[int]:
    """The group of each run of True cells (row, [start, stop)), runs in row-major order: runs of adjacent rows that
    touch, corners included, share a group (union-find, one sweep over each pair of adjacent rows)."""
    parent = list(range(len(rows)))

    def root(k: int) -> int:
        while parent[k] != k:
            parent[k] = k = parent[parent[k]]
        return k

    first = {}  # row -> index of its first run
    for k in range(len(rows) - 1, -1, -1):
        first[rows[k]] = k
    for r in sorted(first):
        if r - 1 not in first:
            continue
        i, j = first[r], first[r - 1]
        while i < len(rows) and rows[i] == r and j < len(rows) and rows[j] == r - 1:
            if starts[i] <= stops[j] and starts[j] <= stops[i]:  # the runs touch, diagonally included
                parent[root(i)] = root(j)
            if stops[i] < stops[j]:
                i += 1
            else:
                j += 1
    return [root(k) for k in range(len(rows))]


def _block_component(blocks: np.ndarray, row: int, col: int) -> np.ndarray:
    """The 8-connected part of the bool grid ``blocks [s, s]`` that holds cell (row, col); empty when that cell is
    False. The runs of True cells along each row are joined (union-find) to the runs of the row above that touch
    them, corners included: one pass over the runs (a dilation would take one step per cell of the part's length).
    """
    out = np.zeros_like(blocks)
    if not blocks[row, col]:
        return out
    padded = np.pad(blocks, ((0, 0), (1, 1)))
    run_rows, edges = np.nonzero(padded[:, 1:] != padded[:, :-1])  # per row: start, stop, start, stop, ...
    rows, starts, stops = run_rows[::2].tolist(), edges[::2].tolist(), edges[1::2].tolist()  # [start, stop) each
    groups = _run_groups(rows, starts, stops)
    seed = next(groups[k] for k in range(len(rows)) if rows[k] == row and starts[k] <= col < stops[k])
    for k in range(len(rows)):
        if groups[k] == seed:
            out[rows[k], starts[k] : stops[k]] = True
    return out


def peak_component(mask: torch.Tensor, seeds: torch.Tensor, cell: int = 4) -> torch.Tensor:
    """The 8-connected part of each mask that holds its seed pixel: ``[N, S, S]`` bool, ``[N]`` flat index.

    Found on a grid of ``cell`` x ``cell`` blocks (a block belongs to the mask when any pixel does), then
    intersected with the mask at full resolution: parts closer than ``cell`` pixels count as one (224x224 maps
    from a 7x7 grid have no finer detail to lose). Empty where the seed pixel is outside the mask.
    """
    side = mask.shape[-1]
    blocks = F.max_pool2d(mask[:, None].float(), cell, ceil_mode=True)[:, 0] > 0  # [N, s, s]
    rows, cols = (seeds // side // cell).tolist(), (seeds % side // cell).tolist()
    parts = [_block_component(b, r, c) for b, r, c in zip(blocks.cpu().numpy(), rows, cols, strict=True)]
    grown = torch.from_numpy(np.stack(parts)).to(mask.device) if parts else torch.zeros_like(blocks)
    full = grown.repeat_interleave(cell, dim=-1).repeat_interleave(cell, dim=-2)[:, :side, :side]
    return full & mask


def _box(component: torch.Tensor, size: tuple[int, int]) -> tuple[float, float, float, float]:
    """Bounding box of a ``[S, S]`` bool mask, in pixels of a frame of ``size`` (width, height)."""
    rows = torch.nonzero(component.any(dim=1)).flatten()
    cols = torch.nonzero(component.any(dim=0)).flatten()
    sx, sy = size[0] / component.shape[1], size[1] / component.shape[0]
    return (float(cols[0]) * sx, float(rows[0]) * sy, float(cols[-1] + 1) * sx, float(rows[-1] + 1) * sy)


def make_results(
    cosine: torch.Tensor, frames: list[Image.Image | None], threshold: Threshold | None
) -> list[Localization]:
    """Cosine maps ``[N, h, w]`` (CPU) and each map's frame -> results, decided at ``threshold``."""
    cosine = cosine.float()
    heat = upsample(cosine, EVAL_SIZE)  # [N, 224, 224]
    flat_peak = heat.flatten(1).argmax(dim=1)  # [N]
    masks = scores = components = None
    if threshold is not None:
        scaled = to_scale(heat, threshold.scale)
        scores = scaled.flatten(1).amax(dim=1)
        masks = scaled > threshold.value
        components = peak_component(masks, flat_peak)
    out = []
    for i, frame in enumerate(frames):
        size = frame.size if frame is not None else (EVAL_SIZE, EVAL_SIZE)
        row, col = divmod(int(flat_peak[i]), EVAL_SIZE)
        peak = ((col + 0.5) * size[0] / EVAL_SIZE, (row + 0.5) * size[1] / EVAL_SIZE)
        native = cosine[i].numpy()
        decided: dict[str, Any] = {}
        if threshold is not None:
            abstain = not bool(masks[i].any())
            decided = {
                "score": float(scores[i]),
                "abstain": abstain,
                "mask": masks[i].numpy(),
                "box": None if abstain else _box(components[i], size),
            }
        out.append(
            Localization(
                cosine_map=native,
                heatmap=heat[i].numpy(),
                min=float(native.min()),
                max=float(native.max()),
                frame=frame,
                peak=peak,
                threshold=threshold,
                **decided,
            )
        )
    return out
