"""Inference on one frame and one audio clip: the cosine map, its 224x224 heatmap, an overlay, a JSON record.

Everything stays on the model's absolute scale, the raw cosine in [-1, 1] (``map_scale = "cosine"``;
not divided by the temperature, not min-max normalised): a flat, low map for silence must look flat and
low, which a per-image rescaling would hide. The input goes through the model's own preprocessing
config (``model.cfg.image``, ``model.cfg.audio``), so inference cannot drift from training.
Inference imports no training code.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from PIL import Image

from vssl.atomic import write_atomic, write_text_atomic
from vssl.audio import center_window, load_audio
from vssl.evaluation.metrics import EVAL_SIZE, upsample
from vssl.models.localizer import AVLocalizer
from vssl.vision import eval_transform, load_image

MAP_SCALE = "cosine"
COSINE_RANGE = (-1.0, 1.0)  # the whole cosine scale: the overlay's fixed colour range


@dataclass(frozen=True)
class Localization:
    """Where one clip's sound is in one frame, on the absolute cosine scale."""

    cosine_map: np.ndarray
    """Raw cosine map at the model's native resolution, ``[h, w]`` float32 (7x7 for ``resnet18``)."""
    heatmap: np.ndarray
    """The map upsampled to ``[224, 224]`` (bilinear, align_corners=True), still cosine."""
    min: float
    """Minimum of ``cosine_map``."""
    max: float
    """Maximum of ``cosine_map`` (upsampling never exceeds it)."""
    frame: Image.Image = field(repr=False, compare=False)
    """The decoded RGB frame at its own size, for overlays (the map covers the whole frame)."""
    map_scale: str = MAP_SCALE

    def to_json(self) -> dict[str, Any]:
        """``{"cosine_map": rows of floats, "min", "max", "map_scale"}``."""
        return {
            "cosine_map": self.cosine_map.astype(float).tolist(),
            "min": self.min,
            "max": self.max,
            "map_scale": self.map_scale,
        }


@torch.no_grad()
def localize(model: AVLocalizer, frame: Image.Image, wave: torch.Tensor) -> Localization:
    """Localize a mono waveform ``[T]`` at ``model.cfg.audio.sample_rate`` in an RGB frame.

    The model runs in eval mode (BatchNorm on its running statistics) whatever mode it was in, and is left
    in the mode it had.
    """
    device = next(model.parameters()).device
    image = eval_transform(model.cfg.image)(frame)[None].to(device)  # [1, 3, S, S]
    window = center_window(wave.float(), model.cfg.audio)[None].to(device)  # [1, 48000]
    was_training = model.training
    try:
        cosine = model.eval().localize(image, window).float().cpu()  # [1, h, w]
    finally:
        model.train(was_training)
    native = cosine[0].numpy()
    return Localization(
        cosine_map=native,
        heatmap=upsample(cosine, EVAL_SIZE)[0].numpy(),
        min=float(native.min()),
        max=float(native.max()),
        frame=frame,
    )


def localize_files(model: AVLocalizer, image_path: str | Path, audio_path: str | Path) -> Localization:
    """Localize the sound of an audio (or video) file in an image file; raises `MediaError` for bad files."""
    wave = load_audio(audio_path, model.cfg.audio.sample_rate)
    return localize(model, load_image(image_path), wave)


def write_json(result: Localization, path: str | Path) -> Path:
    """Write ``result.to_json()`` to ``path`` atomically."""
    return write_text_atomic(path, json.dumps(result.to_json(), indent=2) + "\n")


def overlay_figure(result: Localization, value_range: tuple[float, float] = COSINE_RANGE, title: str = "") -> Figure:
    """The heatmap over the frame with a colour bar of the fixed ``value_range`` (never the map's own min-max)."""
    width, height = result.frame.size
    fig = Figure(figsize=(5.6, 4.6 * height / width + 0.4))
    FigureCanvasAgg(fig)  # render with Agg, without touching pyplot's global state
    ax = fig.add_subplot()
    extent = (0, width, height, 0)  # the map covers the whole frame (the test transform does not crop)
    ax.imshow(result.frame, extent=extent)
    shown = ax.imshow(result.heatmap, extent=extent, cmap="jet", vmin=value_range[0], vmax=value_range[1], alpha=0.5)
    fig.colorbar(shown, ax=ax, label=f"{result.map_scale} similarity (fixed scale)")
    scale = f"min {result.min:.3f}  max {result.max:.3f}"
    ax.set_title(f"{title}\n{scale}" if title else scale, fontsize=9)
    ax.set_axis_off()
    return fig


def write_overlay(
    result: Localization, path: str | Path, value_range: tuple[float, float] = COSINE_RANGE, title: str = ""
) -> Path:
    """Write :func:`overlay_figure` to ``path`` as PNG, atomically."""
    fig = overlay_figure(result, value_range, title)
    return write_atomic(path, lambda tmp: fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight"))
