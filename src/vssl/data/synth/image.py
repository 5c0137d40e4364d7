"""The frame of a synth sample: a cluttered background and the objects of its classes, each a shape in its colour
and texture, with random size, position, rotation and colour jitter; every draw comes from the generator given."""

from __future__ import annotations

import colorsys
import math

import numpy as np
from PIL import Image, ImageDraw

from vssl.data.synth.config import SYNTH_CLASSES, SynthClass

_SUPERSAMPLE = 4  # shapes are drawn 4x larger then box-filtered: anti-aliased edges
_MAX_ROTATION = 25.0  # degrees; more would turn a square into a diamond


def render_image(rng: np.random.Generator, size: int, label: int, distractors: list[int]):
    """Background + objects; returns (PIL RGB image, [H, W] bool mask of the sounding object, the box of every
    object: the sounding one's first, then the distractors')."""
    canvas = _background(rng, size)
    placements = _place_objects(rng, size, 1 + len(distractors))
    boxes = []
    for cls, placement in zip(distractors, placements[1:], strict=True):
        boxes.append(tight_box(_object_mask(size, *_paste_object(rng, canvas, SYNTH_CLASSES[cls], placement))))
    # The sounding object is drawn last, so it is never hidden even if placement had to overlap.
    mask = _object_mask(size, *_paste_object(rng, canvas, SYNTH_CLASSES[label], placements[0]))
    canvas += 0.012 * rng.standard_normal(canvas.shape, dtype=np.float32)  # sensor noise, so nothing is perfectly flat
    pixels = np.clip(canvas * 255.0 + 0.5, 0, 255).astype(np.uint8)
    return Image.fromarray(pixels, "RGB"), mask, [tight_box(mask), *boxes]


def tight_box(mask: np.ndarray) -> tuple[int, int, int, int]:
    """(xmin, ymin, xmax, ymax) of the True pixels, max exclusive."""
    ys, xs = np.nonzero(mask)
    return int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1


def _object_mask(size: int, alpha: np.ndarray, corner: tuple[int, int]) -> np.ndarray:
    """``[size, size]`` bool: the pixels an object of coverage ``alpha`` pasted at ``corner`` (x0, y0) covers."""
    x0, y0 = corner
    mask = np.zeros((size, size), dtype=bool)
    mask[y0 : y0 + alpha.shape[0], x0 : x0 + alpha.shape[1]] = alpha >= 0.5
    return mask


def _paste_object(rng: np.random.Generator, canvas: np.ndarray, cls: SynthClass, placement) -> tuple:
    """Alpha-blend one object into ``canvas`` in place; returns (alpha [D, D], top-left (x0, y0))."""
    cx, cy, diameter = placement
    alpha, colour = _object_patch(rng, cls, diameter)
    x0, y0 = int(round(cx - diameter / 2)), int(round(cy - diameter / 2))
    region = canvas[y0 : y0 + diameter, x0 : x0 + diameter]
    region += alpha[..., None] * (colour - region)
    return alpha, (x0, y0)


def _muted_colour(rng: np.random.Generator) -> np.ndarray:
    """A low-saturation, mid-value colour: background material that should not look like an object."""
    return np.array(colorsys.hsv_to_rgb(rng.random(), rng.uniform(0.05, 0.3), rng.uniform(0.35, 0.75)))


