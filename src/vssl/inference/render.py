"""Overlays on the absolute scale: the heatmap over the frame, a colour bar of fixed range with the map's
min, max and the threshold marked, the box, the peak and the decision written above the frame.

A per-image min-max colour scale would paint silence's flat, low map as hot as a real source; here a
colour always means the same cosine. Drawn with Pillow (a few milliseconds a frame), so the same renderer
serves PNG files, video frames and the web app.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from vssl.atomic import write_atomic
from vssl.inference.result import Localization

COSINE_RANGE = (-1.0, 1.0)  # the whole cosine scale: the overlay's fixed colour range
COLORMAP = "jet"
ALPHA = 0.45  # weight of the heatmap colours over the frame
MIN_SIDE = 224  # (ours) a frame with a shorter side is shown enlarged by a whole factor (nearest neighbour) ...
MAX_SIDE = 2048  # ... as long as its longer side stays within this
MIN_BAR = 64  # the colour bar's least height: the canvas grows below a thinner frame


@lru_cache(maxsize=4)
def _lut(name: str = COLORMAP) -> np.ndarray:
    """``[256, 3]`` uint8 colours of a matplotlib colormap."""
    from matplotlib import colormaps  # imported on first use: matplotlib is slow to import

    return (colormaps[name](np.linspace(0.0, 1.0, 256))[:, :3] * 255 + 0.5).astype(np.uint8)


def colourise(values: np.ndarray, value_range: tuple[float, float] = COSINE_RANGE) -> np.ndarray:
    """``[H, W]`` values -> ``[H, W, 3]`` uint8 colours on the fixed ``value_range`` (clipped outside it)."""
    lo, hi = value_range
    index = np.clip((values - lo) / (hi - lo), 0.0, 1.0) * 255.0
    return _lut()[(index + 0.5).astype(np.intp)]


def _colour_image(values: np.ndarray, value_range: tuple[float, float], size: tuple[int, int]) -> Image.Image:
    """``[h, w]`` values -> RGB image of ``size``: quantised to the 256 colour indices, resized (bilinear, which
    interpolates the values linearly) and mapped through the colormap, all inside Pillow."""
    lo, hi = value_range
    index = (np.clip((values - lo) / (hi - lo), 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    indexed = Image.fromarray(index).resize(size, Image.BILINEAR)
    indexed.putpalette(_lut().tobytes())
    return indexed.convert("RGB")


@lru_cache(maxsize=8)
def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    return ImageFont.load_default(size=size)


def decision_text(result: Localization) -> str:
    """One line: the decision and its evidence on the threshold's scale."""
    t = result.threshold
    if t is None or result.score is None:
        return "uncalibrated model: no abstain decision"
    verdict = "no visible source (abstain)" if result.abstain else "source visible"
    relation = "<=" if result.abstain else ">"
    return f"{verdict}: score {result.score:.3f} {relation} threshold {t.value:.3f} ({t.rule}, {t.scale})"


def _frame_rgb(result: Localization) -> Image.Image:
    if result.frame is not None:
        return result.frame.convert("RGB")
    return Image.new("RGB", result.frame_size, (128, 128, 128))