def _background(rng: np.random.Generator, size: int) -> np.ndarray:
    """Cluttered, low-contrast background, float32 [H, W, 3] in [0, 1]: gradient, blobs, texture, shapes, lines.

    The smooth layers are drawn at a quarter of the resolution and upsampled (4x to 16x cheaper).
    """
    low = max(16, size // 4)
    yy, xx = (np.mgrid[0:low, 0:low].astype(np.float32) + 0.5) / low
    angle = rng.uniform(0, 2 * math.pi)
    ramp = xx * math.cos(angle) + yy * math.sin(angle)
    ramp = (ramp - ramp.min()) / (np.ptp(ramp) + 1e-6)
    c0, c1 = _muted_colour(rng), _muted_colour(rng)
    canvas = c0 + ramp[..., None] * (c1 - c0)
    for _ in range(rng.integers(5, 11)):  # soft blobs
        cx, cy, rx, ry = rng.uniform(0, 1), rng.uniform(0, 1), rng.uniform(0.05, 0.25), rng.uniform(0.05, 0.25)
        blob = np.exp(-((((xx - cx) / rx) ** 2 + ((yy - cy) / ry) ** 2) ** 2))
        canvas += rng.uniform(0.1, 0.3) * blob[..., None] * (_muted_colour(rng) - canvas)
    coarse = Image.fromarray((rng.random((8, 8)) * 255).astype(np.uint8), "L").resize((low, low), Image.BILINEAR)
    canvas += (np.asarray(coarse, dtype=np.float32)[..., None] / 255.0 - 0.5) * 0.08
    smooth = Image.fromarray(np.clip(canvas * 255 + 0.5, 0, 255).astype(np.uint8), "RGB")
    image = smooth.resize((size, size), Image.BICUBIC)
    lines = image.copy()
    draw = ImageDraw.Draw(lines)
    for _ in range(rng.integers(2, 5)):  # faint background shapes: clutter that is not a salient object
        x0, y0 = rng.uniform(-0.1, 0.9, 2) * size
        x1, y1 = x0 + rng.uniform(0.1, 0.5) * size, y0 + rng.uniform(0.1, 0.5) * size
        colour = tuple(int(v * 255) for v in _muted_colour(rng))
        (draw.ellipse if rng.random() < 0.5 else draw.rectangle)([x0, y0, x1, y1], fill=colour)
    for _ in range(rng.integers(3, 9)):
        points = [tuple(float(v) for v in rng.uniform(0, size, 2)) for _ in range(2)]
        colour = tuple(int(v * 255) for v in _muted_colour(rng))
        draw.line(points, fill=colour, width=int(rng.integers(1, max(2, size // 75) + 1)))
    return np.asarray(Image.blend(image, lines, 0.35), dtype=np.float32) / 255.0


def _place_objects(rng: np.random.Generator, size: int, count: int) -> list[tuple[float, float, int]]:
    """(centre x, centre y, diameter) per object, inside the frame, non-overlapping when possible.

    Diameters are 18-40 % of the frame side for every object, sounding or not (equal salience).
    """
    placed: list[tuple[float, float, int]] = []
    for _ in range(count):
        diameter = int(round(rng.uniform(0.18, 0.40) * size))
        radius = diameter / 2
        best, best_clearance = None, -math.inf
        for _attempt in range(40):
            cx, cy = rng.uniform(radius, size - radius, 2)
            clearance = min((math.hypot(cx - px, cy - py) - radius - pd / 2 for px, py, pd in placed), default=0)
            if clearance > best_clearance:
                best, best_clearance = (float(cx), float(cy), diameter), clearance
            if clearance >= 2:
                break
        placed.append(best)
    return placed


def _shape_outline(shape: str, rotation: float) -> list[tuple[str, list[tuple[float, float]], int]]:
    """Drawing ops in unit coordinates (object inside the unit circle, y down): (kind, points, fill)."""

    def rotate(points):
        c, s = math.cos(rotation), math.sin(rotation)
        return [(x * c - y * s, x * s + y * c) for x, y in points]

    def regular(n, radius=1.0, start=-math.pi / 2):
        return [
            (radius * math.cos(start + 2 * math.pi * k / n), radius * math.sin(start + 2 * math.pi * k / n))
            for k in range(n)
        ]

    disc = [(-1.0, -1.0), (1.0, 1.0)]
    if shape == "circle":
        return [("ellipse", disc, 255)]
    if shape == "ring":
        return [("ellipse", disc, 255), ("ellipse", [(-0.55, -0.55), (0.55, 0.55)], 0)]
    if shape == "crescent":
        dx, dy = rotate([(0.45, -0.2)])[0]
        return [("ellipse", disc, 255), ("ellipse", [(dx - 0.85, dy - 0.85), (dx + 0.85, dy + 0.85)], 0)]
    if shape == "star":
        points = [p for k, p in enumerate(regular(10)) if k % 2 == 0]
        inner = regular(10, 0.45)
        points = [q for pair in zip(points, inner[1::2], strict=True) for q in pair]
    elif shape == "cross":
        a, b = 0.3, 0.95
        points = [
            (-a, -b),
            (a, -b),
            (a, -a),
            (b, -a),
            (b, a),
            (a, a),
            (a, b),
            (-a, b),
            (-a, a),
            (-b, a),
            (-b, -a),
            (-a, -a),
        ]
    elif shape == "arrow":
        points = [(-1, -0.22), (0.1, -0.22), (0.1, -0.6), (0.95, 0), (0.1, 0.6), (0.1, 0.22), (-1, 0.22)]
    elif shape == "heart":
        ts = np.linspace(0, 2 * math.pi, 48, endpoint=False)
        xs = 16 * np.sin(ts) ** 3 / 17
        ys = -(13 * np.cos(ts) - 5 * np.cos(2 * ts) - 2 * np.cos(3 * ts) - np.cos(4 * ts)) / 17 - 0.15
        points = list(zip(xs.tolist(), ys.tolist(), strict=True))
    else:
        points = {
            "square": [(-0.7, -0.7), (0.7, -0.7), (0.7, 0.7), (-0.7, 0.7)],
            "triangle": regular(3, start=-math.pi / 2),
            "diamond": [(0, -1), (0.6, 0), (0, 1), (-0.6, 0)],
            "hexagon": regular(6, start=0.0),
            "pentagon": regular(5),
        }[shape]
    return [("polygon", rotate(points), 255)]


def _shape_alpha(shape: str, diameter: int, rotation: float) -> np.ndarray:
    """Anti-aliased coverage [diameter, diameter] float in [0, 1] of a shape filling the patch's inscribed circle."""
    side = diameter * _SUPERSAMPLE
    image = Image.new("L", (side, side), 0)
    draw = ImageDraw.Draw(image)
    half = side / 2

    def to_px(points):
        return [(half + x * (half - 1), half + y * (half - 1)) for x, y in points]

    for kind, points, fill in _shape_outline(shape, rotation):
        if kind == "ellipse":
            draw.ellipse(to_px(points), fill=fill)
        else:
            draw.polygon(to_px(points), fill=fill)
    return np.asarray(image.resize((diameter, diameter), Image.BOX), dtype=np.float64) / 255.0


def _texture(kind: str, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Share of the second tone per pixel (0 = base colour) in object coordinates (radius 1)."""
    if kind == "stripes":
        return np.clip(0.5 + 1.5 * np.sin(math.pi * (u + v) / 0.42), 0, 1)
    if kind == "dots":
        gu, gv = (u / 0.5) % 1 - 0.5, (v / 0.5) % 1 - 0.5
        return np.clip((0.2 - np.hypot(gu, gv)) / 0.06, 0, 1)
    if kind == "checker":
        return np.clip(0.5 + 1.5 * np.sin(math.pi * u / 0.45) * np.sin(math.pi * v / 0.45), 0, 1)
    return np.zeros_like(u)


def _object_patch(rng: np.random.Generator, cls: SynthClass, diameter: int) -> tuple[np.ndarray, np.ndarray]:
    """(alpha [D, D], colour [D, D, 3]) of one object with random rotation and colour jitter."""
    rotation = math.radians(rng.uniform(-_MAX_ROTATION, _MAX_ROTATION))
    alpha = _shape_alpha(cls.shape, diameter, rotation)
    hue = (cls.hue + rng.uniform(-6, 6)) / 360.0 % 1.0
    base = np.array(colorsys.hsv_to_rgb(hue, rng.uniform(0.75, 1.0), rng.uniform(0.8, 1.0)))
    luminance = float(base @ np.array([0.299, 0.587, 0.114]))
    # The texture's second tone stays in the same hue: darker for light colours, lighter for dark ones.
    second = base * 0.45 + (0.55 if luminance < 0.45 else 0.0)
    coords = (np.arange(diameter) + 0.5) / diameter * 2 - 1
    yy, xx = np.meshgrid(coords, coords, indexing="ij")
    c, s = math.cos(rotation), math.sin(rotation)
    share = _texture(cls.texture, xx * c + yy * s, -xx * s + yy * c)[..., None]
    return alpha, base + share * (second - base)