def display_scale(size: tuple[int, int]) -> int:
    """The whole factor a frame of ``size`` (width, height) is enlarged by to be seen: 1 unless its shorter side is
    under `MIN_SIDE` (a 1x1 image becomes 224x224, a 3x2 one 336x224), limited by `MAX_SIDE` on the longer side."""
    short, long = min(size), max(size)
    return max(1, min(-(-MIN_SIDE // short), MAX_SIDE // long))


def _colour_bar(canvas: Image.Image, box: tuple[int, int, int, int], result: Localization, value_range, font) -> None:
    """Vertical gradient in ``box`` (top = high), labelled ends, ticks at the map's min/max and the threshold."""
    x0, y0, x1, y1 = box
    lo, hi = value_range
    values = np.linspace(hi, lo, y1 - y0)[:, None].repeat(x1 - x0, axis=1)
    canvas.paste(Image.fromarray(colourise(values, value_range)), (x0, y0))
    draw = ImageDraw.Draw(canvas)
    draw.rectangle(box, outline=(0, 0, 0))

    def y_of(v: float) -> int:
        return round(y0 + (hi - min(max(v, lo), hi)) / (hi - lo) * (y1 - y0 - 1))

    label_x = x1 + 3
    draw.text((label_x, y0), f"{hi:+.2f}", fill=(0, 0, 0), font=font)
    draw.text((label_x, y1), f"{lo:+.2f}", fill=(0, 0, 0), font=font, anchor="ld")
    marks = [("max", result.max, (255, 255, 255)), ("min", result.min, (255, 255, 255))]
    if result.threshold is not None:
        marks.append(("t", result.threshold.cosine, (255, 0, 0)))
    marks.sort(key=lambda m: y_of(m[1]))
    spacing = font.size + 2 if isinstance(font, ImageFont.FreeTypeFont) else 12
    label_y = y0 - spacing
    for name, value, colour in marks:
        y = y_of(value)
        draw.line((x0 - 3, y, x1 + 2, y), fill=colour, width=2)
        label_y = max(y, label_y + spacing)  # close values: labels pushed apart, lines stay exact
        draw.text((label_x, label_y), f"{name} {value:+.2f}", fill=(0, 0, 0), font=font, anchor="lm")


def render_overlay(
    result: Localization, value_range: tuple[float, float] = COSINE_RANGE, title: str = ""
) -> Image.Image:
    """The overlay as an RGB image: header (title, min/max, decision) above the frame, colour bar at right; a small
    frame is enlarged (`display_scale`), box and peak with it."""
    frame = _frame_rgb(result)
    k = display_scale(frame.size)
    width, height = frame.size[0] * k, frame.size[1] * k
    frame = frame if k == 1 else frame.resize((width, height), Image.NEAREST)
    fs = max(11, round(min(width, height) / 32))
    font = _font(fs)
    colours = _colour_image(result.heatmap, value_range, (width, height))
    shown = Image.blend(frame, colours, ALPHA)
    draw = ImageDraw.Draw(shown)
    if result.box is not None:
        x0, y0, x1, y1 = (v * k for v in result.box)
        for offset, colour in ((0, (0, 0, 0)), (2, (255, 255, 255))):  # white inside black: visible on any colour
            left, top = x0 + offset, y0 + offset
            draw.rectangle((left, top, max(left, x1 - 1 - offset), max(top, y1 - 1 - offset)), outline=colour, width=2)
    px, py, r = result.peak[0] * k, result.peak[1] * k, max(3, fs // 2)
    draw.line((px - r, py, px + r, py), fill=(255, 255, 255), width=2)
    draw.line((px, py - r, px, py + r), fill=(255, 255, 255), width=2)

    lines = [title] if title else []
    lines += [f"cosine map min {result.min:+.3f}  max {result.max:+.3f}", decision_text(result)]
    header = len(lines) * (fs + 4) + 6
    bar_strip, bar_labels = max(12, fs), 5 * fs
    text_width = max(round(font.getlength(line)) for line in lines) + 8
    canvas_width = max(width + bar_strip + bar_labels + 2 * fs, text_width)
    body = max(height, MIN_BAR + 2 * fs)
    canvas = Image.new("RGB", (canvas_width, header + body), (255, 255, 255))
    canvas.paste(shown, (0, header))
    draw = ImageDraw.Draw(canvas)
    for i, line in enumerate(lines):
        draw.text((4, 3 + i * (fs + 4)), line, fill=(0, 0, 0), font=font)
    bar_x = width + fs
    _colour_bar(canvas, (bar_x, header + fs, bar_x + bar_strip, header + body - fs), result, value_range, font)
    return canvas


def write_overlay(
    result: Localization, path: str | Path, value_range: tuple[float, float] = COSINE_RANGE, title: str = ""
) -> Path:
    """Write :func:`render_overlay` to ``path`` as PNG, atomically."""
    image = render_overlay(result, value_range, title)
    return write_atomic(path, lambda tmp: image.save(tmp, format="PNG"))
